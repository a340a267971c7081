#!/usr/bin/env bash
# Starts the embedded stack on loopback, under run/:
#   - a throwaway PostgreSQL cluster (initdb, its own port, run as an
#     unprivileged user when we are root),
#   - a Redis server without persistence,
#   - Kafka: annot-devbroker (librdkafka's mock cluster, 3 brokers, topics
#     from config/topics.conf), or with ANNOT_STACK_KAFKA=real the Apache
#     Kafka broker of tools/stack/kafka.sh, its topics made by annotctl;
# and writes run/devstack.env.  Running it again reuses what is running;
# what a crash left behind is cleaned up and started afresh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$run"
[ -x "$root/bin/annot-devbroker" ] || die "bin/ is not built: run make first"

start_postgres() {
  local pgdir="$run/pg" data
  # The unprivileged user must reach run/; when the checkout sits under a
  # private home, keep the cluster in /tmp and point run/pg at it.
  if [ "$(id -u)" -eq 0 ] && ! runuser -u "$pg_user" -- test -x "$run"; then
    local alt="${TMPDIR:-/tmp}/annot-pg-$(printf %s "$run" | md5sum | cut -c1-12)"
    if [ ! -L "$pgdir" ]; then rm -rf "$pgdir"; ln -s "$alt" "$pgdir"; fi
    mkdir -p "$alt"
    pgdir=$alt
  fi
  mkdir -p "$pgdir"
  data="$pgdir/data"
  if [ -f "$data/postmaster.pid" ] && pid_of "$data/postmaster.pid" postgres >/dev/null &&
     as_pg "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
    log "postgresql already running on port $pg_port"
    return
  fi
  port_busy "$pg_port" && die "port $pg_port is taken by another process (set ANNOT_PG_PORT)"
  # Throwaway: a cluster that is not running is started from scratch, with
  # the socket lock a killed postmaster left behind.
  rm -rf "$data" "$pgdir"/.s.PGSQL.*
  [ "$(id -u)" -eq 0 ] && chown "$pg_user" "$pgdir"
  as_pg "$pg_bin/initdb" -D "$data" -U annot --auth=trust -E UTF8 --no-locale >"$pgdir/initdb.log" 2>&1 ||
    die "initdb failed; see $pgdir/initdb.log"
  cat >>"$data/postgresql.conf" <<CONF
port = $pg_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pgdir'
max_connections = 200
CONF
  # Durability is relaxed (this cluster dies with the stack; a killed
  # client never depends on it) unless ANNOT_PG_DURABLE=1: the fault suite
  # crashes PostgreSQL itself, and with synchronous_commit off a commit
  # already answered would be lost.
  if [ "${ANNOT_PG_DURABLE:-0}" != 1 ]; then
    printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n' >>"$data/postgresql.conf"
  fi
  as_pg "$pg_bin/pg_ctl" -D "$data" -l "$pgdir/postgresql.log" -w -t 60 start >/dev/null ||
    die "postgresql did not start; see $pgdir/postgresql.log"
  as_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U annot annot
  log "postgresql on 127.0.0.1:$pg_port"
}

start_redis() {
  local dir="$run/redis"
  mkdir -p "$dir"
  if pid_of "$dir/redis.pid" redis-server >/dev/null; then
    log "redis already running on port $redis_port"
    return
  fi
  rm -f "$dir/redis.pid"
  port_busy "$redis_port" && die "port $redis_port is taken by another process (set ANNOT_REDIS_PORT)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log"
  wait_port "$redis_port" 10 || die "redis did not start; see $dir/redis.log"
  log "redis on 127.0.0.1:$redis_port"
}

start_devbroker() {
  local dir="$run/devbroker"
  mkdir -p "$dir"
  if pid_of "$dir/pid" annot-devbroker >/dev/null && [ -s "$dir/addr" ]; then
    log "devbroker already running"
    return
  fi
  stop_pid devbroker "$dir/pid" annot-devbroker
  rm -f "$dir/addr"
  ANNOT_CONFIG_DIR="$root/config" nohup "$root/bin/annot-devbroker" \
    -X devbroker.addr.file="$dir/addr" >"$dir/devbroker.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  # Ready in about 0.1 s; a minute is allowed for a loaded machine (see
  # create_topics in tools/annot-devbroker/main.c), but not past its exit.
  for _ in $(seq 1 600); do
    [ -s "$dir/addr" ] && break
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  [ -s "$dir/addr" ] || die "devbroker did not start; see $dir/devbroker.log"
  log "devbroker (mock kafka) at $(cat "$dir/addr")"
}

kafka_mode=${ANNOT_STACK_KAFKA:-devbroker}
start_postgres
start_redis
case "$kafka_mode" in
  devbroker)
    start_devbroker
    brokers=$(cat "$run/devbroker/addr")
    ;;
  real)
    "$root/tools/stack/kafka.sh" start
    brokers=127.0.0.1:${ANNOT_KAFKA_PORT:-19092}
    ANNOT_KAFKA_BROKERS=$brokers ANNOT_CONFIG_DIR="$root/config" "$root/bin/annotctl" topics create
    ;;
  *) die "ANNOT_STACK_KAFKA must be devbroker or real, not '$kafka_mode'" ;;
esac

cat >"$run/devstack.env.tmp" <<ENV
export ANNOT_KAFKA_BROKERS=$brokers
export ANNOT_REDIS_URL=redis://127.0.0.1:$redis_port/0
export ANNOT_DATABASE_URL=postgresql://annot@127.0.0.1:$pg_port/annot
export ANNOT_CONFIG_DIR=$root/config
export ANNOT_STACK_KAFKA=$kafka_mode
ENV
mv "$run/devstack.env.tmp" "$run/devstack.env"
log "ready: . $run/devstack.env"
