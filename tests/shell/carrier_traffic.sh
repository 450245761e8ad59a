#!/usr/bin/env bash
# The carrier sandbox's CDR traffic generator (ops/carrier-sandbox/traffic.py, docs/CARRIER_SANDBOX.md
# "CDR traffic") against a stub receiver started here, so it does not need the ingress: the stub checks
# the bearer key and the Vox-Signature (HMAC-SHA256 of "<t>.<body>" with the secret) and counts the
# records. Covers: records for the numbers the sandbox sold, the type mix and fields, unique ids, 503
# retried, the rate, numbers given in the request, NDJSON, DELETE, a 401 stopping the run, 409/400, and
# traffic started from VOX_CARRIER_TRAFFIC. Runs its own sandbox on a free port (no stack needed).
# shellcheck disable=SC2015 # `A && ok || fail`: ok always succeeds, so fail runs only when A fails
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
PY=/usr/bin/python3
tmp=$(mktemp -d)
failures=0
checks=0
pids=()
KEY=voxc_test_key
SECRET=test-signing-secret-0123456789

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
check() { # description, then a command that must succeed
	local what=$1
	shift
	if "$@"; then ok; else fail "$what"; fi
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# j FILE EXPR: a Python expression over d = the JSON in FILE
j() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$1" "$2"; }

cat >"$tmp/stub.py" <<'PYEOF'
import hashlib, hmac, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, key, secret, fail_first = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
lock = threading.Lock()
st = {"requests": 0, "answered_503": 0, "bad_auth": 0, "bad_signature": 0, "records": 0, "ids": {},
      "numbers": {}, "types": {}, "zero_calls": 0, "calls": 0, "segments": {}, "bad_records": [],
      "content_types": {}, "stale": 0}
seen_sigs = set()
TYPES = {"inbound_call", "outbound_call", "sms_received", "sms_sent"}

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
    def do_GET(self):
        with lock:
            out = dict(st, ids_unique=len(st["ids"]), duplicates=sum(v - 1 for v in st["ids"].values()))
            del out["ids"]
        self.answer(200, out)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            st["requests"] += 1
            if st["requests"] <= fail_first:
                st["answered_503"] += 1
                return self.answer(503, {"error": {"code": "bus_unavailable"}})
            if self.path != "/v1/carrier/cdrs" or self.headers.get("Authorization") != "Bearer " + key:
                st["bad_auth"] += 1
                return self.answer(401, {"error": {"code": "invalid_credentials"}})
            sig = self.headers.get("Vox-Signature", "")
            try:
                parts = dict(p.split("=", 1) for p in sig.split(","))
                t = int(parts["t"])
                want = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
                good = hmac.compare_digest(want, parts["v1"])
            except (KeyError, ValueError):
                good = False
            if not good or sig in seen_sigs:
                st["bad_signature"] += 1
                return self.answer(401, {"error": {"code": "invalid_signature"}})
            if abs(time.time() - t) > 300:
                st["stale"] += 1
                return self.answer(401, {"error": {"code": "stale_timestamp"}})
            seen_sigs.add(sig)
            ctype = self.headers.get("Content-Type", "")
            st["content_types"][ctype] = st["content_types"].get(ctype, 0) + 1
            if ctype == "application/x-ndjson":
                recs = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            else:
                recs = json.loads(body)
            for r in recs:
                st["records"] += 1
                st["ids"][r["id"]] = st["ids"].get(r["id"], 0) + 1
                st["types"][r["type"]] = st["types"].get(r["type"], 0) + 1
                ours = r["to"] if r["type"] in ("inbound_call", "sms_received") else r["from"]
                st["numbers"][ours] = st["numbers"].get(ours, 0) + 1
                ok = r["type"] in TYPES and abs(time.time() - time.mktime(time.strptime(
                    r["started_at"][:19], "%Y-%m-%dT%H:%M:%S")) + time.timezone) < 8000
                if r["type"].endswith("_call"):
                    st["calls"] += 1
                    st["zero_calls"] += r["duration_s"] == 0
                    ok = ok and "segments" not in r and 0 <= r["duration_s"] <= 86400
                else:
                    st["segments"][str(r["segments"])] = st["segments"].get(str(r["segments"]), 0) + 1
                    ok = ok and "duration_s" not in r and 1 <= r["segments"] <= 3
                if not ok and len(st["bad_records"]) < 5:
                    st["bad_records"].append(r)
        self.answer(202, {"accepted": len(recs), "rejected": 0, "errors": []})

srv = ThreadingHTTPServer(("127.0.0.1", port), H)
srv.serve_forever()
PYEOF

wait_http() { # url: up to 15 s
	for _ in $(seq 150); do
		curl -fsS -m 1 -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
start_sandbox() { # port [env...]
	local port=$1
	shift
	env "$@" VOX_CARRIER_INVENTORY_PER_COUNTRY=10 "$PY" ops/carrier-sandbox/server.py --port "$port" \
		>>"$tmp/sandbox.log" 2>&1 &
	pids+=($!)
	wait_http "http://127.0.0.1:$port/healthz"
}
start_stub() { # port fail_first
	"$PY" "$tmp/stub.py" "$1" "$KEY" "$SECRET" "$2" >>"$tmp/stub.log" 2>&1 &
	pids+=($!)
	wait_http "http://127.0.0.1:$1/stats"
}
traffic() { # METHOD [BODY]: /admin/traffic of the sandbox; the answer in $tmp/t, the status echoed
	curl -sS -m 15 -X "$1" ${2:+-H 'Content-Type: application/json' --data-binary "$2"} -o "$tmp/t" \
		-w '%{http_code}' "$SBX/admin/traffic"
}
wait_stopped() { # up to $1 s
	for _ in $(seq $(($1 * 10))); do
		traffic GET >/dev/null
		[ "$(j "$tmp/t" 'd["running"]')" = False ] && return 0
		sleep 0.1
	done
	return 1
}
stub_stats() { curl -fsS -m 5 -o "$tmp/s" "$STUB/stats"; }

SBX_PORT=$(free_port)
STUB_PORT=$(free_port)
SBX=http://127.0.0.1:$SBX_PORT
STUB=http://127.0.0.1:$STUB_PORT
check "sandbox starts" start_sandbox "$SBX_PORT"
check "stub starts (first 2 answers 503)" start_stub "$STUB_PORT" 2

# -- no numbers sold yet: the run waits and says why
code=$(traffic POST "{\"ingress_url\":\"$STUB\",\"carrier_key\":\"$KEY\",\"signing_secret\":\"$SECRET\",\"rate_per_s\":100,\"batch_size\":10,\"duration_s\":1.5}")
[ "$code" = 202 ] && ok || fail "start without numbers: HTTP $code $(cat "$tmp/t")"
sleep 0.5
traffic GET >/dev/null
[[ "$(j "$tmp/t" 'd["last_error"]')" == *"no numbers"* ]] && ok || fail "no numbers: $(cat "$tmp/t")"
check "run without numbers ends after its duration" wait_stopped 10

# -- order two numbers, then traffic for them
curl -gsS -m 10 -H 'Authorization: Bearer sandbox-key' -o "$tmp/avail" \
	"$SBX/v2/available_phone_numbers?filter[country_code]=US&filter[limit]=2"
nums=$(j "$tmp/avail" '[n["phone_number"] for n in d["data"]]')
body=$("$PY" -c 'import json,sys; print(json.dumps({"phone_numbers":[{"phone_number":n} for n in json.loads(sys.argv[1])]}))' "$nums")
code=$(curl -sS -m 10 -X POST -H 'Authorization: Bearer sandbox-key' -H 'Content-Type: application/json' \
	-H 'Idempotency-Key: traffic-test-1' --data-binary "$body" -o "$tmp/order" -w '%{http_code}' "$SBX/v2/number_orders")
[ "$code" = 201 ] && ok || fail "order: HTTP $code $(cat "$tmp/order")"

code=$(traffic POST "{\"ingress_url\":\"$STUB\",\"carrier_key\":\"$KEY\",\"signing_secret\":\"$SECRET\",\"rate_per_s\":400,\"batch_size\":25,\"count\":300}")
[ "$code" = 202 ] && ok || fail "start: HTTP $code $(cat "$tmp/t")"
code=$(traffic POST "{\"ingress_url\":\"$STUB\",\"carrier_key\":\"$KEY\",\"signing_secret\":\"$SECRET\",\"count\":5}")
[ "$code" = 409 ] && ok || fail "second start while running: HTTP $code (want 409)"
check "run of 300 records ends" wait_stopped 30
check "status: 300 sent and accepted, no errors, retries after 503" \
	[ "$(j "$tmp/t" '(d["sent"], d["accepted"], d["rejected"], d["errors"], d["retries"] >= 2, d["stop_reason"])')" = "(300, 300, 0, 0, True, 'finished')" ]
check "status hides the credentials" [ "$(j "$tmp/t" '"signing_secret" in d["config"] or "carrier_key" in d["config"]')" = False ]
stub_stats
check "stub: 300 records, unique ids, every signature good" \
	[ "$(j "$tmp/s" '(d["records"], d["ids_unique"], d["bad_signature"], d["bad_auth"], d["answered_503"])')" = "(300, 300, 0, 0, 2)" ]
check "stub: only the sold numbers" [ "$(j "$tmp/s" 'sorted(d["numbers"])')" = "$(j "$tmp/avail" 'sorted(n["phone_number"] for n in d["data"])')" ]
check "stub: all four types, some unanswered calls, 1-3 segments, fields valid" \
	[ "$(j "$tmp/s" '(len(d["types"]), d["zero_calls"] > 0, d["zero_calls"] < d["calls"], set(d["segments"]) <= {"1","2","3"}, d["bad_records"])')" = "(4, True, True, True, [])" ]
echo "mix: $(j "$tmp/s" '(d["types"], d["zero_calls"], d["segments"])')"

# -- the rate: 200/s for 2 s is about 400 records
stub_stats
before=$(j "$tmp/s" 'd["records"]')
traffic POST "{\"ingress_url\":\"$STUB\",\"carrier_key\":\"$KEY\",\"signing_secret\":\"$SECRET\",\"rate_per_s\":200,\"batch_size\":20,\"duration_s\":2}" >/dev/null
check "timed run ends" wait_stopped 15
stub_stats
got=$(($(j "$tmp/s" 'd["records"]') - before))
[ "$got" -ge 300 ] && [ "$got" -le 460 ] && ok || fail "200/s for 2 s sent $got records"
echo "rate: $got records in 2 s at 200/s"

# -- numbers given override the sold ones; NDJSON
stub_stats
before=$(j "$tmp/s" 'd["numbers"].get("+442079460000", 0)')
traffic POST "{\"ingress_url\":\"$STUB\",\"carrier_key\":\"$KEY\",\"signing_secret\":\"$SECRET\",\"rate_per_s\":500,\"batch_size\":10,\"count\":50,\"numbers\":[\"+442079460000\"],\"format\":\"ndjson\"}" >/dev/null
check "ndjson run ends" wait_stopped 15
stub_stats
check "given numbers used, as NDJSON" [ "$(j "$tmp/s" '(d["numbers"]["+442079460000"], d["content_types"].get("application/x-ndjson"))')" = "($((before + 50)), 5)" ]

# -- DELETE stops a long run
traffic POST "{\"ingress_url\":\"$STUB\",\"carrier_key\":\"$KEY\",\"signing_secret\":\"$SECRET\",\"rate_per_s\":50,\"batch_size\":5,\"duration_s\":600}" >/dev/null
sleep 1
code=$(traffic DELETE)
check "DELETE stops the run" [ "$code:$(j "$tmp/t" '(d["running"], d["sent"] < 200, d["stop_reason"])')" = "200:(False, True, 'stopped by DELETE /admin/traffic')" ]

# -- a wrong key: 401 stops the run with the reason
traffic POST "{\"ingress_url\":\"$STUB\",\"carrier_key\":\"wrong\",\"signing_secret\":\"$SECRET\",\"rate_per_s\":50,\"batch_size\":5,\"duration_s\":600}" >/dev/null
check "401 ends the run" wait_stopped 10
[[ "$(j "$tmp/t" 'd["stop_reason"]')" == *"401"* ]] && ok || fail "401 stop reason: $(cat "$tmp/t")"

# -- ops/traffic drives the same endpoints (sandbox from ops/stack env, so VOX_CARRIER_PORT)
printf '{"id":"c1","carrier":"sandbox","key":"%s","signing_secret":"%s"}\n' "$KEY" "$SECRET" >"$tmp/cred.json"
stub_stats
before=$(j "$tmp/s" 'd["records"]')
out=$(VOX_CARRIER_PORT=$SBX_PORT ops/traffic start --ingress "$STUB" --credential "$tmp/cred.json" --rate 300 --batch 10 --count 30 2>&1)
[[ "$out" == "traffic: running"* ]] && ok || fail "ops/traffic start: $out"
check "ops/traffic run ends" wait_stopped 10
out=$(VOX_CARRIER_PORT=$SBX_PORT ops/traffic status 2>&1)
[[ "$out" == *"stopped"*"sent 30, accepted 30"* ]] && ok || fail "ops/traffic status: $out"
stub_stats
check "ops/traffic: 30 records arrived" [ "$(j "$tmp/s" 'd["records"]')" = $((before + 30)) ]
VOX_CARRIER_PORT=$SBX_PORT VOX_CARRIER_CDR_KEY=$KEY VOX_CARRIER_CDR_SECRET=$SECRET ops/traffic start \
	--ingress "$STUB" --rate 20 --duration 600 >/dev/null 2>&1
out=$(VOX_CARRIER_PORT=$SBX_PORT ops/traffic stop 2>&1)
[[ "$out" == "traffic: stopped"* ]] && ok || fail "ops/traffic stop: $out"
out=$(env -u VOX_CARRIER_CDR_KEY -u VOX_CARRIER_CDR_SECRET VOX_CARRIER_PORT="$SBX_PORT" ops/traffic start --ingress "$STUB" 2>&1)
rc=$?
[ "$rc" = 2 ] && [[ "$out" == *"no carrier credential"* ]] && ok || fail "ops/traffic without credential: exit $rc $out"

# -- bad configurations
for bad in '{}' '{"ingress_url":"ftp://x","carrier_key":"k","signing_secret":"s"}' \
	"{\"ingress_url\":\"$STUB\",\"carrier_key\":\"k\",\"signing_secret\":\"s\",\"rate_per_s\":0}" \
	"{\"ingress_url\":\"$STUB\",\"carrier_key\":\"k\",\"signing_secret\":\"s\",\"numbers\":[\"12\"]}" \
	"{\"ingress_url\":\"$STUB\",\"carrier_key\":\"k\",\"signing_secret\":\"s\",\"bogus\":1}"; do
	code=$(traffic POST "$bad")
	[ "$code" = 400 ] && ok || fail "bad config $bad: HTTP $code"
done

# -- started from the environment at sandbox start
stub_stats
before=$(j "$tmp/s" 'd["records"]')
SBX2_PORT=$(free_port)
check "sandbox with VOX_CARRIER_TRAFFIC starts" start_sandbox "$SBX2_PORT" \
	VOX_CARRIER_TRAFFIC="{\"ingress_url\":\"$STUB\",\"carrier_key\":\"$KEY\",\"signing_secret\":\"$SECRET\",\"rate_per_s\":200,\"batch_size\":20,\"count\":40,\"numbers\":[\"+14155550100\"]}"
for _ in $(seq 100); do
	stub_stats
	[ "$(j "$tmp/s" 'd["records"]')" -ge $((before + 40)) ] && break
	sleep 0.1
done
check "traffic from VOX_CARRIER_TRAFFIC arrives" [ "$(j "$tmp/s" 'd["records"]')" = $((before + 40)) ]
env VOX_CARRIER_TRAFFIC='{"ingress_url":"nope"}' VOX_CARRIER_INVENTORY_PER_COUNTRY=10 "$PY" ops/carrier-sandbox/server.py \
	--port "$(free_port)" >"$tmp/bad.log" 2>&1
rc=$?
[ "$rc" = 2 ] && grep -q VOX_CARRIER_TRAFFIC "$tmp/bad.log" && ok || fail "bad VOX_CARRIER_TRAFFIC: exit $rc $(cat "$tmp/bad.log")"

echo "carrier_traffic: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ] || { tail -n 20 "$tmp/sandbox.log"; tail -n 20 "$tmp/stub.log"; }
[ "$failures" -eq 0 ]
