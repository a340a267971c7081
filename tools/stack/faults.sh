#!/usr/bin/env bash
# `make test-faults`: the fault suite.  On a stack of its own it runs all
# five services, each under a supervisor that restarts it when it dies (what
# a container runtime's restart policy does), and annot-sim for a few
# compressed days.  Meanwhile, on a fixed schedule (seeded, the same every
# run): at least 20 `kill -9` of a service picked at random, Redis killed
# and restarted empty, a Kafka broker taken down for 30 s (the mock
# cluster's broker down/up; under ANNOT_STACK_KAFKA=real the Apache Kafka
# broker is stopped and started again), PostgreSQL restarted as after a
# crash.  Then, once the pipeline is quiet, tests/faults/reconcile.sql
# compares every service's records with what the others produced and with
# every 202 the simulated people got.  It prints lost and duplicated
# effects and fails unless both are 0.
#   ANNOT_FAULTS_SEED (7), ANNOT_FAULTS_DAY_MS (25000)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
kafka_mode=${ANNOT_STACK_KAFKA:-devbroker}
export ANNOT_RUN_DIR="$root/run/faults-$kafka_mode"
export ANNOT_PG_PORT=${ANNOT_FAULTS_PG_PORT:-25482}
export ANNOT_REDIS_PORT=${ANNOT_FAULTS_REDIS_PORT:-26429}
export ANNOT_STACK_KAFKA=$kafka_mode
# PostgreSQL as in production: a commit it answered survives its crash.
export ANNOT_PG_DURABLE=1
# shellcheck source=tools/stack/lib.sh
. tools/stack/lib.sh
day_ms=${ANNOT_FAULTS_DAY_MS:-25000}
RANDOM=${ANNOT_FAULTS_SEED:-7}
dir=$ANNOT_RUN_DIR/faults
rm -rf "$dir"
mkdir -p "$dir"
api=${ANNOT_FAULTS_HTTP_PORT:-18190}
services=(annot-dispatcher annot-autochecker annot-assigner annot-funnel annot-metrics)

say() { printf 'faults: [%3ds] %s\n' "$SECONDS" "$*"; }

# supervise NAME ARGS...: runs the service, and again whenever it dies,
# until $dir/stop exists.
supervise() {
  local name=$1
  shift
  while [ ! -e "$dir/stop" ]; do
    "bin/$name" "$@" >>"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
    wait $! || true
    [ -e "$dir/stop" ] || sleep 0.3
  done
}

sups=()
stop_all() {
  touch "$dir/stop"
  for s in "${services[@]}"; do
    [ -f "$dir/$s.pid" ] && kill -TERM "$(cat "$dir/$s.pid")" 2>/dev/null || true
  done
  for p in "${sups[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${sim_pid:-}" ] && kill "$sim_pid" 2>/dev/null || true
  tools/stack/down.sh
}
trap stop_all EXIT

tools/stack/down.sh
tools/stack/up.sh
# shellcheck disable=SC1090
. "$ANNOT_RUN_DIR/devstack.env"

port=18191
for s in "${services[@]}"; do
  extra=()
  # Short leases, so that those a killed run left behind come back soon.
  [ "$s" = annot-dispatcher ] && extra=(-X http.addr=127.0.0.1:"$api" -X lease.annotation.ttl.ms=6000
                                        -X lease.exam.ttl.ms=6000 -X lease.validation.ttl.ms=6000)
  # (stderr: not the shell's "Killed" notices; the services log to stdout)
  supervise "$s" -X ops.addr=127.0.0.1:$port "${extra[@]}" 2>/dev/null &
  sups+=($!)
  port=$((port + 1))
done
for p in $(seq 18191 18195); do
  for _ in $(seq 1 300); do curl -fs -o /dev/null "http://127.0.0.1:$p/readyz" && break; sleep 0.1; done
done
say "five services up, each under a supervisor"

bin/annot-sim -X sim.api="http://127.0.0.1:$api" -X sim.dir="$dir/sim" -X sim.days=3 -X sim.day.ms="$day_ms" \
  -X sim.seed=11 -X sim.cohort=12 -X sim.drain.ms=180000 >"$dir/sim.log" 2>"$dir/sim.err" &
sim_pid=$!

# The schedule, in seconds from now, one loop with no long sleeps so that
# kills go on while the broker is down.  Day boundaries (when annotctl
# imports) are left alone by the server faults (the simulator runs a failed
# import again, as an operator would).  The broker's outage runs from day 2
# into day 3's start (30 s of the mock's broker; Apache Kafka
# stopped, left down 30 s, started); the summary gives the outage measured
# from the fault to the broker's return.
# Kills come every 1-4 s until the twentieth, then every 8 s until the last
# day ends; the drain that follows runs undisturbed, so that what it waits
# for is recovery, not the next kill.
d=$((day_ms / 1000))
t_redis=$((d / 2))
t_broker=$((d + 4))
t_pg=$((2 * d + d / 3))
t_end=$((3 * d))
kills=0
start=$SECONDS
next_kill=$((start + 3))
done_redis= done_pg= broker=up broker_back=0 broker_job= broker_t0=0 broker_secs=0
# Server faults wait while a day begins (4 s before to 4 s after).
near_day_boundary() {
  local into=$(($1 % d))
  [ "$1" -lt "$t_end" ] && { [ "$into" -ge $((d - 4)) ] || [ "$into" -lt 4 ]; }
}
kill_one() {
  local s=${services[$((RANDOM % ${#services[@]}))]} pid
  pid=$(cat "$dir/$s.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; then
    kills=$((kills + 1))
    say "kill -9 $s (pid $pid), kill $kills"
  fi
}
while kill -0 "$sim_pid" 2>/dev/null; do
  now=$((SECONDS - start))
  if [ -z "$done_redis" ] && [ "$now" -ge "$t_redis" ] && ! near_day_boundary "$now"; then
    done_redis=1
    say "Redis killed and restarted empty"
    kill -KILL "$(cat "$ANNOT_RUN_DIR/redis/redis.pid")" 2>/dev/null || true
    sleep 1
    tools/stack/up.sh >/dev/null 2>&1
  fi
  # The broker: up -> (stopping) -> down -> (starting) -> back; Apache
  # Kafka's stop and start run in the background, so kills go on.
  if [ "$broker" = up ] && [ "$now" -ge "$t_broker" ] && ! near_day_boundary "$now"; then
    if [ "$kafka_mode" = real ]; then
      say "Kafka broker stopping"
      broker_t0=$SECONDS
      ANNOT_KAFKA_KEEP_DATA=1 tools/stack/kafka.sh stop >/dev/null 2>&1 &
      broker_job=$! broker=stopping
    else
      say "mock broker 1 down for 30 s"
      broker_t0=$SECONDS
      kill -USR1 "$(cat "$ANNOT_RUN_DIR/devbroker/pid")"
      broker_back=$((SECONDS + 30)) broker=down
    fi
  fi
  if [ "$broker" = stopping ] && ! kill -0 "$broker_job" 2>/dev/null; then
    wait "$broker_job" || { say "kafka.sh stop failed"; exit 1; }
    say "Kafka broker stopped; down for 30 s"
    broker_back=$((SECONDS + 30)) broker=down
  fi
  if [ "$broker" = down ] && [ "$SECONDS" -ge "$broker_back" ]; then
    if [ "$kafka_mode" = real ]; then
      tools/stack/kafka.sh start >/dev/null 2>&1 &
      broker_job=$! broker=starting
    else
      kill -USR2 "$(cat "$ANNOT_RUN_DIR/devbroker/pid")"
      broker=back broker_secs=$((SECONDS - broker_t0))
      say "broker back"
    fi
  fi
  if [ "$broker" = starting ] && ! kill -0 "$broker_job" 2>/dev/null; then
    wait "$broker_job" || { say "kafka.sh start failed"; exit 1; }
    broker=back broker_secs=$((SECONDS - broker_t0))
    say "broker back"
  fi
  if [ -z "$done_pg" ] && [ "$now" -ge "$t_pg" ] && ! near_day_boundary "$now"; then
    done_pg=1
    say "PostgreSQL restarted (immediate stop: crash recovery at start)"
    data=$(readlink -f "$ANNOT_RUN_DIR/pg")/data
    as_pg "$pg_bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    sleep 2
    as_pg "$pg_bin/pg_ctl" -D "$data" -l "$data/../postgresql.log" -w -t 60 start >/dev/null
  fi
  if [ "$SECONDS" -ge "$next_kill" ] && { [ "$kills" -lt 20 ] || [ "$now" -lt "$t_end" ]; }; then
    kill_one
    if [ "$kills" -lt 20 ]; then next_kill=$((SECONDS + 1 + RANDOM % 4)); else next_kill=$((SECONDS + 8)); fi
  fi
  sleep 0.5
done
sim_rc=0
wait "$sim_pid" || sim_rc=$?
sim_pid=
grep -v '^{' "$dir/sim.log" || true
say "simulation over (exit $sim_rc) after $kills kills"
[ "$kills" -ge 20 ] || { say "only $kills kills: the schedule did not run"; exit 1; }
[ "$broker" = back ] || { say "the broker fault did not run"; exit 1; }

# Quiet: nothing changes in the records for 10 s (at most 3 minutes).
snapshot() {
  psql -qtA "$ANNOT_DATABASE_URL" -c "SELECT (SELECT count(*) FROM dispatcher.submissions), \
    (SELECT count(*) FROM autochecker.check_results), (SELECT count(*) FROM assigner.assignments), \
    (SELECT count(*) FROM dispatcher.validations), (SELECT count(*) FROM funnel.exam_results), \
    (SELECT coalesce(sum(items), 0) FROM metrics.throughput WHERE window_kind = 'all')" 2>/dev/null || echo none
}
last=$(snapshot) quiet=0
for _ in $(seq 1 180); do
  sleep 1
  cur=$(snapshot)
  if [ "$cur" = "$last" ]; then quiet=$((quiet + 1)); else quiet=0; last=$cur; fi
  [ "$quiet" -ge 10 ] && break
done
say "records quiet ($last)"

candidates=$(cat "$dir"/sim/candidates-day*.ndjson | wc -l)
{ cat "$dir/sim/acks.txt"; cat "$dir"/sim/tasks-day*.ndjson | jq -r '"task " + .task_id'; } |
  psql -q "$ANNOT_DATABASE_URL" -v candidates="$candidates" -f tests/faults/reconcile.sql | tee "$dir/reconcile.txt"
total=$(grep -o 'TOTAL lost=[0-9]* duplicated=[0-9]*' "$dir/reconcile.txt")
lost=$(echo "$total" | sed 's/.*lost=\([0-9]*\).*/\1/')
dup=$(echo "$total" | sed 's/.*duplicated=\([0-9]*\)/\1/')
echo "faults: $kills kills, Redis restarted empty, broker down ${broker_secs} s, PostgreSQL restarted: lost $lost, duplicated $dup"
[ "$lost" = 0 ] && [ "$dup" = 0 ] && [ "$sim_rc" = 0 ]
