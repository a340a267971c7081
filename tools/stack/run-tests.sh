#!/usr/bin/env bash
# The test runner behind `make test` and `make test-kafka`.
#
#   run-tests.sh unit       unit tests only (no servers), and the fuzz
#                           targets' seed corpus replayed
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
# Longest first, so that the lanes of run_parallel end together.
slowest="test_dispatcher_load test_metrics_service test_funnel test_pipeline test_scale_out test_dispatcher_leases test_assigner"
integration_tests=$( { for t in $slowest; do [ -f "tests/integration/$t.c" ] && echo "build/tests/$t"; done
  ls tests/integration/test_*.c 2>/dev/null | sed 's|tests/integration/\(.*\)\.c|build/tests/\1|'; } | awk '!seen[$0]++')
# Each fuzz target replays its seed corpus (tests/fuzz/corpus/fuzz_<name>/)
# with the ordinary build: what a fuzzer once found stays fixed.
replays=$(ls tests/fuzz/fuzz_*.c 2>/dev/null | sed 's|tests/fuzz/fuzz_\(.*\)\.c|\1|')
failed=()

run_replays() {
  local n
  for n in $replays; do
    echo "== fuzz_replay_$n"
    if ! "build/tests/fuzz_replay_$n" "tests/fuzz/corpus/fuzz_$n"; then failed+=("build/tests/fuzz_replay_$n"); fi
  done
}

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

# The integration tests side by side in ANNOT_TEST_LANES (3) lanes: they
# mostly wait (consumer groups, leases, timeouts).  Each lane has topics of
# its own (topics.prefix "laneN."): services under test consume and produce
# the shared topics, and one test's funnel must not answer another test's
# candidates.  Schemas, consumer groups, Redis namespaces and message keys
# are per test already.  A lane takes the next test from the list (longest
# first) when its last one ends; each test's output is printed whole.
lanes=${ANNOT_TEST_LANES:-3}
lane_prefixes=$(for i in $(seq 1 "$lanes"); do printf 'lane%d. ' "$i"; done)

# A failed test's services (their logs under build/tests/logs/<test>/):
# the last warnings and errors of each, so that a CI log says why.
service_warnings() {
  local f
  for f in build/tests/logs/"$(basename "$1")"/*.log; do
    [ -f "$f" ] || continue
    grep -E '"level":"(warn|error|fatal)"' "$f" | tail -n 8 | cut -c1-400 | sed "s|^|  $(basename "$f"): |"
  done
}

run_parallel() {
  local out i t
  out=$(mktemp -d)
  printf '%s\n' "$@" >"$out/queue"
  for i in $(seq 1 "$lanes"); do
    (
      export ANNOT_TOPICS_PREFIX="lane$i."
      # The lock is a file of its own: sed -i replaces the queue's file, so
      # a lock on the queue itself would let two lanes take the same test
      # (and lose the next one).
      while t=$(flock "$out/queue.lock" bash -c 'head -n1 "$0"; sed -i 1d "$0"' "$out/queue") && [ -n "$t" ]; do
        t0=$SECONDS
        log=$out/$(basename "$t")
        if "$t" >"$log" 2>&1; then echo 0 >"$log.rc"; else echo 1 >"$log.rc"; service_warnings "$t" >>"$log"; fi
        { echo "== $t (lane $i)"; cat "$log"; echo "-- $t: $((SECONDS - t0)) s"; } | flock "$out/.print" cat
      done
    ) &
  done
  wait
  for t in "$@"; do
    [ "$(cat "$out/$(basename "$t").rc" 2>/dev/null)" = 0 ] || failed+=("$t")
  done
  rm -rf "$out"
}

run_integration() {
  export ANNOT_RUN_DIR="$root/run/test"
  export ANNOT_PG_PORT=${ANNOT_TEST_PG_PORT:-25442}
  export ANNOT_REDIS_PORT=${ANNOT_TEST_REDIS_PORT:-26389}
  export ANNOT_STACK_KAFKA=$1
  trap 'tools/stack/down.sh' EXIT
  tools/stack/down.sh
  rm -rf build/tests/logs
  ANNOT_DEVBROKER_TOPIC_PREFIXES=$lane_prefixes tools/stack/up.sh
  # shellcheck disable=SC1091
  . "$ANNOT_RUN_DIR/devstack.env"
  # Apache Kafka has CreateTopics (the mock makes the lanes' topics itself).
  if [ "$1" = real ]; then
    for p in $lane_prefixes; do ANNOT_TOPICS_PREFIX=$p bin/annotctl topics create; done
  fi
  run_parallel $integration_tests
}

case "$mode" in
  unit)
    run_suite $unit_tests tests/cli/test_annotctl_check.sh
    run_replays
    ;;
  embedded)
    run_suite $unit_tests tests/cli/test_annotctl_check.sh tests/stack/test_stack.sh
    run_replays
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
