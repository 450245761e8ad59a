#!/usr/bin/env bash
# Issue 14's acceptance 3: a port with a known account number and PIN (unique random strings),
# driven through the real ingress, porting worker and carrier sandbox of the test stack, then:
# pg_dump of the test database holds neither in clear, no log of the test run ($VOX_TEST_LOGS,
# the stack's $VOX_RUN_DIR/logs) holds either, and no API answer did. Self-contained: its own
# account, carrier credential, encryption key, ingress and worker (group from the end of
# vox.cmd.porting), and order (a Beta Telecom number: the PIN is not the number's digits).
# Never prints the secrets (its output is a log of the run too).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
BUILD=${BUILD:-build/rel}
bin=${VOX_BIN_DIR:-$root/$BUILD/bin}
logs=${VOX_TEST_LOGS:-$root/$BUILD/test-logs}
run_logs=${VOX_RUN_DIR:+$VOX_RUN_DIR/logs}
carrier_url=${VOX_CARRIER_URL:-http://127.0.0.1:27180}
brokers=${VOX_KAFKA_BROKERS:-127.0.0.1:29192}
pg_url=${VOX_PG_URL:?VOX_PG_URL is not set (run from tests/run or /work/vtest shell)}
PY=/usr/bin/python3
mkdir -p "$logs"
tmp=$(mktemp -d)
pids=()
failures=0
checks=0

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# j FILE EXPR: a Python expression over d = the JSON in FILE
j() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$1" "$2"; }

tag=$(openssl rand -hex 4)
enc_key=$(openssl rand -hex 32)
# the secrets: unique, printable, within the limits (account number 64, PIN 16)
acct="ACCT-$(openssl rand -hex 12)"
pin="Q$(openssl rand -hex 7)"
# a Beta Telecom number (last digit 5..8): no PIN rule, so the port completes with any PIN
number="+1628$((RANDOM % 8 + 2))$(printf %05d $((RANDOM % 100000)))7"

# account, key, carrier credential (its signing secret sealed under our key)
"$bin/voxctl" account create --name "porting secrets $tag" --json >"$tmp/account.json" || { echo "voxctl account create failed"; exit 1; }
api_key=$(j "$tmp/account.json" 'd["api_key"]')
carrier="ps-$tag"
VOX_ENCRYPTION_KEY=$enc_key "$bin/voxctl" carrier create --name "$carrier" --json >"$tmp/carrier.json" 2>/dev/null ||
	{ echo "voxctl carrier create failed"; exit 1; }

# the ingress and the porting worker (its group starts at the end of vox.cmd.porting)
port=$(free_port)
VOX_INGRESS_PORT=$port VOX_ENCRYPTION_KEY=$enc_key VOX_RATE_COMMAND=1000 VOX_RATE_READ=1000 \
	"$bin/ingress" >>"$logs/porting-secrets-ingress.log" 2>&1 &
pids+=($!)
group="vox.test.porting-secrets.$tag"
java -cp "$HOME/.cache/voxlink/kafka-4.1.1-libs/*" org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
	--bootstrap-server "$brokers" --group "$group" --topic vox.cmd.porting --reset-offsets --to-latest \
	--execute >"$tmp/reset.out" 2>&1 || { echo "could not place the worker's group at the end"; cat "$tmp/reset.out"; exit 1; }
VOX_WORKER_GROUP=$group VOX_PORTING_CARRIER=$carrier VOX_ENCRYPTION_KEY=$enc_key VOX_WORKER_METRICS_PORT=0 \
	VOX_KAFKA_SESSION_TIMEOUT_MS=6000 "$bin/porting" >>"$logs/porting-secrets-worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
	curl -fsS -m 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done

# the sandbox's porting webhooks to our ingress, signed with our credential
"$PY" -c 'import json, sys; c = json.load(open(sys.argv[1]))
print(json.dumps({"webhook_url": "http://127.0.0.1:%s/v1/carrier/porting-events" % sys.argv[2],
                  "api_key": c["key"], "signing_secret": c["signing_secret"], "time_scale": 500000, "step_ms": 200}))' \
	"$tmp/carrier.json" "$port" >"$tmp/admin.json"
curl -fsS -m 10 -X POST "$carrier_url/admin/porting" -H 'Content-Type: application/json' -d @"$tmp/admin.json" \
	>/dev/null || { echo "the carrier sandbox refused its porting settings"; exit 1; }

n=0
code=
api() { # METHOD PATH [BODY-FILE]: the answer in $tmp/r<N>.json (last), the status in $code
	n=$((n + 1))
	code=$(curl -sS -m 30 -o "$tmp/r$n.json" -w '%{http_code}' -X "$1" "http://127.0.0.1:$port$2" \
		-H "Authorization: Bearer $api_key" -H "Idempotency-Key: ps-$tag-$n" \
		-H 'Content-Type: application/json' ${3:+--data-binary @"$3"})
}
last() { echo "$tmp/r$n.json"; }

# documents
printf '%%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%%%EOF\n' >"$tmp/doc.pdf"
doc() {
	curl -sS -m 30 -o "$tmp/doc-$1.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/documents" \
		-H "Authorization: Bearer $api_key" -H "Idempotency-Key: ps-$tag-doc-$1" \
		-F "kind=$1" -F "file=@$tmp/doc.pdf;type=application/pdf;filename=$1.pdf"
}
[ "$(doc loa)" = 201 ] && [ "$(doc invoice)" = 201 ] || { echo "document upload failed"; exit 1; }
loa=$(j "$tmp/doc-loa.json" 'd["id"]')
invoice=$(j "$tmp/doc-invoice.json" 'd["id"]')

# the draft with the secrets
"$PY" -c 'import json, sys
print(json.dumps({"phone_numbers": [sys.argv[1]],
  "end_user": {"authorized_name": "Secret Keeper", "business_name": "Vault Ltd",
               "service_address": {"street": "3 Safe St", "locality": "Denver", "administrative_area": "CO",
                                   "postal_code": "80202", "country": "US"},
               "account_number": sys.argv[2], "pin": sys.argv[3]},
  "documents": {"loa": sys.argv[4], "invoice": sys.argv[5]}}))' \
	"$number" "$acct" "$pin" "$loa" "$invoice" >"$tmp/draft.json"
api POST /v1/porting-orders "$tmp/draft.json"
[ "$code" = 201 ] || { echo "POST /v1/porting-orders: $code $(head -c 300 "$(last)")"; exit 1; }
order=$(j "$(last)" 'd["id"]')
[ "$(j "$(last)" 'd["end_user"]["pin_last2"]')" = "${pin: -2}" ] && ok || fail "pin_last2"
[ "$(j "$(last)" 'd["end_user"]["account_number_last2"]')" = "${acct: -2}" ] && ok || fail "account_number_last2"
# the greps below can see them (a control: the request we sent holds both)
grep -qF "$acct" "$tmp/draft.json" && grep -qF "$pin" "$tmp/draft.json" && ok || fail "control grep"
rm -f "$tmp/draft.json"

api GET "/v1/porting-orders/$order/allowed-foc-windows"
[ "$code" = 200 ] || { echo "allowed-foc-windows: $code"; exit 1; }
foc=$(j "$(last)" 'd["data"][0]["date"]')
printf '{"requested_foc_date":"%s"}' "$foc" >"$tmp/patch.json"
api PATCH "/v1/porting-orders/$order" "$tmp/patch.json"
[ "$code" = 200 ] && ok || fail "PATCH the FOC: $code"
api POST "/v1/porting-orders/$order/actions/submit"
[ "$code" = 202 ] && ok || fail "submit: $code"

# ported (FOC three business days ahead: about a second at this time scale)
state=
for _ in $(seq 1 300); do
	api GET "/v1/porting-orders/$order"
	state=$(j "$(last)" 'd["status"]' 2>/dev/null)
	[ "$state" = ported ] && break
	sleep 0.2
done
[ "$state" = ported ] && ok || fail "the order did not port (status $state)"
api GET "/v1/porting-orders/$order/events"
[ "$code" = 200 ] && ok || fail "GET events: $code"

# the secrets are stored: sealed, with their last two characters only
sealed=$(psql "$pg_url" -Atc "SELECT octet_length(account_number_enc) > 30 AND octet_length(pin_enc) > 16
	FROM porting_orders WHERE id = '$order'")
[ "$sealed" = t ] && ok || fail "the secrets are not stored sealed"

# 1. no API answer held them
if grep -rqF -e "$acct" -e "$pin" "$tmp"/r*.json "$tmp"/doc-*.json; then fail "an API answer holds a secret"; else ok; fi
# 2. the database dump holds neither
pg_dump "$pg_url" >"$tmp/dump.sql" 2>"$tmp/dump.err" || fail "pg_dump: $(head -c 300 "$tmp/dump.err")"
[ -s "$tmp/dump.sql" ] && grep -qF "$order" "$tmp/dump.sql" && ok || fail "the dump does not hold the order"
grep -qF "$acct" "$tmp/dump.sql" && fail "pg_dump holds the account number in clear" || ok
grep -qF "$pin" "$tmp/dump.sql" && fail "pg_dump holds the PIN in clear" || ok
rm -f "$tmp/dump.sql"
# 3. no log of the run holds either (the processes' logs, the stack's)
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
wait 2>/dev/null
pids=()
for dir in "$logs" ${run_logs:+"$run_logs"}; do
	[ -d "$dir" ] || continue
	if grep -rlF -e "$acct" -e "$pin" "$dir" >"$tmp/hits" 2>/dev/null; then
		fail "log files hold a secret: $(tr '\n' ' ' <"$tmp/hits")"
	else
		ok
	fi
done

echo "porting_secrets: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
