#!/usr/bin/env bash
# tools/schema-compat, the CI compatibility check of issue 16 (see
# docs/EVENT_VERSIONS.md): it passes on the real schemas, the published
# copies of the current versions accept the valid examples, and each case of
# tests/data/schema-compat/<case>/ does what its `expect` file says:
#   refuse TEXT  base published as v1, changed refused with TEXT in the output
#   accept       base published as v1, changed accepted
#   raised       changed raises x-version: refused until v2 is published,
#                accepted with v1 and v2 side by side, refused once v1 is gone
set -euo pipefail
cd "$(dirname "$0")/../.."
compat=tools/schema-compat
bad=0
fail() { echo "FAIL $*"; bad=$((bad + 1)); }

if out=$("$compat" 2>&1); then echo "ok   real schemas: ${out##*$'\n'}"
else echo "$out"; fail "real schemas refused"; fi

/usr/bin/python3 -W ignore::DeprecationWarning - <<'PY' || fail "published copies"
import glob, json, os, sys
from jsonschema import Draft202012Validator
bad = 0
for path in sorted(glob.glob("schemas/events/*.schema.json")):
    kind = os.path.basename(path)[:-len(".schema.json")]
    if kind == "cloudevent":
        continue
    version = json.load(open(path)).get("x-version", 1)
    published = json.load(open(f"schemas/published/{kind}/v{version}.schema.json"))
    Draft202012Validator.check_schema(published)
    v = Draft202012Validator(published)
    for ex in sorted(glob.glob(f"schemas/examples/{kind}/valid/*.json")):
        errors = [e.message for e in v.iter_errors(json.load(open(ex)))]
        if errors:
            bad += 1
            print(f"FAIL {ex} against the published v{version}: {errors}")
print(f"ok   published copies accept the valid examples" if not bad else "")
sys.exit(1 if bad else 0)
PY

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for dir in tests/data/schema-compat/*/; do
    name=$(basename "$dir")
    read -r expect text <"$dir/expect"
    w="$tmp/$name"
    mkdir -p "$w/events" "$w/published"
    cp schemas/events/cloudevent.schema.json "$w/events/"
    run() { "$compat" --events "$w/events" --published "$w/published" "$@" 2>&1; }
    cp "$dir/base.schema.json" "$w/events/vox.test.widget.schema.json"
    run --publish >/dev/null || { fail "$name: base not publishable"; continue; }
    cp "$dir/changed.schema.json" "$w/events/vox.test.widget.schema.json"
    case $expect in
    refuse)
        if out=$(run); then fail "$name: accepted, expected refused with '$text'"
        elif [[ $out != *"$text"* ]]; then echo "$out"; fail "$name: refused without '$text'"
        elif run --publish >/dev/null; then fail "$name: --publish overwrote v1 with a breaking change"
        else echo "ok   $name: $(grep -F "$text" <<<"$out" | head -1)"; fi;;
    accept)
        if out=$(run); then echo "ok   $name: accepted"
        else echo "$out"; fail "$name: refused, expected accepted"; fi;;
    raised)
        if run >/dev/null; then fail "$name: accepted before v2 was published"
        elif ! run --publish >/dev/null; then fail "$name: --publish failed"
        elif ! [[ -f $w/published/vox.test.widget/v1.schema.json && -f $w/published/vox.test.widget/v2.schema.json ]]; then
            fail "$name: v1 and v2 not side by side"
        elif ! out=$(run); then echo "$out"; fail "$name: refused with v1 and v2 published"
        else
            rm "$w/published/vox.test.widget/v1.schema.json"
            if out=$(run); then fail "$name: accepted with v1 gone"
            elif [[ $out != *"v1 must stay published"* ]]; then echo "$out"; fail "$name: v1 gone, wrong message"
            else echo "ok   $name: refused until v2 published, accepted side by side, refused without v1"; fi
        fi;;
    *) fail "$name: unknown expectation '$expect'";;
    esac
done
echo "schema_compat.sh: $bad failures"
exit $((bad > 0))
