#!/usr/bin/env bash
# Creates what docker/compose.yaml needs and git never holds: docker/.env
# (the Kafka cluster id, the project name) and docker/secrets/ with fresh
# random passwords.  Never overwrites a file that exists, so it is safe to
# run again; to rotate a secret, see docs/OPERATIONS.md.
#
#   docker/init-secrets.sh [DIR]      DIR defaults to docker/
#
# docker/secrets/ is mode 0700, so other users of the host cannot read it;
# the files in it are 0644 because compose mounts them into containers whose
# users (postgres, redis, annot uid 10001) are not the host's owner.
set -euo pipefail
dir=${1:-$(cd "$(dirname "$0")" && pwd)}
umask 022
mkdir -p "$dir/secrets"
chmod 0700 "$dir/secrets"

random_hex() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# write FILE CONTENT: only when FILE is missing.
write() {
  if [ -e "$1" ]; then
    echo "init-secrets: keeping $1"
  else
    printf '%s\n' "$2" >"$1"
    chmod 0644 "$1"
    echo "init-secrets: wrote $1"
  fi
}

s=$dir/secrets
write "$s/postgres_password" "$(random_hex)"
write "$s/redis_password" "$(random_hex)"
# The URLs carry the same passwords (hex: nothing to escape in a URL).
write "$s/database_url" \
  "postgresql://annot:$(cat "$s/postgres_password")@postgres:5432/annot?sslmode=${ANNOT_PG_SSLMODE:-prefer}"
write "$s/redis_url" "redis://:$(cat "$s/redis_password")@redis:6379/0"
write "$s/annot.conf" "# Read by every annot container (--config /run/secrets/annot_conf), after
# the image's config and before the environment.  Keys under kafka. go to
# librdkafka unchanged.  The bundled broker is PLAINTEXT on the internal
# network; for a cluster with SASL and TLS, for example:
#
# kafka.security.protocol = SASL_SSL
# kafka.sasl.mechanisms = SCRAM-SHA-512
# kafka.sasl.username = annot
# kafka.sasl.password = ...
# kafka.ssl.ca.location = /run/secrets/kafka_ca   (add the secret in compose.yaml)
#
# Any other key of \`<binary> --help\` may go here too (thresholds, pool sizes)."
write "$dir/.env" "# docker/compose.yaml reads this file; docker/init-secrets.sh wrote it.
COMPOSE_PROJECT_NAME=annot
KAFKA_CLUSTER_ID=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
