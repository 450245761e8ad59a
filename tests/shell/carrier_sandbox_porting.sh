#!/usr/bin/env bash
# The carrier sandbox's porting (ops/carrier-sandbox/porting.py, docs/CARRIER_SANDBOX.md "Porting") over
# real HTTP: portability checks and their rules, porting orders (Idempotency-Key: twice = one order,
# another body = 422), refusals (mixed losing carriers, duplicate, not portable, open port, limits),
# the exception rules, PATCH resubmit, cancel, FOC completion under time compression (the number then
# one of the sandbox's own), webhooks signed and received in order per order by a small receiver
# (which fails on purpose: retried, same event id, still in order), a restart that keeps orders,
# settings, pending steps and undelivered events, and no PIN or account number in the state or log.
# It runs a sandbox of its own (own port, own state dir): the shared one is not touched.
# shellcheck disable=SC2015 # `A && ok || fail`: ok always succeeds, so fail runs only when A fails
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
PY=/usr/bin/python3
KEY=sandbox-key
tmp=$(mktemp -d)
failures=0
checks=0
sbx_pid=
recv_pid=

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SBX_PORT=$(free_port)
RECV_PORT=$(free_port)
URL=http://127.0.0.1:$SBX_PORT
HOOK=http://127.0.0.1:$RECV_PORT/v1/carrier/porting-events
SECRET=whsec-$$-$RANDOM
CKEY=ck-$$-$RANDOM
# secrets this test sends: they must show nowhere but in the requests
PIN_SECRET=7$RANDOM$RANDOM
ACCT_SECRET=ACCT-$$-$RANDOM$RANDOM

cleanup() {
	[ -n "$sbx_pid" ] && kill "$sbx_pid" 2>/dev/null && wait "$sbx_pid" 2>/dev/null
	[ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null && wait "$recv_pid" 2>/dev/null
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

sandbox_start() {
	env -u VOX_CARRIER_PORT_WEBHOOK_URL -u VOX_CARRIER_PORT_KEY -u VOX_CARRIER_PORT_SECRET \
		-u VOX_CARRIER_FAULTS -u VOX_CARRIER_TRAFFIC VOX_CARRIER_INVENTORY_PER_COUNTRY=50 VOX_CARRIER_API_KEY=$KEY \
		VOX_CARRIER_PORT_STEP_MS=50 VOX_CARRIER_PORT_TIME_SCALE=8640 "$PY" ops/carrier-sandbox/server.py --port "$SBX_PORT" \
		--state-dir "$tmp/state" >>"$tmp/sandbox.log" 2>&1 &
	sbx_pid=$!
	for _ in $(seq 1 100); do
		curl -fsS -m 1 -o /dev/null "$URL/healthz" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "FAIL: the sandbox did not start on $URL"
	cat "$tmp/sandbox.log"
	exit 1
}
sandbox_stop() { kill "$sbx_pid" && wait "$sbx_pid" 2>/dev/null; sbx_pid=; }

# The receiver: checks Authorization and Vox-Signature, appends one line per request to
# $tmp/events.jsonl ({ok, status, id, order, status_value}), answers 503 to the first FAIL_FIRST
# requests, 204 after.
cat >"$tmp/recv.py" <<'EOF'
import hashlib, hmac, http.server, json, sys, threading
port, key, secret, out, fail_first = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), sys.argv[4], int(sys.argv[5])
lock = threading.Lock()
seen = [0]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        sig = dict(p.split("=", 1) for p in (self.headers.get("Vox-Signature") or "").split(",") if "=" in p)
        good = hmac.compare_digest(sig.get("v1", ""), hmac.new(secret, sig.get("t", "").encode() + b"." + body,
                                                               hashlib.sha256).hexdigest())
        auth = self.headers.get("Authorization") == "Bearer " + key
        with lock:
            seen[0] += 1
            status = 503 if seen[0] <= fail_first else 204
            try:
                d = json.loads(body)["data"]
                rec = {"id": d["id"], "type": d["event_type"], "order": d["payload"]["id"],
                       "ref": d["payload"]["customer_reference"], "status_value": d["payload"]["status"],
                       "foc": d["payload"]["foc_date"], "exceptions": [e["code"] for e in d["payload"]["exceptions"]],
                       "numbers": d["payload"]["phone_numbers"], "keys": sorted(d), "payload_keys": sorted(d["payload"])}
            except (ValueError, KeyError, TypeError) as e:
                rec = {"bad_body": repr(e)}
            rec.update(sig_ok=good, auth_ok=auth, path=self.path, answered=status, t=sig.get("t"))
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
receiver_start() { # FAIL_FIRST
	"$PY" "$tmp/recv.py" "$RECV_PORT" "$CKEY" "$SECRET" "$tmp/events.jsonl" "$1" >>"$tmp/recv.log" 2>&1 &
	recv_pid=$!
	for _ in $(seq 1 50); do
		"$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2)' "$RECV_PORT" \
			2>/dev/null && return 0
		sleep 0.1
	done
	echo "FAIL: the receiver did not start"
	exit 1
}
receiver_stop() { kill "$recv_pid" && wait "$recv_pid" 2>/dev/null; recv_pid=; }

# call METHOD PATH [BODY [extra curl args...]]: sets code; the body is in $tmp/body, headers in $tmp/headers
call() {
	local method=$1 path=$2 body=${3:-}
	shift 3 2>/dev/null || shift $#
	local args=(-gsS -X "$method" -H "Authorization: Bearer $KEY" -D "$tmp/headers" -o "$tmp/body"
		-w '%{http_code}' -m 10)
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	: >"$tmp/body"
	code=$(curl "${args[@]}" "$@" "$URL$path" 2>"$tmp/curl.err")
}
admin() { # METHOD PATH [BODY]: the admin API (no key); the answer in $tmp/admin
	curl -gsS -m 10 -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} -o "$tmp/admin" \
		-w '%{http_code}' "$URL$2"
}
j() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$tmp/body" "$1"; }
ja() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$tmp/admin" "$1"; }
expect_code() { # want, description
	if [ "$code" = "$1" ]; then ok; else fail "$2: HTTP $code (want $1): $(head -c 400 "$tmp/body")"; fi
}
expect_eq() { # got, want, description
	if [ "$1" = "$2" ]; then ok; else fail "$3: got '$1', want '$2'"; fi
}
# wait_status ID STATUS [SECONDS]: polls the order until it has STATUS
wait_status() {
	local deadline=$((SECONDS + ${3:-10})) st=
	while [ $SECONDS -le $deadline ]; do
		call GET "/v2/porting_orders/$1"
		st=$(j 'd["data"]["status"]["value"]' 2>/dev/null)
		[ "$st" = "$2" ] && { ok; return 0; }
		sleep 0.05
	done
	fail "order $1: status '$st' after ${3:-10} s (want $2)"
	return 1
}
# events ORDER: the statuses received (and answered 2xx) for the order, in order
events() {
	"$PY" -c '
import json, sys
print(" ".join(r["status_value"] for r in map(json.loads, open(sys.argv[1]))
               if r.get("order") == sys.argv[2] and r["answered"] < 300))' "$tmp/events.jsonl" "$1"
}
# wait_events ORDER "STATUSES" [SECONDS]: until the receiver got them (2xx) for the order (a glob)
wait_events() {
	local deadline=$((SECONDS + ${3:-15})) got=
	while [ $SECONDS -le $deadline ]; do
		got=$(events "$1")
		# shellcheck disable=SC2053 # $2 is a glob on purpose
		[[ $got == $2 ]] && { ok; return 0; }
		sleep 0.1
	done
	fail "webhooks for $1: '$got' (want '$2')"
	return 1
}

FOC=$(date -u -d '+7 days' +%F)
# a number +1 <area code> <exchange> $1: the last four digits are the PIN rule's, the last one the
# losing carrier's
AREAS=(415 650 510 408 212 646 312 617 206 303 404 305 702 214 713 602)
num() { printf '+1%s%03d%s' "${AREAS[RANDOM % ${#AREAS[@]}]}" $((200 + RANDOM % 700)) "$1"; }
order_body() { # NUMBERS_JSON [PIN [ACCOUNT [NAME [REF]]]]
	"$PY" -c '
import json, sys
nums, pin, acct, name, ref, foc = sys.argv[1:7]
admin = {"entity_name": "Analytical Ltd", "authorized_person_name": name, "account_number": acct}
if pin:
    admin["pin_passcode"] = pin
print(json.dumps({"phone_numbers": json.loads(nums), "customer_reference": ref,
                  "end_user": {"admin": admin, "location": {"street_address": "1 Main St", "locality": "San Francisco",
                                                            "administrative_area": "CA", "postal_code": "94105",
                                                            "country_code": "US"}},
                  "activation_settings": {"foc_datetime_requested": foc},
                  "documents": {"loa": "doc-loa", "invoice": "doc-invoice"}}))' \
		"$1" "${2:-}" "${3:-$ACCT_SECRET}" "${4:-Ada Lovelace}" "${5:-ref-$RANDOM$RANDOM}" "$FOC"
}

# ---------------------------------------------------------------------------------------------
receiver_start 0
sandbox_start

# -- settings
[ "$(admin POST /admin/porting '{"time_scale":0}')" = 400 ] && ok || fail "time_scale 0 accepted"
[ "$(admin POST /admin/porting '{"webhook_url":"ftp://x"}')" = 400 ] && ok || fail "ftp webhook_url accepted"
[ "$(admin POST /admin/porting '{"nope":1}')" = 400 ] && ok || fail "unknown setting accepted"
[ "$(admin POST /admin/porting "{\"webhook_url\":\"$HOOK\",\"api_key\":\"$CKEY\",\"signing_secret\":\"$SECRET\",\"time_scale\":500000}")" = 200 ] &&
	ok || fail "POST /admin/porting: $(cat "$tmp/admin")"
expect_eq "$(ja 'd["signing_secret_set"] and d["api_key_set"] and "signing_secret" not in d')" True "settings hide the secrets"
expect_eq "$(ja 'd["time_scale"]')" 500000.0 "time_scale set"

# -- portability checks
A0=$(num 0100) B5=$(num 0105) N9=$(num 0109)
call POST /v2/portability_checks "{\"phone_numbers\":[\"$A0\",\"$B5\",\"$N9\",\"+1415\",\"+442071838750\"]}"
expect_code 200 "portability check"
expect_eq "$(j '[x["portable"] for x in d["data"]]')" '[true, true, false, false, false]' "portable flags"
expect_eq "$(j '[x["not_portable_reason"] for x in d["data"]]')" \
	'[null, null, "carrier_not_supported", "invalid_number", "country_not_supported"]' "reasons"
expect_eq "$(j 'd["data"][0]["losing_carrier"]')" '{"name": "Acme Wireless", "spid": "1111"}' "0-4: Acme"
expect_eq "$(j 'd["data"][1]["losing_carrier"]')" '{"name": "Beta Telecom", "spid": "2222"}' "5-8: Beta"
expect_eq "$(j '(d["data"][0]["requirements"]["pin_required"], d["data"][0]["fast_portable"], d["data"][1]["requirements"]["pin_required"], d["data"][1]["fast_portable"])')" \
	"(True, False, False, True)" "PIN and fast portability"
expect_eq "$(j 'd["data"][0]["phone_number_type"]')" local "number type"
call GET "/v2/available_phone_numbers?filter[country_code]=US&filter[limit]=1"
INV=$(j 'd["data"][0]["phone_number"]')
call POST /v2/portability_checks "{\"phone_numbers\":[\"$INV\"]}"
expect_eq "$(j 'd["data"][0]["not_portable_reason"]')" already_on_platform "inventory number"
many=$("$PY" -c 'import json; print(json.dumps({"phone_numbers": ["+1415555%04d" % k for k in range(250)]}))')
call POST /v2/portability_checks "$many"
expect_code 200 "250 numbers"
expect_eq "$(j 'len(d["data"])')" 250 "250 answers"
many=$("$PY" -c 'import json; print(json.dumps({"phone_numbers": ["+1415555%04d" % k for k in range(251)]}))')
call POST /v2/portability_checks "$many"
expect_code 422 "251 numbers"
call POST /v2/portability_checks '{"phone_numbers":[]}'
expect_code 422 "no numbers"
call POST /v2/portability_checks '[1]'
expect_code 400 "not an object"
code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -X POST -d '{}' "$URL/v2/portability_checks")
expect_eq "$code" 401 "no key"

# -- create, twice with one Idempotency-Key: one order
REF1=ref-idem-$RANDOM
body1=$(order_body "[\"$B5\"]" "" "$ACCT_SECRET" "Ada Lovelace" "$REF1")
call POST /v2/porting_orders "$body1" -H "Idempotency-Key: idem-$REF1"
expect_code 201 "create"
O1=$(j 'd["data"]["id"]')
expect_eq "$(j 'd["data"]["status"]["value"]')" submitted "created submitted"
expect_eq "$(j "d['data']['end_user']['admin'] == {'entity_name': 'Analytical Ltd', 'authorized_person_name': 'Ada Lovelace', 'account_number_last2': '${ACCT_SECRET: -2}', 'pin_last2': None}")" \
	True "answer: last2 only"
! grep -q -- "$ACCT_SECRET" "$tmp/body" && ok || fail "the account number answered"
call POST /v2/porting_orders "$body1" -H "Idempotency-Key: idem-$REF1"
expect_code 201 "create replayed"
expect_eq "$(j 'd["data"]["id"]')" "$O1" "same order"
grep -qi '^Idempotent-Replayed: true' "$tmp/headers" && ok || fail "no Idempotent-Replayed"
call POST /v2/porting_orders "$(order_body "[\"$B5\"]" "" "$ACCT_SECRET" "Ada Lovelace" "$REF1-other")" \
	-H "Idempotency-Key: idem-$REF1"
expect_code 422 "same key, other body"
[ "$(admin GET "/admin/porting/orders?customer_reference=$REF1")" = 200 ] && ok || fail "admin orders"
expect_eq "$(ja 'd["meta"]["total_results"]')" 1 "one order for the reference"

# -- refusals
call POST /v2/porting_orders "$(order_body "[\"$(num 0101)\",\"$(num 0106)\"]" 0101)"
expect_code 422 "mixed carriers"
expect_eq "$(j 'd["errors"][0]["code"]')" mixed_losing_carriers "mixed carriers code"
D=$(num 0102)
call POST /v2/porting_orders "$(order_body "[\"$D\",\"$D\"]" 0102)"
expect_eq "$code $(j 'd["errors"][0]["code"]')" "422 duplicate_number" "duplicate"
call POST /v2/porting_orders "$(order_body "[\"$N9\"]")"
expect_eq "$code $(j 'd["errors"][0]["code"]')" "422 number_not_portable" "not portable"
call POST /v2/porting_orders "$(order_body "[\"$INV\"]")"
expect_eq "$code $(j 'd["errors"][0]["code"]')" "422 number_not_portable" "inventory number"
call POST /v2/porting_orders "{\"phone_numbers\":[\"$(num 0107)\"]}"
expect_eq "$code $(j 'd["errors"][0]["source"]["pointer"]')" "422 /activation_settings/foc_datetime_requested" "no FOC"
call POST /v2/porting_orders "$(order_body "[\"$(num 0107)\"]" "" "$ACCT_SECRET" "Ada" "ref" | sed "s/$FOC/2026-13-45/")"
expect_code 422 "bad FOC date"
call POST /v2/porting_orders "$(order_body "[\"$(num 0107)\"]" 12345678901234567)"
expect_code 422 "PIN of 17"
! grep -q 12345678901234567 "$tmp/body" && ok || fail "the PIN echoed in an error"
big=$("$PY" -c 'import json; print(json.dumps(["+1415777%04d" % k for k in range(1001)]))')
call POST /v2/porting_orders "$(order_body "$big")"
expect_code 422 "1001 numbers"
big=$("$PY" -c 'import json; print(json.dumps(["+1650%03d%04d" % (200 + k // 10, (k % 10) * 1000 + 5) for k in range(1000)]))')
call POST /v2/porting_orders "$(order_body "$big" "" "$ACCT_SECRET" "$("$PY" -c 'print("n" * 255)')")" \
	-H 'Idempotency-Key: big-1000'
expect_code 201 "1000 numbers, a name of 255"
OBIG=$(j 'd["data"]["id"]')

# -- the Beta order (no PIN) goes to FOC and is ported; its number becomes the sandbox's own
wait_status "$O1" ported 10
expect_eq "$(j 'd["data"]["activation_settings"]["foc_datetime_actual"]')" "${FOC}T14:00:00Z" "FOC at 14:00Z"
NID=$(j 'd["data"]["phone_numbers"][0]["id"]')
[ -n "$NID" ] && [ "$NID" != None ] && ok || fail "ported number without id"
call GET "/v2/phone_numbers/$NID"
expect_eq "$code $(j 'd["data"]["phone_number"]') $(j 'd["data"]["status"]')" "200 $B5 active" "ported number readable"
call PATCH "/v2/phone_numbers/$NID/voice" \
	'{"settings_version":1,"call_forwarding":{"call_forwarding_enabled":true,"forwards_to":"+14155550111"}}'
expect_code 200 "ported number's voice settings"
call POST /v2/portability_checks "{\"phone_numbers\":[\"$B5\"]}"
expect_eq "$(j 'd["data"][0]["not_portable_reason"]')" already_on_platform "ported number is on the platform"
wait_events "$O1" "in-process foc-date-confirmed ported"
wait_status "$OBIG" ported 10

# -- exception rules, then PATCH resubmit
A=$(num 0103)
call POST /v2/porting_orders "$(order_body "[\"$A\"]" "$PIN_SECRET" "000$ACCT_SECRET" "Ada MisMatch")" -H 'Idempotency-Key: exc-1'
expect_code 201 "create with three faults"
O2=$(j 'd["data"]["id"]')
wait_status "$O2" exception
expect_eq "$(j '[(e["code"], e["field"]) for e in d["data"]["exceptions"]]')" \
	'[["wrong_pin", "end_user.pin"], ["wrong_account_number", "end_user.account_number"], ["name_mismatch", "end_user.authorized_name"]]' \
	"the three exceptions"
# an order in exception stays open (O1 may already be ported at this time scale: its number
# would then be on the platform, not in an open port)
call POST /v2/porting_orders "$(order_body "[\"$A\"]" "$PIN_SECRET" "000$ACCT_SECRET" "Ada MisMatch")"
expect_eq "$code $(j 'd["errors"][0]["code"]')" "422 number_in_open_port" "number in an open port"
call PATCH "/v2/porting_orders/$O2" '{"end_user":{"admin":{"pin_passcode":"0103"}}}' -H 'Idempotency-Key: fix-1'
expect_code 200 "PATCH the PIN"
expect_eq "$(j 'd["data"]["status"]["value"]')" submitted "PATCH resubmits"
wait_status "$O2" exception
expect_eq "$(j '[e["code"] for e in d["data"]["exceptions"]]')" '["wrong_account_number", "name_mismatch"]' "PIN fixed, the rest not"
call PATCH "/v2/porting_orders/$O2" '{"end_user":{"admin":{"pin_passcode":"0103"}}}' -H 'Idempotency-Key: fix-1'
expect_eq "$code $(j 'd["data"]["status"]["value"]')" "200 submitted" "PATCH replayed answers the first answer"
call PATCH "/v2/porting_orders/$O2" "{\"end_user\":{\"admin\":{\"account_number\":\"$ACCT_SECRET\",\"authorized_person_name\":\"Ada Lovelace\"}}}" \
	-H 'Idempotency-Key: fix-2'
expect_code 200 "PATCH the account and name"
wait_status "$O2" ported 10
call PATCH "/v2/porting_orders/$O2" '{"end_user":{"admin":{"pin_passcode":"0103"}}}' -H 'Idempotency-Key: fix-3'
expect_eq "$code $(j 'd["errors"][0]["code"]')" "409 invalid_state" "PATCH a ported order"
call PATCH "/v2/porting_orders/$O2" "{\"phone_numbers\":[\"$(num 0104)\"]}" -H 'Idempotency-Key: fix-4'
expect_code 422 "PATCH other numbers"
wait_events "$O2" "in-process exception in-process exception in-process foc-date-confirmed ported"
# several Acme numbers: the PIN must be each one's last four digits
call POST /v2/porting_orders "$(order_body "[\"$(num 4321)\",\"$(num 4321)\"]" 4321)"
O3=$(j 'd["data"]["id"]')
wait_status "$O3" foc-date-confirmed
call POST /v2/porting_orders "$(order_body "[\"$(num 4322)\",\"$(num 4323)\"]" 4322)"
O4=$(j 'd["data"]["id"]')
wait_status "$O4" exception

# -- cancel
call POST /v2/porting_orders "$(order_body "[\"$(num 0108)\"]")" -H 'Idempotency-Key: cancel-1'
O5=$(j 'd["data"]["id"]')
call POST "/v2/porting_orders/$O5/actions/cancel" '{}'
expect_eq "$code $(j 'd["data"]["status"]["value"]')" "200 cancel-pending" "cancel"
wait_status "$O5" cancelled
call POST "/v2/porting_orders/$O5/actions/cancel"
expect_eq "$code $(j 'd["data"]["status"]["value"]')" "200 cancelled" "cancel again: as it is"
call POST "/v2/porting_orders/$O1/actions/cancel"
expect_eq "$code $(j 'd["errors"][0]["code"]')" "409 invalid_state" "cancel a ported order"
call POST "/v2/porting_orders/nope/actions/cancel"
expect_code 404 "cancel an unknown order"
call GET "/v2/porting_orders?filter[status]=cancelled"
expect_eq "$(j '[o["id"] for o in d["data"]]')" "[\"$O5\"]" "list by status"

# -- every webhook: signed, authorized, the documented shape, ids unique, ported ones with number ids
wait_events "$O5" "*cancelled"
"$PY" - "$tmp/events.jsonl" <<'EOF' && ok || fail "webhook checks"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
bad = [r for r in recs if not (r.get("sig_ok") and r.get("auth_ok") and r.get("path") == "/v1/carrier/porting-events")]
assert not bad, bad[:2]
assert all(r["keys"] == ["event_type", "id", "occurred_at", "payload"] and r["type"] == "porting_order.status_changed"
           and r["payload_keys"] == ["customer_reference", "exceptions", "foc_date", "id", "phone_numbers", "status"]
           for r in recs), recs[0]
ids = [r["id"] for r in recs]
assert len(ids) == len(set(ids)), "an event delivered twice"
ported = [r for r in recs if r["status_value"] == "ported"]
assert ported and all(n["id"] and n["status"] == "ported" for r in ported for n in r["numbers"])
assert all(r["foc"] for r in ported)
EOF

# -- delivery failures: retried with backoff, same event id, fresh signature, still in order
wait_status "$O3" ported 10
wait_events "$O3" "in-process foc-date-confirmed ported"
wait_events "$O4" "in-process exception"
wait_events "$OBIG" "in-process foc-date-confirmed ported"
receiver_stop
: >"$tmp/events.jsonl"
receiver_start 3
call POST /v2/porting_orders "$(order_body "[\"$(num 0205)\"]")" -H 'Idempotency-Key: retry-1'
O6=$(j 'd["data"]["id"]')
wait_events "$O6" "in-process foc-date-confirmed ported" 20
"$PY" - "$tmp/events.jsonl" "$O6" <<'EOF' && ok || fail "retried deliveries"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l).get("order") == sys.argv[2]]
failed = [r for r in recs if r["answered"] >= 300]
assert len(failed) == 3, failed
first_ok = next(r for r in recs if r["answered"] < 300)
assert all(r["id"] == first_ok["id"] for r in failed), "the event id changed between attempts"
assert all(r["sig_ok"] for r in recs)
EOF
grep -q "webhook for event .* failed, attempt 3" "$tmp/sandbox.log" && ok || fail "failures not logged"
admin GET "/admin/porting/orders?customer_reference=$(call GET "/v2/porting_orders/$O6" && j 'd["data"]["customer_reference"]')" >/dev/null
expect_eq "$(ja 'd["data"][0]["delivery_failures"]')" 3 "failures counted"

# -- restart: orders, settings, pending steps and undelivered events survive
receiver_stop
[ "$(admin POST /admin/porting '{"time_scale":86400}')" = 200 ] && ok || fail "time_scale 86400"
FOC=$(date -u -d '+3 days' +%F)
call POST /v2/porting_orders "$(order_body "[\"$(num 0306)\"]")" -H 'Idempotency-Key: restart-1'
O7=$(j 'd["data"]["id"]')
wait_status "$O7" foc-date-confirmed # held back: the port comes about 2..3 s later
sandbox_stop
sandbox_start
[ "$(admin GET /admin/porting)" = 200 ] && ok || fail "admin after restart"
expect_eq "$(ja '(d["time_scale"], d["webhook_url"], d["signing_secret_set"])')" "(86400.0, '$HOOK', True)" "settings kept"
[ "$(ja 'd["pending_events"]')" -ge 2 ] && ok || fail "undelivered events lost: $(cat "$tmp/admin")"
call GET "/v2/porting_orders/$O1"
expect_eq "$code $(j 'd["data"]["status"]["value"]')" "200 ported" "orders kept"
call GET "/v2/phone_numbers/$NID"
expect_code 200 "ported number kept"
receiver_start 0
wait_status "$O7" ported 15
wait_events "$O7" "in-process foc-date-confirmed ported" 15
call POST /v2/porting_orders "$body1" -H "Idempotency-Key: idem-$REF1"
expect_eq "$code $(j 'd["data"]["id"]')" "201 $O1" "idempotency key kept"

# -- the secrets: never in the state file or the log
for f in "$tmp/state/state.json" "$tmp/sandbox.log"; do
	! grep -q -- "$PIN_SECRET" "$f" && ok || fail "the PIN is in $f"
	! grep -q -- "$ACCT_SECRET" "$f" && ok || fail "the account number is in $f"
done

# -- reset clears porting and goes back to the environment's settings
[ "$(admin POST /admin/reset)" = 200 ] && ok || fail "reset"
admin GET /admin/porting >/dev/null
expect_eq "$(ja '(d["orders"], d["time_scale"], d["webhook_url"])')" "(0, 8640.0, None)" "reset"

echo "carrier_sandbox_porting: $checks checks, $failures failures"
[ "$failures" = 0 ]
