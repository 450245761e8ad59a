#!/usr/bin/env bash
# The HTTP contract, schemas/openapi.yaml, checked against itself, the code
# and the docs:
#   1. tools/openapi-lint (@redocly/cli, recommended rules): no error or warning;
#   2. its paths and methods equal `ingress --routes`, in both directions;
#   3. conventions redocly does not know: x-permission on every operation,
#      security: [] exactly on the x-permission: none ones, 401/403/429 on
#      every authenticated one, 400 where there is a body or a query,
#      Idempotency-Key on every POST, Location on every 202;
#   4. docs/PERMISSIONS.md's tables agree with each other and with
#      x-permission;
#   5. every error code in the document's examples is in docs/ERRORS.md.
# Needs /usr/bin/python3 with PyYAML (Debian: python3-yaml).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${VOX_BIN_DIR:-build/rel/bin}

echo "== lint"
tools/openapi-lint

echo "== routes, permissions, errors"
if [ ! -x "$bin/ingress" ]; then
	echo "FAIL: $bin/ingress is not built" >&2
	exit 1
fi
routes=$(timeout 10 "$bin/ingress" --routes) || {
	echo "FAIL: '$bin/ingress --routes' did not exit 0" >&2
	exit 1
}
ROUTES="$routes" /usr/bin/python3 - <<'PY'
import os, re, sys
import yaml

with open("schemas/openapi.yaml") as f:
    spec = yaml.safe_load(f)
problems = []
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node

ops = {}
for path, item in spec["paths"].items():
    for method in METHODS:
        if method in item:
            ops[f"{method.upper()} {path}"] = (item, item[method])

# 2. Routes, both directions.
served = {line.strip() for line in os.environ["ROUTES"].splitlines() if line.strip()}
if not served:
    problems.append("ingress --routes printed no route")
for r in sorted(served - ops.keys()):
    problems.append(f"served by the ingress but not in schemas/openapi.yaml: {r}")
for r in sorted(ops.keys() - served):
    problems.append(f"in schemas/openapi.yaml but not served by the ingress: {r}")

# 3. Conventions.
PERMS = {"read", "operate", "billing", "keys", "account", "none", "carrier"}
# "carrier": POST /v1/carrier/cdrs, authenticated by a carrier key and a
# signature rather than an account role: no 403, no Idempotency-Key (the
# signature's replay check and the record ids make retries safe), and its
# 202 is a result, not an operation (no Location). It is not in
# docs/PERMISSIONS.md's role table; docs/CARRIER_CDRS.md describes it.
for name, (item, op) in sorted(ops.items()):
    method = name.split()[0]
    perm = op.get("x-permission")
    responses = op.get("responses", {})
    params = [resolve(p) for p in item.get("parameters", []) + op.get("parameters", [])]
    if perm not in PERMS:
        problems.append(f"{name}: x-permission is {perm!r}, not one of {sorted(PERMS)}")
        continue
    public = op.get("security") == []
    if public != (perm == "none"):
        problems.append(f"{name}: security: [] must go with x-permission: none, and only with it")
    if perm != "none":
        if op.get("x-rate-limit-class") not in ("read", "command", "search", "route"):
            problems.append(f"{name}: x-rate-limit-class missing or not read/command/search/route")
        for status in ("401", "429") if perm == "carrier" else ("401", "403", "429"):
            if status not in responses:
                problems.append(f"{name}: authenticated but does not list {status}")
    if ("requestBody" in op or any(p["in"] == "query" for p in params)) and "400" not in responses:
        problems.append(f"{name}: takes a body or query but does not list 400")
    if "requestBody" in op:
        for status in ("413", "415"):
            if status not in responses:
                problems.append(f"{name}: takes a body but does not list {status}")
    if method == "POST" and perm != "carrier":
        if not any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in params):
            problems.append(f"{name}: a POST without the Idempotency-Key parameter")
        for status in ("409", "422"):
            if status not in responses:
                problems.append(f"{name}: accepts Idempotency-Key but does not list {status}")
    if "202" in responses and perm != "carrier" and "Location" not in resolve(responses["202"]).get("headers", {}):
        problems.append(f"{name}: 202 without a Location header")
    for status, resp in responses.items():
        if "X-Request-Id" not in resolve(resp).get("headers", {}):
            problems.append(f"{name}: {status} does not declare X-Request-Id")

# 4. docs/PERMISSIONS.md: the role table, the endpoint table, x-permission.
def table_after(text, heading):
    rows, seen = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            seen = line.strip() == heading
            continue
        if seen and line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows[0], rows[1:]

with open("docs/PERMISSIONS.md") as f:
    doc = f.read()
head, rows = table_after(doc, "## Roles")
perm_cols = head[1:]
holds = {}
for row in rows:
    holds[row[0]] = {p for p, cell in zip(perm_cols, row[1:]) if cell.startswith("✓")}
head, rows = table_after(doc, "## Endpoints")
roles = head[2:]
if set(roles) != set(holds):
    problems.append(f"PERMISSIONS.md: the endpoint table's roles {roles} are not the role table's {sorted(holds)}")
documented = {}
for row in rows:
    endpoint = row[0].strip("`")
    documented[endpoint] = row[1]
    allowed = {r for r, cell in zip(roles, row[2:]) if cell.startswith("✓")}
    expect = {r for r in roles if row[1] in holds.get(r, set())}
    if allowed != expect:
        problems.append(f"PERMISSIONS.md: {endpoint} ticks {sorted(allowed)}, but the roles holding {row[1]} are {sorted(expect)}")
for name, (item, op) in sorted(ops.items()):
    perm = op.get("x-permission")
    if perm in ("none", "carrier"):
        if name in documented:
            problems.append(f"PERMISSIONS.md lists {name}, which needs no credentials")
    elif name not in documented:
        problems.append(f"PERMISSIONS.md does not list {name}")
    elif documented[name] != perm:
        problems.append(f"{name}: x-permission {perm} but PERMISSIONS.md says {documented[name]}")
for name in sorted(documented.keys() - ops.keys()):
    problems.append(f"PERMISSIONS.md lists {name}, which is not in schemas/openapi.yaml")

# 5. Error codes in examples are documented.
with open("docs/ERRORS.md") as f:
    errors_doc = f.read()
listed = set(re.findall(r"^\|\s*\d{3}\s*\|\s*`([a-z_]+)`", errors_doc, re.M))
used = set()
def walk(node):
    if isinstance(node, dict):
        err = node.get("error")
        if isinstance(err, dict) and "requestId" in err and isinstance(err.get("code"), str):
            used.add(err["code"])
        for v in node.values():
            walk(v)
    elif isinstance(node, list):
        for v in node:
            walk(v)
walk(spec)
for code in sorted(used - listed):
    problems.append(f"error code {code} is used in schemas/openapi.yaml but not in docs/ERRORS.md")

for p in problems:
    print("FAIL:", p)
print(f"{len(ops)} operations, {len(served)} routes served, {len(used)} error codes: "
      + ("ok" if not problems else f"{len(problems)} problem(s)"))
sys.exit(1 if problems else 0)
PY
