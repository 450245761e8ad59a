#!/usr/bin/env bash
# The API contract: schemathesis (pinned, installed by ops/install-deps into
# a venv) generates requests from schemas/openapi.yaml and checks the
# ingress' answers against it, every check on: no 5xx, statuses, headers
# and bodies as documented, schema-valid requests accepted, schema-violating
# ones refused, 405s with Allow, links followed in the stateful phase.
# Starts its own ingress and provisioning worker (free ports) on the test
# stack tests/run exported, with a fresh account and carrier credential;
# tests/contract/hooks.py signs the carrier requests. 0 failures passes.
#
#   VOX_CONTRACT_EXAMPLES  examples per operation (default 20;
#                          `make contract-full` runs 200)
#   VOX_CONTRACT_SEED      hypothesis seed (default 20261124)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
bin=${VOX_BIN_DIR:-build/rel/bin}
logs=${VOX_TEST_LOGS:-$root/build/rel/test-logs}
ST_VERSION=4.32.5 # keep in step with ops/install-deps
venv=${VOX_CACHE_DIR:-$HOME/.cache/voxlink}/st-venv
examples=${VOX_CONTRACT_EXAMPLES:-20}
seed=${VOX_CONTRACT_SEED:-20261124}
PY=/usr/bin/python3
tmp=$(mktemp -d)
pids=()
mkdir -p "$logs"

cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
die() {
	echo "FAIL: $*"
	exit 1
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
jget() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

[ -x "$venv/bin/st" ] || die "no schemathesis in $venv: run ops/install-deps"
got=$("$venv/bin/st" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1)
[ "$got" = "$ST_VERSION" ] || die "schemathesis $got in $venv, want $ST_VERSION: run ops/install-deps"
for b in ingress provisioning voxctl; do
	[ -x "$bin/$b" ] || die "$bin/$b is not built"
done

name="contract-$$-$(date +%s)"
"$bin/voxctl" account create --name "$name" --json >"$tmp/account.json" || die "voxctl account create"
"$bin/voxctl" carrier create --name "$name" --json >"$tmp/carrier.json" || die "voxctl carrier create"
export VOX_CONTRACT_KEY VOX_CONTRACT_KEY_ID VOX_CONTRACT_CARRIER_KEY VOX_CONTRACT_CARRIER_SECRET
VOX_CONTRACT_KEY=$(jget "$tmp/account.json" api_key)
VOX_CONTRACT_KEY_ID=$(jget "$tmp/account.json" key_id)
VOX_CONTRACT_CARRIER_KEY=$(jget "$tmp/carrier.json" key)
VOX_CONTRACT_CARRIER_SECRET=$(jget "$tmp/carrier.json" signing_secret)

# A keyring, so answers that carry a secret (webhook endpoints, trigger
# callbacks) can be made and sealed: without one they are 503 by design.
export VOX_ENCRYPTION_KEY=${VOX_ENCRYPTION_KEY:-$(openssl rand -hex 32)}
# Rate limits out of the way: the run is one credential sending thousands
# of requests, and 429s would hide what it checks.
port=$(free_port)
VOX_INGRESS_PORT=$port VOX_RATE_READ=1000000 VOX_RATE_COMMAND=1000000 VOX_RATE_SEARCH=1000000 \
	VOX_OPENAPI_FILE="$root/schemas/openapi.yaml" "$bin/ingress" >"$logs/contract-ingress.log" 2>&1 &
pids+=($!)
# A worker, so commands finish (Prefer: wait answers 200 with the result)
# and the links from their results reach reservations, orders and numbers.
VOX_WORKER_METRICS_PORT=0 "$bin/provisioning" >"$logs/contract-provisioning.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$port"
for _ in $(seq 100); do
	curl -fsS -m 1 -o /dev/null "$base/healthz" 2>/dev/null && break
	sleep 0.1
done
curl -fsS -m 2 -o /dev/null "$base/healthz" || die "the ingress did not come up (log: $logs/contract-ingress.log)"

# What the hooks and the document assume, checked against this server:
# the numbers hooks.py generates for format: e164 are valid, and the
# country enum is exactly the set the server takes (country is checked
# before area_code, so a bad area_code keeps the request cheap).
auth=(-H "Authorization: Bearer $VOX_CONTRACT_KEY")
BASE=$base KEY=$VOX_CONTRACT_KEY "$PY" - <<'PY' || die "the document's assumptions do not hold (above)"
import ast, itertools, json, os, string, sys, urllib.error, urllib.parse, urllib.request
import yaml

base, key = os.environ["BASE"], os.environ["KEY"]
def status(path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + key})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

bad = []
src = open("tests/contract/hooks.py").read()
numbers = ast.literal_eval(src.split("VALID_E164 = ", 1)[1].split("]", 1)[0] + "]")
for n in numbers:
    code, _ = status("/v1/numbers?cursor=" + urllib.parse.quote(n))
    if code != 200:
        bad.append(f"hooks.py VALID_E164 {n}: the server answers {code}")
spec = yaml.safe_load(open("schemas/openapi.yaml"))
params = spec["paths"]["/v1/available-numbers"]["get"]["parameters"]
enum = set(next(p for p in params if p.get("name") == "country")["schema"]["enum"])
taken = set()
for a, b in itertools.product(string.ascii_uppercase, repeat=2):
    code, body = status(f"/v1/available-numbers?country={a}{b}&area_code=x")
    if code != 400:
        bad.append(f"country={a}{b}&area_code=x answered {code}")
    elif body["error"]["details"].get("parameter") == "area_code":
        taken.add(a + b)
for c in sorted(taken - enum):
    bad.append(f"country {c}: the server takes it, the document's enum lacks it")
for c in sorted(enum - taken):
    bad.append(f"country {c}: in the document's enum, the server refuses it")
for b in bad:
    print("FAIL:", b)
print(f"{len(numbers)} numbers, {len(enum)} countries checked")
sys.exit(1 if bad else 0)
PY
# RFC 9110: a 405 names the methods the path takes, in the error format.
allow=$(curl -sS -o "$tmp/405.json" -D - -X PATCH "${auth[@]}" "$base/v1/api-keys" | tr -d '\r' |
	sed -n 's/^[Aa]llow: //p')
[ "$allow" = "POST, GET" ] || die "405 Allow is '$allow', want 'POST, GET'"
"$PY" -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; sys.exit(0 if e["code"]=="method_not_allowed" and {"message","details","timestamp","requestId"} <= e.keys() else 1)' "$tmp/405.json" ||
	die "405 body is not the error format: $(cat "$tmp/405.json")"

echo "== schemathesis $ST_VERSION: $examples examples per operation, seed $seed"
start=$(date +%s)
"$venv/bin/st" --config-file tests/contract/schemathesis.toml run "$base/v1/openapi.yaml" \
	--max-examples "$examples" --seed "$seed" --checks all \
	--report junit --report-junit-path "$logs/contract-junit.xml" >"$logs/contract-st.out" 2>&1
rc=$?
sed -n '/=== FAILURES ===/,$p;/=== ERRORS ===/,/===/p' "$logs/contract-st.out" | head -n 200
tail -n 25 "$logs/contract-st.out"
echo "contract: schemathesis exited $rc after $(($(date +%s) - start)) s (output: $logs/contract-st.out)"
exit "$rc"
