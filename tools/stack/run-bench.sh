#!/usr/bin/env bash
# `make bench`: every benchmark program under build/bench/, on a stack of its
# own (run/bench, its own ports) that is stopped afterwards.  Benchmarks print
# figures and their raw ceilings; none of them passes or fails on a time.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ANNOT_RUN_DIR="$root/run/bench"
export ANNOT_PG_PORT=${ANNOT_BENCH_PG_PORT:-25462}
export ANNOT_REDIS_PORT=${ANNOT_BENCH_REDIS_PORT:-26409}
trap 'tools/stack/down.sh' EXIT
tools/stack/down.sh
tools/stack/up.sh
# shellcheck disable=SC1091
. "$ANNOT_RUN_DIR/devstack.env"
for b in build/bench/*; do
  [ -x "$b" ] || continue
  echo "== $b"
  "$b"
done
