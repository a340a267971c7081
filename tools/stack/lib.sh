# Shared by the stack scripts: paths, ports, and pid handling that never
# signals a process the stack did not start (a pid file left by a crash may
# name a pid that now belongs to someone else).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
run=${ANNOT_RUN_DIR:-$root/run}
# Fixed ports below Linux's ephemeral range (32768-60999): a port in it can
# be any outgoing connection's local port at the moment PostgreSQL or Redis
# binds (CI once failed so: "could not bind ... Address already in use").
# Each stack has its own pair: dev 25432/26379, test 25442/26389, demo
# 25452/26399, bench 25462/26409, containers 25472/26419, faults
# 25482/26429, the stack test 25492/26439, the API contract test
# (tools/ci/api-contract.sh) 25502/26449.
pg_port=${ANNOT_PG_PORT:-25432}
redis_port=${ANNOT_REDIS_PORT:-26379}

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# pid_of FILE PATTERN: prints the pid in FILE if that process is alive and
# its command line contains PATTERN.
pid_of() {
  local file=$1 pattern=$2 pid
  [ -f "$file" ] || return 1
  pid=$(head -n 1 "$file" 2>/dev/null | tr -dc 0-9)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$pattern" || return 1
  echo "$pid"
}

# stop_pid NAME FILE PATTERN [SIGNAL]: signals the process, waits up to 20 s,
# then SIGKILLs it; removes FILE.
stop_pid() {
  local name=$1 file=$2 pattern=$3 sig=${4:-TERM} pid i
  if pid=$(pid_of "$file" "$pattern"); then
    log "stopping $name (pid $pid)"
    kill -s "$sig" "$pid" 2>/dev/null || true
    for i in $(seq 1 200); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
      log "$name did not stop in 20 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$file"
}

# wait_port PORT SECONDS: waits until something accepts on 127.0.0.1:PORT.
wait_port() {
  local port=$1 secs=$2 i
  for i in $(seq 1 $((secs * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# PostgreSQL refuses to run as root: as root, it runs as this user.
pg_user=postgres
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$pg_user" -- "$@"; else "$@"; fi
}
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
