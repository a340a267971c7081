#!/usr/bin/env bash
# `make demo`: the main job.  It starts the embedded stack on its own ports
# and all five services, then annot-sim plays a few simulated days of the
# operation through the real HTTP API and Kafka (a cohort of candidates a
# day through the whole funnel, annotators and validators of different
# skill, leases left to expire, bad requests), with a progress line; then
# the operation's report (`annotctl report`) and the same report as an HTML
# page with charts.  It stops everything it started.
#   ANNOT_SIM_DAYS (3), ANNOT_SIM_DAY_MS (40000), ANNOT_SIM_SEED (1)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ANNOT_RUN_DIR="$root/run/demo"
export ANNOT_PG_PORT=${ANNOT_DEMO_PG_PORT:-25452}
export ANNOT_REDIS_PORT=${ANNOT_DEMO_REDIS_PORT:-26399}
trap 'tools/stack/down.sh' EXIT
tools/stack/up.sh
# shellcheck disable=SC1091
. "$ANNOT_RUN_DIR/devstack.env"

echo
echo "== annotctl status"
bin/annotctl status
echo
echo "== annotctl topics list"
bin/annotctl topics list

echo
echo "== the five services"
api=${ANNOT_DEMO_HTTP_PORT:-18090}
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  tools/stack/down.sh
}
trap stop_all EXIT
start() { # name ops_port args...
  local name=$1 port=$2
  shift 2
  "bin/$name" -X ops.addr=127.0.0.1:"$port" "$@" >"$ANNOT_RUN_DIR/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.1; done
  curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" || { echo "$name did not become ready; its log:"; tail -5 "$ANNOT_RUN_DIR/$name.log"; exit 1; }
  echo "  $name ready (ops on :$port)"
}
# Leases short enough that the simulator's abandoned ones expire within
# the run (a simulated working day lasts 40 s).
start annot-dispatcher 18091 -X http.addr=127.0.0.1:"$api" \
  -X lease.annotation.ttl.ms=6000 -X lease.exam.ttl.ms=6000 -X lease.validation.ttl.ms=6000
start annot-autochecker 18092
start annot-assigner 18093
start annot-funnel 18094
start annot-metrics 18095


echo
echo "== annot-sim: ${ANNOT_SIM_DAYS:-3} simulated days through the HTTP API (progress below)"
html=$ANNOT_RUN_DIR/report.html
bin/annot-sim -X sim.api="http://127.0.0.1:$api" -X sim.dir="$ANNOT_RUN_DIR/sim" -X sim.html="$html" \
  -X sim.days="${ANNOT_SIM_DAYS:-3}" -X sim.day.ms="${ANNOT_SIM_DAY_MS:-40000}" -X sim.seed="${ANNOT_SIM_SEED:-1}" \
  | tee "$ANNOT_RUN_DIR/sim.log" | grep -v '^{'

echo
echo "== the operation's report (annotctl report)"
bin/annotctl report
echo
echo "The same report with charts: $html (open it in a browser)"
