#!/usr/bin/env bash
# `make test-api`: the dispatcher's HTTP API against its description,
# docs/openapi.yaml.
#   1. openapi-spec-validator checks the file is valid OpenAPI 3.0;
#   2. an embedded stack of its own (run/api-contract, its own ports), a
#      real annot-dispatcher, and the annot-autochecker and annot-assigner
#      that turn its submissions into validation work; seeded so the
#      authenticated routes get past their 401 and 403: an annotator with
#      production work to lease (`annotctl users add`, `annotctl tasks
#      import`), a validator of the same skill, and a candidate with a
#      screening test and training assigned (written into the dispatcher's
#      candidates table, as the funnel's events would);
#   3. schemathesis generates requests from the file (examples, coverage,
#      fuzzing, and the stateful phase that follows the links from a lease
#      to its heartbeat, release and submit) and checks every answer: no
#      5xx, a status code the file lists, its content type, its schema;
#   4. once a writer's submissions have become the validator's work,
#      schemathesis again on /v1/me and the lease routes as the validator
#      (validation leases and verdicts), and then as the candidate (its
#      stage in /v1/me; no exam work, so its lease requests get their 204
#      at once: the hooks send a valid wait_s as 0, or each would
#      long-poll, and a trial run took 52 minutes).
# Everything it started is stopped on exit.  schemathesis and
# openapi-spec-validator come from PyPI, pinned (tools/ci/api-requirements.txt),
# into build/api-venv.
#   ANNOT_API_PG_PORT (25502), ANNOT_API_REDIS_PORT (26449),
#   ANNOT_API_HTTP_PORT (18290), ANNOT_API_OPS_PORT (18291),
#   ANNOT_API_MAX_EXAMPLES (300 per operation), ANNOT_API_SEED (1),
#   ANNOT_API_DISPATCHER (bin/annot-dispatcher; e.g. one built with
#   SANITIZE=address,undefined)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ANNOT_RUN_DIR=${ANNOT_API_RUN_DIR:-$root/run/api-contract}
export ANNOT_PG_PORT=${ANNOT_API_PG_PORT:-25502}
export ANNOT_REDIS_PORT=${ANNOT_API_REDIS_PORT:-26449}
http_port=${ANNOT_API_HTTP_PORT:-18290}
ops_port=${ANNOT_API_OPS_PORT:-18291}
venv=$root/build/api-venv
work=$root/build/api-contract
say() { printf 'api-contract: %s\n' "$*"; }

tools/stack/install-deps.sh api
[ -x bin/annot-dispatcher ] && [ -x bin/annotctl ] || { echo "api-contract: run make first" >&2; exit 1; }

# The venv is rebuilt when the pinned list changed.
if ! cmp -s tools/ci/api-requirements.txt "$venv/requirements.txt"; then
  say "installing schemathesis and openapi-spec-validator into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tools/ci/api-requirements.txt
  cp tools/ci/api-requirements.txt "$venv/requirements.txt"
fi

say "openapi-spec-validator docs/openapi.yaml"
"$venv/bin/openapi-spec-validator" docs/openapi.yaml

rm -rf "$work"
mkdir -p "$work"
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  tools/stack/down.sh
}
trap stop_all EXIT
# Its own devbroker: topics without a lane's prefix.
unset ANNOT_TOPICS_PREFIX ANNOT_DEVBROKER_TOPIC_PREFIXES
tools/stack/up.sh
# shellcheck disable=SC1090
. "$ANNOT_RUN_DIR/devstack.env"

start() { # name ops_port binary args...
  local name=$1 port=$2 bin=$3
  shift 3
  "$bin" -X ops.addr=127.0.0.1:"$port" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.1; done
  curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" ||
    { echo "api-contract: $name did not become ready; its log:" >&2; tail -5 "$work/$name.log" >&2; exit 1; }
}
# Long leases (nothing expires during the run) and two held at most: a
# third lease is a 409 at once, so no request long-polls for its wait_s.
start annot-dispatcher "$ops_port" "${ANNOT_API_DISPATCHER:-bin/annot-dispatcher}" -X http.addr=127.0.0.1:"$http_port" \
  -X lease.annotation.ttl.ms=600000 -X lease.annotation.max.held=2 \
  -X lease.validation.ttl.ms=600000 -X lease.validation.max.held=2
start annot-autochecker $((ops_port + 1)) bin/annot-autochecker
start annot-assigner $((ops_port + 2)) bin/annot-assigner
say "annot-dispatcher on 127.0.0.1:$http_port, with annot-autochecker and annot-assigner"

token_of() { bin/annotctl users add "$@" 2>>"$work/annotctl.log" | tail -n 1; }
annotator=$(token_of --role annotator --name "Contract Annotator" --locale en-US --skills contract)
candidate=$(token_of --role candidate --name "Contract Candidate")
validator=$(token_of --role validator --name "Contract Validator" --locale en-US --skills contract)
case "$annotator$candidate$validator" in at_*at_*at_*) ;; *) echo "api-contract: annotctl users add gave no token" >&2; exit 1 ;; esac

# Production work for the annotator: more tasks than the run can submit.
tasks=200
for i in $(seq 1 "$tasks"); do
  printf '{"task_id":"contract-%d","kind":"production","image_uri":"s3://contract/%d.jpg","main_object":"curry rice","main_object_synonyms":["kare raisu"],"locale":"en-US","skills":["contract"],"components":[{"name":"sauce","relation":"poured over","target":"rice"}],"priority":5,"guideline_version":"g-2026.11"}\n' "$i" "$i"
done >"$work/tasks.ndjson"
bin/annotctl tasks import "$work/tasks.ndjson" >>"$work/annotctl.log" 2>&1
psql_q() { psql "$ANNOT_DATABASE_URL" -v ON_ERROR_STOP=1 -qtAc "$1"; }
for _ in $(seq 1 300); do
  [ "$(psql_q "SELECT count(*) FROM dispatcher.tasks WHERE task_id LIKE 'contract-%'")" -ge "$tasks" ] && break
  sleep 0.1
done
say "$(psql_q "SELECT count(*) FROM dispatcher.tasks WHERE task_id LIKE 'contract-%'") tasks queued"

# The candidate's screening test and training, as the funnel's
# ScreeningAssigned and TrainingAssigned would leave them; the screening
# id and questions are the ones docs/openapi.yaml's example answers.
candidate_id=$(curl -fs -H "Authorization: Bearer $candidate" "http://127.0.0.1:$http_port/v1/me" | jq -r .user_id)
bank_version=$(jq -r .version config/screening/bank.json)
training_version=$(jq -r .guideline_version config/training/material.json)
psql_q "INSERT INTO dispatcher.candidates (candidate_id, stage, screening_id, screening_version, screening_questions,
          screening_due_ms, training_version, training_samples)
        VALUES ('$candidate_id', 'screening', 'scr-example-1', '$bank_version', ARRAY['L1', 'G1'], 0,
                '$training_version', ARRAY['S1'])"

export SCHEMATHESIS_HOOKS=$root/tools/ci/api-contract-hooks.py API_CONTRACT_CANDIDATE_TOKEN=$candidate
status=0
# schemathesis_run LABEL TOKEN [options]: a run as the user of TOKEN (the
# candidate's routes always as the candidate), reports under report/LABEL.
schemathesis_run() {
  local label=$1 start rc=0
  export API_CONTRACT_TOKEN=$2
  shift 2
  say "schemathesis against docs/openapi.yaml ($label)"
  start=$(date +%s)
  # From build/: whatever state schemathesis or Hypothesis keep stays there.
  (cd "$work" && "$venv/bin/schemathesis" run "$root/docs/openapi.yaml" \
    --url "http://127.0.0.1:$http_port" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "${ANNOT_API_MAX_EXAMPLES:-300}" --seed "${ANNOT_API_SEED:-1}" \
    --generation-database none --generation-with-security-parameters false \
    --request-timeout 40 --workers 2 --no-color \
    --report junit,har --report-dir "$work/report/$label" "$@") || rc=$?
  say "schemathesis ($label) finished in $(( $(date +%s) - start )) s (exit $rc); reports (JUnit, HAR) in $work/report/$label"
  # The requests it made, by status code, from the HAR file.
  "$venv/bin/python" - "$label" "$work/report/$label"/har-*.json <<'PY' || true
import collections, json, sys
entries = [e for f in sys.argv[2:] for e in json.load(open(f))["log"]["entries"]]
codes = collections.Counter(e["response"]["status"] for e in entries)
print(f"api-contract: {sys.argv[1]}: {len(entries)} requests; by status: "
      + ", ".join(f"{c}: {n}" for c, n in sorted(codes.items())))
PY
  [ "$rc" -eq 0 ] || status=$rc
}

schemathesis_run annotator "$annotator"

# Validation work: a writer (another annotator of the skill: the first may
# still hold the two leases it may) leases and submits descriptions that
# pass the auto-checker; checked and assigned, they become the validator's
# work.  A few are enough: the lease routes hold two at once.
writer=$(token_of --role annotator --name "Contract Writer" --locale en-US --skills contract)
good='Curry rice fills a white oval plate on a wooden table. A thick brown sauce is poured over the rice and covers the right half of the plate, with cubes of carrot, potato and beef in it. The rice on the left half is white and glossy, pressed into a low mound. A silver spoon lies on the rim of the plate.'
for _ in $(seq 1 8); do
  lease=$(curl -fs -H "Authorization: Bearer $writer" -H 'Content-Type: application/json' \
    -d '{"queue": "annotation"}' "http://127.0.0.1:$http_port/v1/leases" | jq -r .lease_id)
  curl -fs -o /dev/null -H "Authorization: Bearer $writer" -H 'Content-Type: application/json' \
    -d "$(jq -cn --arg d "$good" '{description: $d}')" "http://127.0.0.1:$http_port/v1/leases/$lease/submit"
done
validator_id=$(curl -fs -H "Authorization: Bearer $validator" "http://127.0.0.1:$http_port/v1/me" | jq -r .user_id)
for _ in $(seq 1 600); do
  [ "$(psql_q "SELECT count(*) FROM dispatcher.assignments WHERE validator_id = '$validator_id'")" -ge 5 ] && break
  sleep 0.1
done
assigned=$(psql_q "SELECT count(*) FROM dispatcher.assignments WHERE validator_id = '$validator_id'")
say "$assigned submissions assigned to the validator"
if [ "$assigned" -lt 5 ]; then
  echo "api-contract: the writer's submissions never became validation work:" \
    "$(psql_q "SELECT count(*) FROM autochecker.check_results") checked," \
    "$(psql_q "SELECT count(*) FROM assigner.assignments") assigned," \
    "$(psql_q "SELECT count(*) FROM assigner.unassigned") waiting for a validator" >&2
  status=1
else
  schemathesis_run validator "$validator" --include-path-regex '^/v1/(leases|me)'
fi
schemathesis_run candidate "$candidate" --include-path-regex '^/v1/(leases|me)'

if [ "$status" -ne 0 ]; then
  for name in annot-dispatcher annot-autochecker annot-assigner; do
    echo "api-contract: $name's warnings:" >&2
    grep -v '"level":"info"' "$work/$name.log" | tail -20 >&2 || true
  done
fi
exit "$status"
