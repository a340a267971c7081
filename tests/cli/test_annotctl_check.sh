#!/usr/bin/env bash
# annotctl check as a guideline author uses it: one JSON result per input
# line, in order; a bad line gets an error object naming the line and the
# field, and the run goes on; exit 1 when a finding blocks or a line was
# bad, 0 when all is clean.  Needs no servers.
set -euo pipefail
cd "$(dirname "$0")/../.."
export ANNOT_CONFIG_DIR=config
fail() { echo "test_annotctl_check: FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

task='{"task_id":"t1","kind":"production","image_uri":"s3://i/1.jpg","main_object":"curry rice","locale":"en-US"}'
clean="Japanese curry rice on a white ceramic plate. The thick brown curry sauce covers the left half of the white rice, with soft cubes of carrot and potato in the sauce. A silver spoon lies on the right side of the plate, on a light wooden table next to a glass of water and a folded paper napkin."
cat >"$tmp/in.ndjson" <<NDJSON
{"task":$task,"description":"$clean"}
{"task":$task,"description":"$clean It looks delicious."}
{"task":{"task_id":"t2","kind":"production","main_object":"x","colour":"red"},"description":"x"}
not json at all
NDJSON

set +e
bin/annotctl check "$tmp/in.ndjson" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "exit $rc with a bad line, want 1"
[ "$(wc -l <"$tmp/out")" -eq 4 ] || fail "want 4 output lines, got $(wc -l <"$tmp/out")"
sed -n 1p "$tmp/out" | grep -q '"findings":\[\]' || fail "clean line has findings: $(sed -n 1p "$tmp/out")"
sed -n 1p "$tmp/out" | grep -q '"score":1' || fail "clean line score not 1"
sed -n 2p "$tmp/out" | grep -q '"rule":"subjective_language"' || fail "delicious not flagged"
sed -n 3p "$tmp/out" | grep -q '"line":3' || fail "bad line 3 not reported with its number"
sed -n 3p "$tmp/out" | grep -q 'task.colour' || fail "bad line 3 does not name the field"
sed -n 4p "$tmp/out" | grep -q '"line":4' || fail "line 4 not reported"
grep -q "line 3" "$tmp/err" || fail "no message on stderr for line 3"

head -n 2 "$tmp/in.ndjson" | bin/annotctl check - >"$tmp/out2" || fail "clean input (stdin) should exit 0"
[ "$(wc -l <"$tmp/out2")" -eq 2 ] || fail "stdin: want 2 lines"

printf '{"task":%s,"description":"bad \\u0001 control %s"}\n' "$task" "$clean" | bin/annotctl check - >/dev/null &&
  fail "a blocking finding (control character) should exit 1"
# Logs go to stderr: stdout is the results a script reads (here a retry
# warning, with PostgreSQL unreachable, must not become an output line).
echo '{"name":"A","locale":"en-US","skills":["dish"]}' >"$tmp/cand.ndjson"
ANNOT_DATABASE_URL=postgresql://127.0.0.1:1/x ANNOT_KAFKA_BROKERS=127.0.0.1:1 \
  bin/annotctl -X pg.connect.timeout.s=1 candidates import "$tmp/cand.ndjson" >"$tmp/out3" 2>"$tmp/err3" &&
  fail "candidates import with PostgreSQL unreachable should fail"
[ ! -s "$tmp/out3" ] || fail "annotctl wrote its log to stdout: $(head -c 200 "$tmp/out3")"
grep -q 'not reachable yet' "$tmp/err3" || fail "the retry warning is not on stderr"
# A task line the dispatcher could not queue (no task_id: fuzz_task_json)
# makes the import fail whole, before any broker is reached.
echo '{"kind":"production","main_object":"kilt","locale":"en-GB"}' >"$tmp/tasks.ndjson"
ANNOT_KAFKA_BROKERS=127.0.0.1:1 timeout -s KILL 30 bin/annotctl tasks import "$tmp/tasks.ndjson" >/dev/null 2>"$tmp/err4" &&
  fail "tasks import of a task without task_id should fail"
grep -q 'line 1: task.task_id' "$tmp/err4" || fail "tasks import does not name task.task_id: $(head -c 300 "$tmp/err4")"
grep -q 'nothing imported' "$tmp/err4" || fail "tasks import did not refuse the file whole"
echo "test_annotctl_check: ok"
