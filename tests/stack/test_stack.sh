#!/usr/bin/env bash
# The embedded stack's lifecycle as a developer meets it: `up` twice (the
# second reuses the same processes), every process killed with SIGKILL and
# `up` again (stale pid files and sockets cleaned, all restarted, topics
# there), `down` twice, and nothing of the stack left running.
# Runs on its own ports and run directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ANNOT_RUN_DIR="$root/run/stacktest"
export ANNOT_PG_PORT=25492 ANNOT_REDIS_PORT=26439 ANNOT_STACK_KAFKA=devbroker
run=$ANNOT_RUN_DIR
trap 'tools/stack/down.sh >/dev/null 2>&1 || true' EXIT

fail() { echo "test_stack: FAIL: $*" >&2; exit 1; }
pids() { echo "$(cat "$run/devbroker/pid") $(cat "$run/redis/redis.pid") $(head -n 1 "$run/pg/data/postmaster.pid")"; }
alive() { for p in $1; do [ -d "/proc/$p" ] || return 1; done; }
topics_ok() {
  . "$run/devstack.env"
  bin/annotctl status >/dev/null || fail "annotctl status after $1"
  [ "$(kcat -L -b "$ANNOT_KAFKA_BROKERS" | grep -c '^  topic "')" -eq "$(grep -cv '^\s*\(#\|$\)' config/topics.conf)" ] ||
    fail "topic count after $1"
}

tools/stack/down.sh >/dev/null 2>&1
tools/stack/up.sh 2>/dev/null
first=$(pids)
alive "$first" || fail "processes not running after up"
topics_ok "first up"

tools/stack/up.sh 2>/dev/null
[ "$(pids)" = "$first" ] || fail "second up started new processes"

kill -9 $first
for p in $first; do while [ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; do sleep 0.1; done; done
tools/stack/up.sh 2>/dev/null
second=$(pids)
alive "$second" || fail "processes not running after up following a crash"
[ "$second" != "$first" ] || fail "up after crash kept dead pids"
topics_ok "up after crash"

tools/stack/down.sh 2>/dev/null
tools/stack/down.sh 2>/dev/null
for p in $second; do
  if [ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status"; then fail "pid $p still running after down"; fi
done
[ ! -f "$run/devstack.env" ] || fail "devstack.env left after down"
echo "test_stack: ok"
