#!/usr/bin/env bash
# Every example under schemas/examples/<type>/{valid,invalid} is checked
# against schemas/events/<type>.schema.json (JSON Schema 2020-12); the C
# side of the same files is tests/unit/test_schemas.c.
set -euo pipefail
cd "$(dirname "$0")/../.."
/usr/bin/python3 -W ignore::DeprecationWarning - <<'PY'
import glob, json, os, sys
from jsonschema import Draft202012Validator, RefResolver

store = {}
for path in glob.glob("schemas/events/*.schema.json"):
    with open(path) as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    store[schema["$id"]] = schema
bad = 0
for typedir in sorted(glob.glob("schemas/examples/*")):
    kind = os.path.basename(typedir)
    schema = next(s for s in store.values() if s["$id"].endswith("/" + kind + ".schema.json"))
    validator = Draft202012Validator(schema, resolver=RefResolver.from_schema(schema, store=store))
    for expect in ("valid", "invalid"):
        for path in sorted(glob.glob(f"{typedir}/{expect}/*.json")):
            with open(path) as f:
                doc = json.load(f)
            errors = list(validator.iter_errors(doc))
            if (expect == "valid") != (not errors):
                bad += 1
                print(f"FAIL {path}: expected {expect}, errors: {[e.message for e in errors]}")
            else:
                print(f"ok   {path}")
sys.exit(1 if bad else 0)
PY
