#!/usr/bin/env bash
# What the system really sent agrees with its schemas: every message on
# vox.events and the command topics (vox.cmd.*) of the test stack, sent since
# VOX_TEST_SINCE (tests/run sets it to the run's start; alone: the last 15
# minutes) by one of our sources (/voxlink/...), is validated against
# schemas/events/<type>.schema.json. Messages of other sources are the
# tests' own fixtures (some deliberately malformed) and are left out.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VOX_KAFKA_BROKERS:?run on the test stack (tests/run, or eval \"\$(ops/stack env)\")}"
SINCE=${VOX_TEST_SINCE:-$(date -u -d '15 minutes ago' +%Y-%m-%dT%H:%M:%SZ)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
topics="vox.events vox.cmd.provisioning vox.cmd.porting vox.cmd.invoicing vox.cmd.notifications vox.cdr.raw"
for t in $topics; do
	# -e: stop at the end; a topic without messages is fine
	timeout 120 kcat -b "$VOX_KAFKA_BROKERS" -C -t "$t" -o beginning -e -q -f '%s\n' \
		>>"$work/messages.ndjson" 2>/dev/null || true
done
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
