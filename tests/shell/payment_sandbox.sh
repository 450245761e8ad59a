#!/usr/bin/env bash
# The payment sandbox (ops/payment-sandbox, docs/PAYMENT_SANDBOX.md) over HTTP, on a private instance
# (free port, own state dir) so that its faults and webhook target never touch the shared one:
# a method made form-encoded with the publishable key; a charge, its replay by Idempotency-Key
# (Idempotent-Replayed) and a key reused with other parameters (400); a decline (402 card_error);
# the signed webhook received and its Gateway-Signature checked; drop_webhook; a restart keeping the
# ledger, the methods and the keys (a replay after the restart charges nothing); the processing
# behaviour settling later; the shared stack's service answering /healthz. Run by `make test`.
# shellcheck disable=SC2015 # `A && ok || fail`: ok always succeeds
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
PY=/usr/bin/python3
tmp=$(mktemp -d)
failures=0
checks=0
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
j() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$tmp/body" "$1"; }

PORT=$(free_port)
HOOK=$(free_port)
B=http://127.0.0.1:$PORT
start() {
	VOX_PAYMENT_WEBHOOK_URL=http://127.0.0.1:$HOOK/hook VOX_PAYMENT_WEBHOOK_SECRET=whsec_test \
		VOX_PAYMENT_WEBHOOK_BACKOFF_MS=50 "$PY" ops/payment-sandbox/server.py --port "$PORT" \
		--state-dir "$tmp/state" 2>>"$tmp/sandbox.log" &
	SANDBOX=$!
	pids+=("$SANDBOX")
	for _ in $(seq 50); do curl -fsS -m 1 "$B/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "sandbox did not start"; cat "$tmp/sandbox.log"; exit 1
}
# The webhook receiver: every POST's signature header and body, one JSON line each.
"$PY" - "$HOOK" "$tmp/hooks" <<'PY' &
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps({"sig": self.headers.get("Gateway-Signature"), "body": body.decode()}) + "\n")
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)
start

call() { # METHOD PATH KEY [curl args]: code in $code, body in $tmp/body
	local m=$1 p=$2 k=$3
	shift 3
	code=$(curl -sS -m 10 -X "$m" -H "Authorization: Bearer $k" -o "$tmp/body" -D "$tmp/headers" \
		-w '%{http_code}' "$@" "$B$p")
}

call POST /v1/payment_methods pk_sandbox -d type=card -d 'card[number]=4242 4242 4242 4242' \
	-d 'card[exp_month]=12' -d 'card[exp_year]=33' -d 'card[cvc]=123'
[ "$code" = 200 ] && [ "$(j 'd["card"]["last4"]')" = 4242 ] && [ "$(j 'd["card"]["exp_year"]')" = 2033 ] && ok ||
	fail "form-encoded method: $code $(cat "$tmp/body")"
PM=$(j 'd["id"]')
call POST /v1/payment_intents pk_sandbox -d amount=100 -d currency=usd -d "payment_method=$PM" -d confirm=true
[ "$code" = 401 ] && ok || fail "publishable key charged: $code"

intent() { call POST /v1/payment_intents sk_sandbox -H "Idempotency-Key: $1" -d "amount=$2" -d currency=usd \
	-d "payment_method=$3" -d confirm=true -d 'metadata[invoice_id]=inv-sh'; }
intent key-1 620 "$PM"
[ "$code" = 200 ] && [ "$(j 'd["status"]')" = succeeded ] && ok || fail "charge: $code $(cat "$tmp/body")"
PI=$(j 'd["id"]')
intent key-1 620 "$PM"
[ "$code" = 200 ] && [ "$(j 'd["id"]')" = "$PI" ] && grep -qi '^Idempotent-Replayed: true' "$tmp/headers" && ok ||
	fail "replay: $code"
intent key-1 621 "$PM"
[ "$code" = 400 ] && [ "$(j 'd["error"]["type"]')" = idempotency_error ] && ok || fail "key reuse: $code"
intent key-2 100 pm_card_insufficient_funds
[ "$code" = 402 ] && [ "$(j 'd["error"]["decline_code"]')" = insufficient_funds ] &&
	[ "$(j 'd["error"]["payment_intent"]["status"]')" = requires_payment_method ] && ok || fail "decline: $code"

# the signed webhooks (succeeded, payment_failed)
for _ in $(seq 50); do [ "$(wc -l <"$tmp/hooks" 2>/dev/null)" -ge 2 ] && break; sleep 0.1; done
"$PY" - "$tmp/hooks" "$PI" <<'PY' && ok || fail "webhooks: $(cat "$tmp/hooks")"
import hashlib, hmac, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
types = {}
for r in rows:
    parts = dict(p.split("=", 1) for p in r["sig"].split(","))
    want = hmac.new(b"whsec_test", (parts["t"] + "." + r["body"]).encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(want, parts["v1"]), "bad signature"
    ev = json.loads(r["body"])
    types[ev["type"]] = ev["data"]["object"]["id"]
assert types.get("payment_intent.succeeded") == sys.argv[2], types
assert "payment_intent.payment_failed" in types, types
PY

# drop_webhook: the charge is made, no webhook goes out
curl -fsS -m 5 -o /dev/null -X POST "$B/admin/faults" -d "{\"fault\":\"drop_webhook\",\"payment_method\":\"$PM\"}"
n=$(wc -l <"$tmp/hooks")
intent key-3 300 "$PM"
sleep 0.5
[ "$code" = 200 ] && [ "$(wc -l <"$tmp/hooks")" = "$n" ] && ok || fail "drop_webhook: $code"

# processing: answered processing, settled (and its webhook sent) later
curl -fsS -m 5 -o /dev/null -X POST "$B/admin/payment_methods/$PM" -d '{"behavior":"processing"}'
intent key-4 400 "$PM"
PI4=$(j 'd["id"]')
[ "$(j 'd["status"]')" = processing ] && ok || fail "processing: $(cat "$tmp/body")"
sleep 1
call GET "/v1/payment_intents/$PI4" sk_sandbox
[ "$(j 'd["status"]')" = succeeded ] && ok || fail "not settled: $(cat "$tmp/body")"

# a restart keeps the ledger, the methods and the keys
kill "$SANDBOX"
wait "$SANDBOX" 2>/dev/null
start
curl -fsS -m 5 -o "$tmp/body" "$B/admin/ledger?invoice_id=inv-sh"
[ "$(j 'd["count"]')" = 3 ] && ok || fail "ledger after restart: $(cat "$tmp/body")"
intent key-1 620 "$PM"
[ "$code" = 200 ] && [ "$(j 'd["id"]')" = "$PI" ] && ok || fail "replay after restart: $code"
curl -fsS -m 5 -o "$tmp/body" "$B/admin/ledger?invoice_id=inv-sh"
[ "$(j 'd["count"]')" = 3 ] && ok || fail "a replay charged"
call GET "/v1/payment_methods/$PM" sk_sandbox
[ "$code" = 200 ] && ok || fail "method lost in the restart"

# the shared stack's service
if [ -n "${VOX_PAYMENT_PORT:-}" ]; then
	curl -fsS -m 5 "http://127.0.0.1:$VOX_PAYMENT_PORT/healthz" | grep -q '"payment-sandbox"' && ok ||
		fail "the stack's payment service does not answer on $VOX_PAYMENT_PORT"
fi

echo "payment_sandbox.sh: $checks checks passed, $failures failed"
[ "$failures" = 0 ]
