#!/usr/bin/env bash
# Creates what docker/compose.yaml needs and git never holds: docker/.env
# (the Kafka cluster id, the project name) and docker/secrets/ with fresh
# random passwords and Redis's TLS files: a CA of this deployment (its key
# stays here, mode 0600, mounted nowhere), Redis's certificate for the name
# `redis` and the services' client certificate, made with openssl.  Never
# overwrites a file that exists, so it is safe to run again; to rotate a
# secret or renew a certificate, see docs/OPERATIONS.md.
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
# rediss://: TLS to Redis's port 6380, through the images' entrypoint.
write "$s/redis_url" "rediss://:$(cat "$s/redis_password")@redis:6380/0"

# Redis TLS.  EC P-256 keys; the CA for 10 years, the certificates for 825
# days (renew: delete the .crt and .key and run this again).
command -v openssl >/dev/null || { echo "init-secrets: openssl is needed for Redis's TLS files" >&2; exit 1; }
# cert NAME SUBJECT EXTENSIONS: NAME.key and NAME.crt signed by the CA.
cert() {
  if [ -e "$s/$1.crt" ]; then
    echo "init-secrets: keeping $s/$1.crt"
    return
  fi
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
    -keyout "$s/$1.key" -out "$s/$1.csr" 2>/dev/null
  openssl x509 -req -sha256 -days 825 -in "$s/$1.csr" -CA "$s/redis_tls_ca.crt" -CAkey "$s/redis_tls_ca.key" \
    -CAcreateserial -extfile <(printf '%s\n' "$3") -out "$s/$1.crt" 2>/dev/null
  rm -f "$s/$1.csr" "$s/redis_tls_ca.srl"
  chmod 0644 "$s/$1.crt" "$s/$1.key"
  echo "init-secrets: wrote $s/$1.crt and $s/$1.key"
}
if [ -e "$s/redis_tls_ca.crt" ]; then
  echo "init-secrets: keeping $s/redis_tls_ca.crt"
else
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
    -subj "/CN=annot Redis CA" -keyout "$s/redis_tls_ca.key" -out "$s/redis_tls_ca.crt" 2>/dev/null
  chmod 0600 "$s/redis_tls_ca.key"
  chmod 0644 "$s/redis_tls_ca.crt"
  echo "init-secrets: wrote $s/redis_tls_ca.crt (CA key: $s/redis_tls_ca.key, keep it off the servers)"
fi
# No extendedKeyUsage on Redis's: its healthcheck uses it as a client's too.
cert redis_tls "/CN=redis" "basicConstraints=CA:FALSE
subjectAltName=DNS:redis"
cert annot_redis_tls "/CN=annot-services" "basicConstraints=CA:FALSE
extendedKeyUsage=clientAuth"

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
