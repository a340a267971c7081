#!/usr/bin/env bash
# The test runner behind `make test` and `make test-kafka`.
#
#   run-tests.sh unit       unit tests only (no servers)
#   run-tests.sh embedded   unit tests, then the integration suite on the
#                           embedded stack (devbroker, PostgreSQL, Redis)
#   run-tests.sh kafka      the same integration suite against a real Apache
#                           Kafka broker (tools/stack/kafka.sh)
#
# The integration suite gets a stack of its own (run/test, its own ports), so
# a developer's `make up` stack is neither used nor disturbed, and it is
# stopped on exit whatever happened.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mode=${1:-embedded}

unit_tests=$(ls tests/unit/test_*.c 2>/dev/null | sed 's|tests/unit/\(.*\)\.c|build/tests/\1|')
integration_tests=$(ls tests/integration/test_*.c 2>/dev/null | sed 's|tests/integration/\(.*\)\.c|build/tests/\1|')
failed=()

run_suite() {
  local t
  for t in "$@"; do
    echo "== $t"
    local t0=$SECONDS
    if ! "$t"; then failed+=("$t"); fi
    # Durations help keep CI under its time budget.
    echo "-- $t: $((SECONDS - t0)) s"
  done
}

run_integration() {
  export ANNOT_RUN_DIR="$root/run/test"
  export ANNOT_PG_PORT=${ANNOT_TEST_PG_PORT:-55442}
  export ANNOT_REDIS_PORT=${ANNOT_TEST_REDIS_PORT:-56389}
  export ANNOT_STACK_KAFKA=$1
  trap 'tools/stack/down.sh' EXIT
  tools/stack/down.sh
  tools/stack/up.sh
  # shellcheck disable=SC1091
  . "$ANNOT_RUN_DIR/devstack.env"
  run_suite $integration_tests
}

case "$mode" in
  unit) run_suite $unit_tests tests/cli/test_annotctl_check.sh ;;
  embedded)
    run_suite $unit_tests tests/cli/test_annotctl_check.sh tests/stack/test_stack.sh
    run_integration devbroker
    ;;
  kafka)
    tools/stack/install-deps.sh kafka
    run_integration real
    ;;
  *) echo "usage: $0 unit|embedded|kafka" >&2; exit 2 ;;
esac

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "all tests passed ($mode)"
