#!/usr/bin/env bash
# The images' entrypoint: runs one annot binary ("$@"), first starting a TLS
# tunnel to Redis when the Redis URL asks for TLS.
#
#   annot-entrypoint annot-dispatcher --config /run/secrets/annot_conf
#
# Why a tunnel: Debian 12's hiredis (0.14) speaks no TLS (hiredis gained it
# in 1.0), so the binaries talk plain Redis protocol to stunnel (Debian's
# stunnel4) on loopback inside the container, and stunnel speaks TLS to
# Redis, verifying its certificate.  Nothing of this runs unless the URL
# asks for it: with a redis:// URL this script only execs "$@".
#
# Settings (environment; the _FILE values are paths, as compose secrets):
#   ANNOT_REDIS_URL or ANNOT_REDIS_URL_FILE
#       rediss://[[user]:password@]host:port[/db] turns the tunnel on.
#   ANNOT_REDIS_TLS_CA_FILE      CA bundle that signed Redis's certificate
#                                (default: the system's, ca-certificates)
#   ANNOT_REDIS_TLS_CERT_FILE, ANNOT_REDIS_TLS_KEY_FILE
#                                client certificate and key, for a Redis
#                                with tls-auth-clients yes (both or neither)
#   ANNOT_REDIS_TLS_SERVER_NAME  name the certificate must carry (default:
#                                the URL's host; an IP address is checked
#                                as an IP)
#   ANNOT_REDIS_TLS_LOCAL_PORT   loopback port of the tunnel (default 6379)
#
# The binary then gets ANNOT_REDIS_URL_FILE pointing at a file under
# ${TMPDIR:-/tmp} (mode 0600) holding redis://...@127.0.0.1:LOCAL_PORT/db,
# so the password never goes into the environment.  stunnel logs on stderr;
# when it exits, the binary is sent SIGTERM (stops cleanly; the restart
# policy brings the container back), and when the binary exits, stunnel is
# sent SIGTERM (no tunnel outlives its service).
set -euo pipefail

die() {
  printf '{"level":"fatal","msg":"annot-entrypoint: %s"}\n' "$1" >&2
  exit 78 # EX_CONFIG
}

[ $# -ge 1 ] || die "usage: annot-entrypoint PROGRAM [ARGS...]"

url=""
if [ -n "${ANNOT_REDIS_URL_FILE:-}" ]; then
  [ -z "${ANNOT_REDIS_URL:-}" ] || die "both ANNOT_REDIS_URL and ANNOT_REDIS_URL_FILE are set"
  [ -r "$ANNOT_REDIS_URL_FILE" ] || die "environment ANNOT_REDIS_URL_FILE: cannot read '$ANNOT_REDIS_URL_FILE'"
  url=$(<"$ANNOT_REDIS_URL_FILE")
else
  url=${ANNOT_REDIS_URL:-}
fi
case "$url" in
  rediss://*) ;;
  *) exec "$@" ;;
esac

# rediss://[[user]:password@]host:port[/db]: userinfo up to the last '@'
# (user and password are %XX-escaped, so they hold no raw '/').
rest=${url#rediss://}
userinfo=""
if [[ "$rest" == *@* ]]; then
  userinfo="${rest%@*}@"
  rest=${rest##*@}
fi
hostport=${rest%%/*}
path=""
[ "$hostport" = "$rest" ] || path="/${rest#*/}"
host=${hostport%:*}
port=${hostport##*:}
if [ "$host" = "$hostport" ]; then port=6379; fi
if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ] || [ -z "$host" ]; then
  die "ANNOT_REDIS_URL: bad rediss:// URL (want rediss://[[user]:password@]host:port[/db])"
fi

ca=${ANNOT_REDIS_TLS_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}
cert=${ANNOT_REDIS_TLS_CERT_FILE:-}
key=${ANNOT_REDIS_TLS_KEY_FILE:-}
name=${ANNOT_REDIS_TLS_SERVER_NAME:-$host}
lport=${ANNOT_REDIS_TLS_LOCAL_PORT:-6379}
[ -r "$ca" ] || die "ANNOT_REDIS_TLS_CA_FILE: cannot read '$ca'"
if [ -n "$cert$key" ]; then
  if [ -z "$cert" ] || [ -z "$key" ]; then
    die "ANNOT_REDIS_TLS_CERT_FILE and ANNOT_REDIS_TLS_KEY_FILE go together"
  fi
  [ -r "$cert" ] || die "ANNOT_REDIS_TLS_CERT_FILE: cannot read '$cert'"
  [ -r "$key" ] || die "ANNOT_REDIS_TLS_KEY_FILE: cannot read '$key'"
fi
if ! [[ "$lport" =~ ^[0-9]+$ ]] || [ "$lport" -lt 1 ] || [ "$lport" -gt 65535 ]; then
  die "ANNOT_REDIS_TLS_LOCAL_PORT: not a port: '$lport'"
fi
command -v stunnel4 >/dev/null || die "rediss:// needs stunnel4, which is not installed"

umask 077
dir=$(mktemp -d "${TMPDIR:-/tmp}/annot-redis-tls.XXXXXX" 2>/dev/null) ||
  die "cannot create a directory under ${TMPDIR:-/tmp} for the tunnel (a read-only container needs a tmpfs there)"
conf=$dir/stunnel.conf
# A private copy of the key (0600, ours): a compose secret is a bind mount
# that must be readable by the container's user, which stunnel warns about.
if [ -n "$key" ]; then cp "$key" "$dir/client.key"; fi
{
  echo "foreground = yes"
  echo "syslog = no"
  echo "pid ="
  echo "debug = warning"
  echo "[redis]"
  echo "client = yes"
  echo "accept = 127.0.0.1:$lport"
  echo "connect = $host:$port"
  # Resolve at each connection: a Redis container that comes back on a new
  # address is found again.
  echo "delay = yes"
  echo "sslVersionMin = TLSv1.2"
  echo "verifyChain = yes"
  echo "CAfile = $ca"
  if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then
    echo "checkIP = $name"
  else
    echo "checkHost = $name"
    echo "sni = $name"
  fi
  if [ -n "$cert" ]; then
    echo "cert = $cert"
    echo "key = $dir/client.key"
  fi
  # The services hold their Redis connections for their lifetime; stunnel's
  # default closes a connection idle for 12 hours, which would cost a
  # command.  Keepalive finds a vanished peer instead.
  echo "TIMEOUTidle = 604800"
  echo "socket = l:SO_KEEPALIVE=1"
  echo "socket = r:SO_KEEPALIVE=1"
} >"$conf"
printf '%s\n' "redis://${userinfo}127.0.0.1:$lport$path" >"$dir/redis_url"
unset ANNOT_REDIS_URL
export ANNOT_REDIS_URL_FILE=$dir/redis_url

# The watcher dies with this process (which becomes the binary at the exec
# below), and stunnel with the watcher: --pdeathsig.  If stunnel ends, the
# watcher stops the binary.
main=$$
# shellcheck disable=SC2016 # the watcher's own script, expanded by its bash
setpriv --pdeathsig TERM -- bash -c '
  setpriv --pdeathsig TERM -- stunnel4 "$1" && rc=0 || rc=$?
  printf "{\"level\":\"error\",\"msg\":\"annot-entrypoint: stunnel exited with status %s; stopping\"}\n" "$rc" >&2
  kill -TERM "$2" 2>/dev/null' annot-redis-tls "$conf" "$main" &

# Until the tunnel listens (stunnel binds before it serves), or stunnel is gone.
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$lport") 2>/dev/null; then
    exec "$@"
  fi
  kill -0 $! 2>/dev/null || die "stunnel did not start (its message is above)"
  sleep 0.1
done
die "stunnel did not listen on 127.0.0.1:$lport within 10 s"
