#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus under tests/fuzz/corpus/ from the
checker's labelled corpus (tests/corpus/checker.ndjson) and a few hand-made
bodies.  Run from the repository root; the output is committed, and
replaying it is part of the unit tests.  Inputs that once crashed a target
(regress-*) are kept by hand, never written here.  Standard library only:
the SubmissionEvent seeds are encoded by the small protobuf writer below."""
import hashlib
import json
import os

ROOT = "tests/fuzz/corpus"
PER_GROUP = 3  # entries per (kind, language) of the checker corpus


def write(target, name, data):
    os.makedirs(f"{ROOT}/fuzz_{target}", exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(f"{ROOT}/fuzz_{target}/{name}", "wb") as f:
        f.write(data)


def picked():
    """A few entries of each kind and language, the most varied labels first."""
    groups = {}
    with open("tests/corpus/checker.ndjson", encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            key = (e["task"].get("kind", ""), e["task"].get("locale", "")[:2])
            groups.setdefault(key, []).append(e)
    out = []
    for key in sorted(groups):
        seen = set()
        for e in groups[key]:
            labels = tuple(sorted(e.get("expect", [])))
            if labels in seen:
                continue
            seen.add(labels)
            out.append(e)
            if len(seen) == PER_GROUP:
                break
    return out


def check_input(e):
    t = e["task"]
    comps = "|".join("/".join([c.get("name", ""), c.get("relation", ""), c.get("target", "")])
                     for c in t.get("components", []))
    lines = [t.get("locale", ""), t["main_object"], "|".join(t.get("main_object_synonyms", [])), comps,
             t.get("kind", ""), t.get("pregenerated", "")]
    return "\n".join(lines) + "\n" + e["description"]


# -- protobuf wire format, enough for SubmissionEvent
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


KINDS = {"production": 1, "exam_stage1": 2, "exam_stage2": 3, "golden": 4}


def submission_event(e, i):
    t = e["task"]
    task = field(1, t["task_id"]) + field(2, KINDS[t["kind"]]) + field(4, t["main_object"])
    for s in t.get("main_object_synonyms", []):
        task += field(5, s)
    task += field(6, t.get("locale", "")) + field(7, "food")
    for c in t.get("components", []):
        task += field(8, field(1, c.get("name", "")) + field(2, c.get("relation", "")) + field(3, c.get("target", "")))
    if t.get("pregenerated"):
        task += field(9, t["pregenerated"])
    task += field(11, "g-1")
    event_id = "00000000-0000-4000-8000-%012d" % i
    header = field(1, event_id) + field(2, 1795773600000) + field(3, "annot-dispatcher") + field(5, "g-1")
    sub = (field(1, "s-%d" % i) + field(2, t["task_id"]) + field(5, "annotator-%d" % i) + field(6, 2) +
           field(7, KINDS[t["kind"]]) + field(8, e["description"]) + field(9, 1795773600000) + field(20, task))
    return field(1, header) + field(2, sub)


def main():
    entries = picked()
    for i, e in enumerate(entries):
        name = "%02d-%s" % (i, e["task"]["task_id"])
        write("check", name, check_input(e))
        write("task_json", name + "-task.json", json.dumps(e["task"], ensure_ascii=False))
        if i % 3 == 0:
            write("task_json", name + "-request.json", json.dumps(e, ensure_ascii=False))
        write("submission", name + ".pb", submission_event(e, i))
    for name, body in {
        "accept.json": {"verdict": "accept"},
        "accept-fenced.json": {"verdict": "accept", "fencing_token": 7},
        "reject.json": {"verdict": "reject", "errors": [
            {"category": "subjective_language", "severity": "minor", "section": "3.1"},
            {"category": "factual_error", "severity": "major", "note": "it is miso, not curry"}],
            "feedback": [{"section": "4.2", "kind": "ambiguity", "text": "sauces on top?"}]},
        "reject-critical.json": {"verdict": "reject", "errors": [
            {"category": "main_object_missing", "severity": "critical"}],
            "feedback": [{"section": "2", "kind": "edge_case", "text": "two bowls"},
                         {"section": "5.1", "kind": "missing_rule", "text": "garnish"}]},
        "description.json": {"description": "Curry rice on a white plate.", "fencing_token": 3},
        "unknown.json": {"verdict": "accept", "verdikt": "reject"},
        "screening.json": {"screening_id": "scr-1", "answers": [{"question_id": "L1", "answer": "b"},
                                                               {"question_id": "G2", "answer": "a"}]},
    }.items():
        write("verdict", name, json.dumps(body, ensure_ascii=False))
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    print(f"{ROOT}: {total} bytes")


if __name__ == "__main__":
    main()
