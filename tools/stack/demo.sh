#!/usr/bin/env bash
# `make demo`: the main job.  Until all services land (issue 9 brings the
# simulator and the operation's report), it starts the embedded stack on its
# own ports, shows what is up (brokers, topics with their partitions, the
# stores), runs the guideline checker on descriptions of the labelled corpus,
# starts the dispatcher, makes a user and lints a description through
# POST /v1/check, and stops everything it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ANNOT_RUN_DIR="$root/run/demo"
export ANNOT_PG_PORT=${ANNOT_DEMO_PG_PORT:-55452}
export ANNOT_REDIS_PORT=${ANNOT_DEMO_REDIS_PORT:-56399}
trap 'tools/stack/down.sh' EXIT
tools/stack/up.sh
# shellcheck disable=SC1091
. "$ANNOT_RUN_DIR/devstack.env"

echo
echo "== annotctl status"
bin/annotctl status
echo
echo "== annotctl topics list"
bin/annotctl topics list

echo
echo "== annotctl check: the guideline rules on 6 descriptions of the labelled corpus"
n=0
{ head -n 2 tests/corpus/checker.ndjson; grep -m 4 '"expect": \["' tests/corpus/checker.ndjson; } |
  { bin/annotctl check - 2>/dev/null || true; } | while read -r line; do
  n=$((n + 1))
  score=$(printf '%s' "$line" | grep -o '"score":[0-9.]*' | cut -d: -f2 | cut -c1-4 || true)
  rules=$(printf '%s' "$line" | grep -o '"rule":"[a-z_]*"' | cut -d'"' -f4 | sort -u | paste -sd, - || true)
  echo "  #$n: score $score  ${rules:-clean}"
done

echo
echo "== annot-dispatcher: a user and a pre-submit check over HTTP"
http_port=${ANNOT_DEMO_HTTP_PORT:-18090}
bin/annot-dispatcher -X http.addr=127.0.0.1:$http_port >"$ANNOT_RUN_DIR/dispatcher.log" 2>&1 &
dispatcher=$!
trap 'kill $dispatcher 2>/dev/null; wait $dispatcher 2>/dev/null; tools/stack/down.sh' EXIT
token=$(bin/annotctl users add --role annotator --name "Demo Annotator" --locale ja-JP | tail -n 1)
for _ in $(seq 1 50); do curl -fs -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$http_port/v1/me" && break; sleep 0.1; done
echo "  GET /v1/me -> $(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$http_port/v1/me")"
body='{"task":{"task_id":"demo-1","kind":"production","image_uri":"s3://demo/1.jpg","main_object":"curry rice","locale":"en-US","components":[{"name":"sauce","relation":"poured over","target":"rice"}]},"description":"A beautiful plate of curry rice. You can see rice and sauce. I think it is delicious."}'
echo "  POST /v1/check -> $(curl -s -XPOST -H "Authorization: Bearer $token" "http://127.0.0.1:$http_port/v1/check" -d "$body")"
