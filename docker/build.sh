#!/usr/bin/env bash
# Builds the binaries a deployment runs and installs them under a staging
# prefix.  The Dockerfile's build stage runs it, and so does CI on the host
# (tools/ci/check-containers.sh), so the image is built by exactly the steps
# that CI checks.
#
#   docker/build.sh PREFIX
#
# Installs:
#   PREFIX/bin/<service>                      every services/*/ with a main.c, stripped
#   PREFIX/bin/annotctl                       the operator CLI
#   PREFIX/share/annot/config/                config/ (topics, taxonomy, guideline rules)
#   PREFIX/share/annot/services/<service>/migrations/   (created even when empty)
# Services find their migrations at the default relative path
# services/<service>/migrations when started in PREFIX/share/annot (the
# image's WORKDIR), whatever the service calls its migrations key.
# annot-devbroker is left out: it is the development stack's Kafka.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 PREFIX" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
cd "$root"

services=()
for main in services/*/main.c; do
  [ -e "$main" ] || continue
  services+=("$(basename "$(dirname "$main")")")
done
[ ${#services[@]} -gt 0 ] || { echo "build.sh: no services/*/main.c" >&2; exit 1; }
progs=("${services[@]}" annotctl)

# A build tree of its own: objects from a developer's `make SANITIZE=...`
# in build/ must not end up in an image.
out=build/image
echo "build.sh: building ${progs[*]} in $out"
make -j"$(nproc)" --no-print-directory BUILD="$out" BIN="$out/bin" "${progs[@]/#/$out/bin/}"

install -d "$prefix/bin" "$prefix/share/annot"
for p in "${progs[@]}"; do
  install -m 0755 -s "$out/bin/$p" "$prefix/bin/$p"
done
rm -rf "$prefix/share/annot/config"
cp -R config "$prefix/share/annot/config"
for s in "${services[@]}"; do
  install -d "$prefix/share/annot/services/$s/migrations"
  if compgen -G "services/$s/migrations/*.sql" >/dev/null; then
    install -m 0644 "services/$s/migrations/"*.sql "$prefix/share/annot/services/$s/migrations/"
  fi
done
find "$prefix/share/annot" -type d -exec chmod 0755 {} +
find "$prefix/share/annot" -type f -exec chmod 0644 {} +
echo "build.sh: installed ${progs[*]} under $prefix"
