#!/usr/bin/env bash
# The event contract is complete and documented:
# (a) every type of common/vox_event.c's table has schemas/events/<type>.schema.json,
#     except the types listed in schemas/missing.txt (one a line, # comments),
#     which must be exactly the ones still without a schema (a listed type that
#     has one fails too, so the list only shrinks);
# (b) docs/EVENTS.md is what tools/gen-events-doc writes (regenerate and diff).
set -euo pipefail
cd "$(dirname "$0")/../.."
fail=0

# (a) The C table's types, parsed as tools/gen-events-doc parses them.
types=$(/usr/bin/python3 - <<'PY'
import importlib.machinery, importlib.util
loader = importlib.machinery.SourceFileLoader("gen", "tools/gen-events-doc")
spec = importlib.util.spec_from_loader("gen", loader)
gen = importlib.util.module_from_spec(spec)
loader.exec_module(gen)
for t, *_rest in gen.c_kinds("common/vox_event.c"):
    print(t)
PY
)
allowed=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' schemas/missing.txt 2>/dev/null | grep -v '^$' || true)
missing=""
for t in $types; do
	[ -f "schemas/events/$t.schema.json" ] || missing="$missing $t"
done
unlisted=""
for t in $missing; do
	grep -qxF "$t" <<<"$allowed" || unlisted="$unlisted $t"
done
stale=""
for t in $allowed; do
	if ! grep -qxF "$t" <<<"$types"; then
		stale="$stale $t(not-in-vox_event.c)"
	elif [ -f "schemas/events/$t.schema.json" ]; then
		stale="$stale $t"
	fi
done
if [ -n "$unlisted" ]; then
	echo "FAIL types of common/vox_event.c without a schema:"
	printf '  %s\n' $unlisted
	fail=1
fi
if [ -n "$stale" ]; then
	echo "FAIL schemas/missing.txt lists types that are not missing (remove them):"
	printf '  %s\n' $stale
	fail=1
fi
n_missing=$(wc -w <<<"$missing")
echo "types: $(wc -w <<<"$types") in vox_event.c, $n_missing without a schema, $(wc -w <<<"$allowed") listed in schemas/missing.txt"

# (b) The generated document is current.
if ! tools/gen-events-doc --stdout | diff -u docs/EVENTS.md - >/tmp/events_doc.$$.diff; then
	echo "FAIL docs/EVENTS.md is not what tools/gen-events-doc writes (run it and commit):"
	head -40 /tmp/events_doc.$$.diff
	fail=1
fi
rm -f /tmp/events_doc.$$.diff
[ "$fail" = 0 ] && echo "ok   docs/EVENTS.md is current"
exit "$fail"
