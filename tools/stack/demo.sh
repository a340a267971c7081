#!/usr/bin/env bash
# `make demo`: the main job.  Until the simulator lands (issue 8), a short
# scripted operation: it starts the embedded stack on its own ports and all
# five services, shows what is up, runs the guideline checker on labelled
# descriptions, then over the real HTTP API two annotators describe six
# dishes (some with the defects the guideline forbids), the autochecker and
# the assigner route them, two validators judge them, a candidate takes the
# screening test and the training, and the operation's report
# (`annotctl report`) closes it.  It stops everything it started.
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
echo "== the five services"
api=${ANNOT_DEMO_HTTP_PORT:-18090}
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  tools/stack/down.sh
}
trap stop_all EXIT
start() { # name ops_port args...
  local name=$1 port=$2
  shift 2
  "bin/$name" -X ops.addr=127.0.0.1:"$port" "$@" >"$ANNOT_RUN_DIR/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.1; done
  curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" || { echo "$name did not become ready; its log:"; tail -5 "$ANNOT_RUN_DIR/$name.log"; exit 1; }
  echo "  $name ready (ops on :$port)"
}
start annot-dispatcher 18091 -X http.addr=127.0.0.1:"$api"
start annot-autochecker 18092
start annot-assigner 18093
start annot-funnel 18094
start annot-metrics 18095

user() { bin/annotctl users add "$@" | tail -n 1; }
ann1=$(user --role annotator --name "Aiko" --locale en-US --skills dish)
ann2=$(user --role annotator --name "Bruno" --locale en-US --skills dish)
val1=$(user --role validator --name "Chen" --locale en-US --skills dish,exam)
val2=$(user --role validator --name "Dana" --locale en-US --skills dish,exam)
echo "  users: 2 annotators, 2 validators (tokens shown once by annotctl users add)"

call() { # method path token [body]
  curl -s -X "$1" -H "Authorization: Bearer $3" "http://127.0.0.1:$api$2" ${4:+-d "$4"}
}

echo
echo "== six dishes to describe (annotctl tasks import)"
tasks=$ANNOT_RUN_DIR/tasks.ndjson
: >"$tasks"
for d in "katsu curry|breaded pork cutlet|on top of|rice" "pad thai|lime wedge|beside|noodles" \
         "tteokbokki|boiled egg|on top of|rice cakes" "shakshuka|eggs|poached in|tomato sauce" \
         "bibimbap|fried egg|on top of|vegetables" "khachapuri|egg yolk|in the middle of|cheese"; do
  IFS='|' read -r dish comp rel target <<<"$d"
  jq -cn --arg id "demo-${dish// /-}" --arg d "$dish" --arg c "$comp" --arg r "$rel" --arg t "$target" \
    '{task_id:$id, kind:"production", image_uri:("s3://demo/" + $id + ".jpg"), main_object:$d, locale:"en-US",
      skills:["dish"], priority:5, guideline_version:"g-2026.11",
      components:[{name:$c, relation:$r, target:$t}]}' >>"$tasks"
done
bin/annotctl tasks import "$tasks"

echo
echo "== annotators lease and describe over HTTP (POST /v1/leases, .../submit)"
describe() { # main_object -> a description of 40-70 words; three carry defects
  case "$1" in
    "katsu curry") echo "Katsu curry on a white oval plate. A breaded pork cutlet, cut into six strips, lies on top of a mound of white rice, and thick brown curry sauce covers the right half of the cutlet and the rice. A small heap of red fukujinzuke pickles sits at the left edge of the plate, beside a metal spoon." ;;
    "pad thai") echo "A beautiful plate of pad thai that you will love. The noodles look amazing and the colours create a wonderful, cozy atmosphere that makes this dish perfect for a relaxing evening. Noodles, shrimp, lime, peanuts, bean sprouts and chives are all there, and everything seems to be fresh and tasty, probably cooked a minute ago." ;;
    "tteokbokki") echo "Tteokbokki in a shallow black pan: about twenty cylindrical rice cakes coated in a glossy red chili sauce, with a halved boiled egg on top of the rice cakes and two triangles of fish cake tucked between them. Sliced green onion is scattered over the sauce, and a wooden spoon rests on the rim of the pan." ;;
    "shakshuka") echo "Shakshuka in a black cast-iron skillet: three eggs poached in a thick red tomato sauce with pieces of green pepper, the yolks still whole and bright yellow. Chopped parsley is scattered over the sauce, and two slices of bread lie beside the skillet on a wooden board, next to a small bowl of salt." ;;
    "bibimbap") echo "Bibimbap in a stone bowl: a fried egg sits on top of the vegetables, which are arranged in sections over white rice: spinach, bean sprouts, julienned carrot, brown mushrooms and minced beef. A spoonful of red gochujang paste sits beside the egg, and sesame seeds are scattered over the spinach and carrot." ;;
    *) echo "Khachapuri is a traditional Georgian bread that has been baked for centuries and is known across the Caucasus. It is famous in Tbilisi, where people say it is the national dish, and its history goes back to the bakers of Adjara. There is a bread with cheese and an egg yolk on a plate." ;;
  esac
}
submitted=0
for tok in "$ann1" "$ann2" "$ann1" "$ann2" "$ann1" "$ann2"; do
  lease=$(call POST /v1/leases "$tok" '{"queue":"annotation","wait_s":10}')
  id=$(jq -r '.lease_id // empty' <<<"$lease")
  [ -n "$id" ] || continue
  obj=$(jq -r '.task.main_object' <<<"$lease")
  desc=$(describe "$obj")
  res=$(call POST "/v1/leases/$id/submit" "$tok" "$(jq -cn --arg d "$desc" '{description:$d}')")
  submitted=$((submitted + 1))
  echo "  $obj: $(jq -r 'if .submission_id then "202 accepted" else .error end' <<<"$res")"
done

echo
echo "== validators judge what the assigner gave them"
judged=0
idle=0
deadline=$((SECONDS + 90))
# Until both validators found nothing twice in a row (a double-validated
# submission gives work to both).
while [ $idle -lt 4 ] && [ $SECONDS -lt $deadline ]; do
  for tok in "$val1" "$val2"; do
    lease=$(call POST /v1/leases "$tok" '{"queue":"validation","wait_s":2}')
    id=$(jq -r '.lease_id // empty' <<<"$lease")
    if [ -z "$id" ]; then
      idle=$((idle + 1))
      continue
    fi
    idle=0
    # The demo's validators read the autochecker's findings and agree with
    # them; the simulator (issue 8) gives validators their own judgement.
    verdict=$(jq -c '[.task.check_findings[].rule] | unique as $r |
      if ($r | length) == 0 then {verdict:"accept", errors:[]}
      else {verdict:"reject", errors:[$r[] | {category:., severity:"minor"}],
            feedback:[{section:"4.1", kind:"edge_case", text:"how to state relations of a dish without its components in view"}]} end' <<<"$lease")
    res=$(call POST "/v1/leases/$id/submit" "$tok" "$verdict")
    judged=$((judged + 1))
    echo "  $(jq -r '.task.task.main_object' <<<"$lease"): $(jq -r .verdict <<<"$verdict") $(jq -r '[.errors[].category] | join(",")' <<<"$verdict")  -> $(jq -r 'if .validation_id then "202" else .error end' <<<"$res")"
  done
done
echo "  $judged verdicts on $submitted submissions (new annotators' first ones are validated blind by both)"

echo
echo "== a candidate: screening test and training over HTTP"
cand=$(printf '{"name":"Emre","locale":"en-US","skills":["dish"]}\n' | bin/annotctl candidates import - 2>/dev/null || true)
if [ -z "$cand" ]; then
  printf '{"name":"Emre","locale":"en-US","skills":["dish"]}\n' >"$ANNOT_RUN_DIR/candidates.ndjson"
  cand=$(bin/annotctl candidates import "$ANNOT_RUN_DIR/candidates.ndjson")
fi
ctok=$(jq -r '.token' <<<"$cand" | tail -n 1)
for _ in $(seq 1 100); do
  scr=$(call GET /v1/screening "$ctok")
  jq -e '.screening_id' >/dev/null 2>&1 <<<"$scr" && break
  sleep 0.2
done
# This candidate knows the answers (read from the key the funnel scores with).
answers=$(jq -c --slurpfile bank config/screening/bank.json \
  '{screening_id, answers: [.questions[].id as $q | {question_id: $q,
     answer: ($bank[0].questions[] | select(.id == $q) | .answer)}]}' <<<"$scr")
echo "  screening: $(jq '.questions | length' <<<"$scr") questions; answers -> $(call POST /v1/screening "$ctok" "$answers" | jq -r '.status // .error')"
for _ in $(seq 1 100); do
  tr=$(call GET /v1/training "$ctok")
  jq -e '.guideline_version' >/dev/null 2>&1 <<<"$tr" && break
  sleep 0.2
done
gv=$(jq -r .guideline_version <<<"$tr")
echo "  training: guideline $gv, $(jq '.sections | length' <<<"$tr") sections, $(jq '.samples | length' <<<"$tr") samples; acknowledged -> $(call POST /v1/training/complete "$ctok" "$(jq -cn --arg v "$gv" '{guideline_version:$v}')" | jq -r '.status // .error')"
for _ in $(seq 1 50); do
  stage=$(call GET /v1/me "$ctok" | jq -r .stage)
  [ "$stage" = exam1 ] && break
  sleep 0.2
done
echo "  stage now: $stage"

echo
echo "== the operation's report (annotctl report)"
sleep 3
bin/annotctl report
