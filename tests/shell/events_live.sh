#!/usr/bin/env bash
# What the system really sent agrees with its schemas: every message on
# vox.events and the command topics (vox.cmd.*) of the test stack, sent since
# VOX_TEST_SINCE (tests/run sets it to the run's start; alone: the last 15
# minutes) by one of our sources (/voxlink/...), is validated against
# schemas/events/<type>.schema.json. Messages of other sources are the
# tests' own fixtures (some deliberately malformed) and are left out.
# The domain topics (vox.events.numbers, ...) are read too, and on them each
# key's `sequence` must go on without a gap in partition order (a repeat is
# a republished duplicate: same id; 1 again is a numbering that started
# over, as after a database reset of a dev stack).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VOX_KAFKA_BROKERS:?run on the test stack (tests/run, or eval \"\$(ops/stack env)\")}"
SINCE=${VOX_TEST_SINCE:-$(date -u -d '15 minutes ago' +%Y-%m-%dT%H:%M:%SZ)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
domains="vox.events.numbers vox.events.usage vox.events.billing vox.events.porting vox.events.notifications"
for t in $domains; do
	timeout 120 kcat -b "$VOX_KAFKA_BROKERS" -C -t "$t" -o beginning -e -q -f '%t\t%p\t%k\t%s\n' \
		>>"$work/domains.tsv" 2>/dev/null || true
done
touch "$work/domains.tsv"
topics="vox.events vox.cmd.provisioning vox.cmd.porting vox.cmd.invoicing vox.cmd.notifications vox.cdr.raw"
for t in $topics; do
	# -e: stop at the end; a topic without messages is fine
	timeout 120 kcat -b "$VOX_KAFKA_BROKERS" -C -t "$t" -o beginning -e -q -f '%s\n' \
		>>"$work/messages.ndjson" 2>/dev/null || true
done
/usr/bin/python3 - "$work/domains.tsv" <<'PY'
import json, sys
last, bad, checked = {}, 0, 0
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    parts = line.rstrip("\n").split("\t", 3)
    if len(parts) < 4:
        continue
    topic, part, key, value = parts
    try:
        ev = json.loads(value)
    except ValueError:
        continue
    seq = ev.get("sequence")
    if not isinstance(seq, int):
        continue  # published before sequences existed
    checked += 1
    k = (topic, part, key)
    prev = last.get(k)
    if prev is not None and seq not in (prev[0] + 1, 1) and not (seq <= prev[0] and ev.get("id") in prev[1]):
        bad += 1
        if bad <= 10:
            print(f"FAIL {topic} partition {part} key {key}: sequence {seq} after {prev[0]}")
    ids = prev[1] if prev is not None and seq != 1 else {}
    ids[ev.get("id")] = seq
    last[k] = (max(seq, prev[0]) if prev is not None and seq != 1 else seq, ids)
print(f"events_live: {checked} numbered events on the domain topics, {bad} out of sequence")
sys.exit(1 if bad else 0)
PY
cat "$work/domains.tsv" | cut -f4 >>"$work/messages.ndjson"
/usr/bin/python3 -W ignore::DeprecationWarning - "$work/messages.ndjson" "$SINCE" <<'PY'
import collections, glob, json, sys
from datetime import datetime
from jsonschema import Draft202012Validator, RefResolver

def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

store = {}
for path in glob.glob("schemas/events/*.schema.json"):
    with open(path) as f:
        schema = json.load(f)
    store[schema["$id"]] = schema
validators = {}
for schema in store.values():
    kind = schema["$id"].rsplit("/", 1)[1][: -len(".schema.json")]
    validators[kind] = Draft202012Validator(schema, resolver=RefResolver.from_schema(schema, store=store))
since = when(sys.argv[2])
seen, bad, first = collections.Counter(), collections.Counter(), {}
for line in open(sys.argv[1]):
    try:
        ev = json.loads(line)
        if not str(ev.get("source", "")).startswith("/voxlink/") or when(ev["time"]) < since:
            continue
    except (ValueError, KeyError, TypeError):
        continue
    kind = ev.get("type")
    seen[kind] += 1
    if kind not in validators:
        bad[kind] += 1
        first.setdefault(kind, "no schema for this type")
        continue
    errors = list(validators[kind].iter_errors(ev))
    if errors:
        bad[kind] += 1
        e = errors[0]
        first.setdefault(kind, f"{'/'.join(map(str, e.path))}: {e.message[:200]} (id {ev.get('id')})")
for kind in sorted(seen):
    print(f"{'FAIL' if bad[kind] else 'ok  '} {kind}: {seen[kind]} messages" +
          (f", {bad[kind]} not valid: {first[kind]}" if bad[kind] else ""))
print(f"events_live: {sum(seen.values())} messages since {sys.argv[2]}, {sum(bad.values())} not valid")
sys.exit(1 if bad else 0)
PY
