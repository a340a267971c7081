#!/usr/bin/env bash
# Stops exactly the processes tools/stack/up.sh started, by their pid files;
# stopping a stack that is not running does nothing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

stop_pid devbroker "$run/devbroker/pid" annot-devbroker
if [ -x "$root/tools/stack/kafka.sh" ] && [ -d "$run/kafka" ]; then
  "$root/tools/stack/kafka.sh" stop
fi
stop_pid redis "$run/redis/redis.pid" redis-server
# SIGINT is PostgreSQL's fast shutdown: it rolls back open transactions.
data="$run/pg/data"
if [ -f "$data/postmaster.pid" ]; then
  stop_pid postgresql "$data/postmaster.pid" postgres INT
fi
rm -f "$run/devstack.env"
log "stopped"
