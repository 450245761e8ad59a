#!/usr/bin/env bash
# The carrier sandbox (ops/carrier-sandbox, docs/CARRIER_SANDBOX.md) over real HTTP: search and its
# filters (numbers re-validated with phonenumbers), auth, orders (idempotency, double orders),
# number reads, PATCH forwarding, versioned voice settings, DELETE/release, fault injection (fail_next, refuse, latency,
# timeout, an order whose answer is lost), /admin/reset, and a restart that keeps ordered numbers.
# Run by `make test` (tests/run) against the test stack: it restarts that stack's carrier sandbox
# and resets its state at the end.
# shellcheck disable=SC2015 # `A && ok || fail`: ok always succeeds, so fail runs only when A fails
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
if [ -z "${VOX_CARRIER_URL:-}" ]; then eval "$(ops/stack env)"; fi
URL=$VOX_CARRIER_URL
KEY=${VOX_CARRIER_API_KEY:-sandbox-key}
PY=/usr/bin/python3
tmp=$(mktemp -d)
failures=0
checks=0

cleanup() {
	# the sandbox must be left running and clean, whatever happened
	curl -fsS -m 5 -o /dev/null "$URL/healthz" 2>/dev/null || ops/stack start carrier >/dev/null 2>&1
	curl -s -m 5 -o /dev/null -X POST "$URL/admin/reset"
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

# call METHOD PATH [BODY [extra curl args...]]: sets code, time_s, rc; the body is in $tmp/body,
# the headers in $tmp/headers
call() {
	local method=$1 path=$2 body=${3:-}
	shift 3 2>/dev/null || shift $#
	local args=(-gsS -X "$method" -H "Authorization: Bearer $KEY" -D "$tmp/headers" -o "$tmp/body"
		-w '%{http_code} %{time_total}' -m 10)
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	: >"$tmp/body"
	: >"$tmp/headers"
	local out
	out=$(curl "${args[@]}" "$@" "$URL$path" 2>"$tmp/curl.err")
	rc=$?
	code=${out%% *}
	time_s=${out#* }
}
admin() { # METHOD PATH [BODY]: the admin API (no key)
	curl -gsS -m 10 -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} -o "$tmp/admin" \
		-w '%{http_code}' "$URL$2"
}
# j EXPR: evaluates a Python expression over d = the last JSON body
j() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$tmp/body" "$1"; }
ja() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$tmp/admin" "$1"; }
expect_code() { # want, description
	if [ "$code" = "$1" ]; then ok; else fail "$2: HTTP $code (want $1): $(head -c 300 "$tmp/body")"; fi
}
search() { call GET "/v2/available_phone_numbers?$1"; }
owned() { admin GET /admin/stats >/dev/null && ja 'd["owned"]'; }
# the numbers this test owns (robust to other clients of the same sandbox)
REF=shell-$$
mine() {
	curl -gsS -m 10 -H "Authorization: Bearer $KEY" -o "$tmp/mine" \
		"$URL/v2/phone_numbers?filter[customer_reference]=$REF&page[size]=250" &&
		"$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["meta"]["total_results"])' "$tmp/mine"
}
avail_us() { admin GET /admin/stats >/dev/null && ja 'd["available"]["US"]'; }

# ---------------------------------------------------------------------------------------------
[ "$(admin POST /admin/reset)" = 200 ] || { echo "FAIL: POST /admin/reset on $URL"; exit 1; }
check "healthz" curl -fsS -m 5 -o /dev/null "$URL/healthz"
us_initial=$(avail_us)

# -- auth
code=$(curl -gsS -m 5 -o /dev/null -w '%{http_code}' "$URL/v2/available_phone_numbers?filter[country_code]=US")
[ "$code" = 401 ] && ok || fail "no key: HTTP $code (want 401)"
code=$(curl -gsS -m 5 -o "$tmp/body" -w '%{http_code}' -H 'Authorization: Bearer wrong' "$URL/v2/phone_numbers")
[ "$code" = 401 ] && [ "$(j 'd["errors"][0]["code"]')" = 10009 ] && ok || fail "wrong key: HTTP $code (want 401, code 10009)"

# -- search US 415: valid numbers, re-checked with phonenumbers
search 'filter[country_code]=US&filter[national_destination_code]=415&filter[limit]=20'
expect_code 200 "search US 415"
cp "$tmp/body" "$tmp/s415"
if "$PY" - "$tmp/s415" <<'PY'; then ok; else fail "search US 415: records"; fi
import json, re, sys
import phonenumbers as pn
doc = json.load(open(sys.argv[1]))
data = doc["data"]
assert len(data) == 20, len(data)
assert doc["meta"]["total_results"] == 20, doc["meta"]
for r in data:
    n = pn.parse(r["phone_number"])
    assert pn.is_valid_number(n), r["phone_number"]
    assert pn.region_code_for_number(n) == "US", r
    nsn = pn.national_significant_number(n)
    assert nsn[:pn.length_of_national_destination_code(n)] == "415", r
    assert pn.format_number(n, pn.PhoneNumberFormat.E164) == r["phone_number"], r
    assert r["record_type"] == "available_phone_number" and r["phone_number_type"] == "local", r
    regions = {x["region_type"]: x["region_name"] for x in r["region_information"]}
    assert regions["country_code"] == "US" and regions["state"] == "CA", r
    feats = [f["name"] for f in r["features"]]
    assert feats[0] == "voice" and "sms" in feats and "mms" in feats, r
    c = r["cost_information"]
    assert re.fullmatch(r"\d+\.\d\d", c["monthly_cost"]) and re.fullmatch(r"\d+\.\d\d", c["upfront_cost"]), c
    assert c["currency"] == "USD" and r["reservable"] is True, r
assert len({r["phone_number"] for r in data}) == 20
PY
n1=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"][0]["phone_number"])' "$tmp/s415")
n2=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"][1]["phone_number"])' "$tmp/s415")
n3=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"][2]["phone_number"])' "$tmp/s415")

# -- filters
search 'filter[country_code]=US&filter[national_destination_code]=415&filter[limit]=3'
[ "$code" = 200 ] && [ "$(j 'len(d["data"])')" = 3 ] && ok || fail "limit=3"
part=${n1:6:4} # 4 digits from the middle of the first number
search "filter[country_code]=US&filter[phone_number][contains]=$part&filter[limit]=50"
[ "$code" = 200 ] && [ "$(j "len(d['data']) >= 1 and all('$part' in r['phone_number'][2:] for r in d['data'])")" = True ] &&
	ok || fail "contains=$part"
search "filter[country_code]=US&filter[phone_number][starts_with]=${n1:2:6}&filter[phone_number][ends_with]=${n1: -4}"
[ "$code" = 200 ] && [ "$(j "'$n1' in [r['phone_number'] for r in d['data']] and all(r['phone_number'].endswith('${n1: -4}') for r in d['data'])")" = True ] &&
	ok || fail "starts_with + ends_with"
search 'filter[country_code]=US&filter[phone_number_type]=toll_free&filter[limit]=30'
[ "$code" = 200 ] && [ "$(j "len(d['data']) == 30 and all(r['phone_number_type'] == 'toll_free' and r['phone_number'][2] == '8' and [f['name'] for f in r['features']] == ['voice'] for r in d['data'])")" = True ] &&
	ok || fail "type toll_free"
search 'filter[country_code]=GB&filter[phone_number_type]=mobile&filter[features][]=sms&filter[limit]=10'
[ "$code" = 200 ] && [ "$(j "len(d['data']) == 10 and all(r['phone_number'].startswith('+447') and 'sms' in [f['name'] for f in r['features']] for r in d['data'])")" = True ] &&
	ok || fail "GB mobile with sms"
search 'filter[country_code]=GB&filter[features][]=sms&filter[features][]=mms'
[ "$code" = 200 ] && [ "$(j 'len(d["data"])')" = 0 ] && ok || fail "GB has no mms numbers"
search 'filter[country_code]=US&filter[locality]=San%20Francisco&filter[administrative_area]=CA&filter[limit]=10'
[ "$code" = 200 ] && [ "$(j "len(d['data']) == 10 and all({'region_type': 'location', 'region_name': 'San Francisco'} in r['region_information'] for r in d['data'])")" = True ] &&
	ok || fail "locality San Francisco"
search 'filter[limit]=251'
expect_code 400 "limit 251"
search 'filter[phone_number_type]=premium'
expect_code 400 "bad phone_number_type"
search 'filter[area_code]=415'
expect_code 400 "unknown filter"
for cc in CA GB DE FR AU; do
	search "filter[country_code]=$cc&filter[limit]=25"
	if [ "$code" = 200 ] && "$PY" - "$tmp/body" "$cc" <<'PY'; then ok; else fail "search $cc: $(head -c 300 "$tmp/body")"; fi
import json, sys
import phonenumbers as pn
cc = sys.argv[2]
data = json.load(open(sys.argv[1]))["data"]
assert len(data) == 25
for r in data:
    n = pn.parse(r["phone_number"])
    assert pn.is_valid_number_for_region(n, cc), r["phone_number"]
    assert r["region_information"][0] == {"region_type": "country_code", "region_name": cc}
PY
done

# -- orders
body="{\"phone_numbers\":[{\"phone_number\":\"$n1\"},{\"phone_number\":\"$n2\"}],\"customer_reference\":\"$REF\"}"
call POST /v2/number_orders "$body" -H "Idempotency-Key: $REF-k1"
expect_code 201 "order two numbers"
order_id=$(j 'd["data"]["id"]')
[ "$(j "d['data']['status'] == 'success' and [p['status'] for p in d['data']['phone_numbers']] == ['success', 'success'] and d['data']['customer_reference'] == '$REF'")" = True ] &&
	ok || fail "order status: $(head -c 400 "$tmp/body")"
id1=$(j 'd["data"]["phone_numbers"][0]["id"]')
id2=$(j 'd["data"]["phone_numbers"][1]["id"]')
[ "$(mine)" = 2 ] && ok || fail "2 numbers owned after the order (have $(mine))"
search "filter[country_code]=US&filter[national_destination_code]=415&filter[limit]=250"
[ "$(j "any(r['phone_number'] in ('$n1', '$n2') for r in d['data'])")" = False ] && ok || fail "ordered numbers still in search"
call POST /v2/number_orders "$body"
[ "$code" = 201 ] && [ "$(j "d['data']['status'] == 'failure' and all(p['status'] == 'failure' and p['errors'][0]['code'] == '10012' for p in d['data']['phone_numbers'])")" = True ] &&
	ok || fail "second order of the same numbers: $(head -c 400 "$tmp/body")"
call POST /v2/number_orders "$body" -H "Idempotency-Key: $REF-k1"
[ "$code" = 201 ] && [ "$(j 'd["data"]["id"]')" = "$order_id" ] && [ "$(j 'd["data"]["status"]')" = success ] &&
	grep -qi '^Idempotent-Replayed: true' "$tmp/headers" && ok || fail "Idempotency-Key replay: $code $(head -c 300 "$tmp/body")"
[ "$(mine)" = 2 ] && ok || fail "replay ordered again (owned $(mine))"
call POST /v2/number_orders "{\"phone_numbers\":[{\"phone_number\":\"$n3\"}]}" -H "Idempotency-Key: $REF-k1"
expect_code 422 "same Idempotency-Key, another body"
call POST /v2/number_orders "{\"phone_numbers\":[{\"phone_number\":\"$n1\"},{\"phone_number\":\"$n3\"},{\"phone_number\":\"+14155550100\"},{\"phone_number\":\"4155550100\"}],\"customer_reference\":\"$REF\"}"
[ "$code" = 201 ] && [ "$(j "(d['data']['status'], [p['status'] for p in d['data']['phone_numbers']], [p['errors'][0]['code'] for p in d['data']['phone_numbers'] if p['errors']])")" = "('partial_success', ['failure', 'success', 'failure', 'failure'], ['10012', '10005', '10016'])" ] &&
	ok || fail "partial order: $(head -c 600 "$tmp/body")"
id3=$(j 'd["data"]["phone_numbers"][1]["id"]')
call POST /v2/number_orders '{"phone_numbers":[]}'
expect_code 422 "empty order"

# -- reads
call GET "/v2/phone_numbers/$id1"
[ "$code" = 200 ] && [ "$(j "(d['data']['phone_number'], d['data']['status'], d['data']['record_type'])")" = "('$n1', 'active', 'phone_number')" ] &&
	ok || fail "GET phone_numbers/id: $code $(head -c 300 "$tmp/body")"
call GET "/v2/phone_numbers?filter[phone_number]=%2B${n2#+}"
[ "$code" = 200 ] && [ "$(j "[r['id'] for r in d['data']]")" = "[\"$id2\"]" ] && ok || fail "GET phone_numbers?filter[phone_number]"
call GET "/v2/number_orders/$order_id"
[ "$code" = 200 ] && [ "$(j 'd["data"]["status"]')" = success ] && ok || fail "GET number_orders/id"
call GET "/v2/phone_numbers/$id3"
[ "$code" = 200 ] && [ "$(j 'd["data"]["phone_number"]')" = "$n3" ] && ok || fail "number of a partial order"
call GET /v2/phone_numbers/00000000-0000-0000-0000-000000000000
expect_code 404 "unknown number id"

# -- PATCH
call PATCH "/v2/phone_numbers/$id1" '{"call_forwarding":{"call_forwarding_enabled":true,"forwards_to":"+442071234567","forwarding_type":"on_failure"},"tags":["shell"]}'
[ "$code" = 200 ] && [ "$(j "d['data']['call_forwarding'] == {'call_forwarding_enabled': True, 'forwards_to': '+442071234567', 'forwarding_type': 'on_failure'} and d['data']['tags'] == ['shell']")" = True ] &&
	ok || fail "PATCH forwarding: $code $(head -c 300 "$tmp/body")"
call GET "/v2/phone_numbers/$id1"
[ "$(j 'd["data"]["call_forwarding"]["forwards_to"]')" = +442071234567 ] && ok || fail "forwarding not kept"
for bad in '"12345"' '"+1"' '"+44 20 7123 4567"' '42'; do
	call PATCH "/v2/phone_numbers/$id1" "{\"call_forwarding\":{\"forwards_to\":$bad}}"
	expect_code 422 "forwards_to $bad"
done
call PATCH "/v2/phone_numbers/$id1" '{"status":"disabled"}'
[ "$code" = 200 ] && [ "$(j 'd["data"]["status"]')" = disabled ] && ok || fail "PATCH status disabled"
call PATCH "/v2/phone_numbers/$id1" '{"status":"gone"}'
expect_code 422 "PATCH bad status"

# -- voice settings (versioned call forwarding: PATCH/GET /v2/phone_numbers/{id}/voice)
call GET "/v2/phone_numbers/$id2/voice"
[ "$code" = 200 ] && [ "$(j "(d['data']['record_type'], d['data']['settings_version'])")" = "('voice_settings', 0)" ] &&
	ok || fail "GET voice: $code $(head -c 300 "$tmp/body")"
call PATCH "/v2/phone_numbers/$id2/voice" '{"settings_version":2,"call_forwarding":{"call_forwarding_enabled":true,"forwards_to":"+14155550100"}}'
[ "$code" = 200 ] && [ "$(j "(d['data']['settings_version'], d['data']['call_forwarding']['forwards_to'])")" = "(2, '+14155550100')" ] &&
	ok || fail "PATCH voice v2: $code $(head -c 300 "$tmp/body")"
call PATCH "/v2/phone_numbers/$id2/voice" '{"settings_version":1,"call_forwarding":{"call_forwarding_enabled":true,"forwards_to":"+14155550111"}}'
[ "$code" = 409 ] && [ "$(j "(d['errors'][0]['code'], d['errors'][0]['meta']['current_version'])")" = "('10020', 2)" ] &&
	ok || fail "an older settings_version: $code $(head -c 300 "$tmp/body")"
call PATCH "/v2/phone_numbers/$id2/voice" '{"settings_version":2,"call_forwarding":{"call_forwarding_enabled":false}}'
[ "$code" = 200 ] && [ "$(j "d['data']['call_forwarding']['forwards_to']")" = +14155550100 ] &&
	ok || fail "the same settings_version again is a replay: $code $(head -c 300 "$tmp/body")"
call PATCH "/v2/phone_numbers/$id2/voice" '{"settings_version":3,"call_forwarding":{"call_forwarding_enabled":true,"forwards_to":"sip:desk@pbx.example.com","forwarding_type":"on_failure"}}'
[ "$code" = 200 ] && [ "$(j "d['data']['settings_version']")" = 3 ] && ok || fail "PATCH voice sip: $code $(head -c 300 "$tmp/body")"
call GET "/v2/phone_numbers/$id2"
[ "$(j "d['data']['call_forwarding']['forwards_to']")" = sip:desk@pbx.example.com ] && ok || fail "voice settings not on the number"
for bad in '{"call_forwarding":{}}' '{"settings_version":0,"call_forwarding":{}}' '{"settings_version":"4","call_forwarding":{}}' \
	'{"settings_version":4,"call_forwarding":{"call_forwarding_enabled":true}}' \
	'{"settings_version":4,"call_forwarding":{"forwards_to":"12345"}}' '{"settings_version":4,"tags":[]}'; do
	call PATCH "/v2/phone_numbers/$id2/voice" "$bad"
	expect_code 422 "PATCH voice $bad"
done
call PATCH /v2/phone_numbers/00000000-0000-0000-0000-000000000000/voice '{"settings_version":1,"call_forwarding":{}}'
expect_code 404 "PATCH voice of an unknown number"
admin POST /admin/faults '{"endpoint":"voice","error_rate":1}' >/dev/null
call PATCH "/v2/phone_numbers/$id2/voice" '{"settings_version":5,"call_forwarding":{"call_forwarding_enabled":false}}'
expect_code 503 "voice fault"
call GET "/v2/phone_numbers/$id2/voice"
[ "$code" = 200 ] && [ "$(j "d['data']['settings_version']")" = 3 ] && ok || fail "GET voice under a voice fault: $code"
admin DELETE '/admin/faults?endpoint=voice' >/dev/null

# -- DELETE releases
call DELETE "/v2/phone_numbers/$id1"
[ "$code" = 200 ] && [ "$(j 'd["data"]["status"]')" = deleted ] && ok || fail "DELETE: $code $(head -c 300 "$tmp/body")"
call GET "/v2/phone_numbers/$id1"
expect_code 404 "GET after DELETE"
call DELETE "/v2/phone_numbers/$id1"
expect_code 404 "second DELETE"
search "filter[country_code]=US&filter[phone_number][starts_with]=%2B${n1#+}"
[ "$(j "[r['phone_number'] for r in d['data']]")" = "[\"$n1\"]" ] && ok || fail "released number not back in search"

# -- faults
[ "$(admin POST /admin/faults '{"endpoint":"search","fail_next":2}')" = 200 ] && ok || fail "POST /admin/faults"
codes=
for _ in 1 2 3 4; do
	search 'filter[country_code]=US&filter[limit]=1'
	codes="$codes $code"
	[ "$code" = 503 ] && { [ "$(j 'd["errors"][0]["code"]')" = 10007 ] || fail "503 body: $(cat "$tmp/body")"; }
done
[ "$codes" = " 503 503 200 200" ] && ok || fail "fail_next=2 gave:$codes"
admin GET /admin/stats >/dev/null
[ "$(ja 'd["injected"]["search"]["status"]')" = 2 ] && ok || fail "stats: $(cat "$tmp/admin")"

admin POST /admin/faults '{"endpoint":"order","refuse":true}' >/dev/null
before=$(mine)
call POST /v2/number_orders "{\"phone_numbers\":[{\"phone_number\":\"$n1\"}],\"customer_reference\":\"$REF\"}"
[ "$code" = 000 ] && [ "$rc" != 0 ] && ok || fail "refuse: curl rc $rc, HTTP $code"
[ "$(mine)" = "$before" ] && ok || fail "a refused order took effect"
call GET "/v2/phone_numbers/$id2"
expect_code 200 "other endpoints unaffected by the order fault"
admin DELETE /admin/faults >/dev/null

call GET "/v2/phone_numbers/$id2"
base=$time_s
admin POST /admin/faults '{"endpoint":"get","latency_ms":400}' >/dev/null
call GET "/v2/phone_numbers/$id2"
if [ "$code" = 200 ] && "$PY" -c "import sys; sys.exit(0 if $time_s >= 0.4 and $time_s > $base else 1)"; then ok; else
	fail "latency: HTTP $code in $time_s s (without: $base s)"
fi
admin POST /admin/faults '{"endpoint":"get","timeout_ms":3000}' >/dev/null
call GET "/v2/phone_numbers/$id2" '' -m 1
[ "$rc" = 28 ] && ok || fail "timeout_ms: curl rc $rc (want 28, timed out), HTTP $code"
admin DELETE '/admin/faults?endpoint=get' >/dev/null

# an order that goes through but whose answer is lost; the retry with the same key gets it
admin POST /admin/faults '{"endpoint":"order","fail_next":1,"phase":"after"}' >/dev/null
before=$(mine)
body="{\"phone_numbers\":[{\"phone_number\":\"$n1\"}],\"customer_reference\":\"$REF\"}"
call POST /v2/number_orders "$body" -H "Idempotency-Key: $REF-k2"
expect_code 503 "order with the answer lost"
[ "$(mine)" = $((before + 1)) ] && ok || fail "phase=after: the order did not take effect"
call POST /v2/number_orders "$body" -H "Idempotency-Key: $REF-k2"
[ "$code" = 201 ] && [ "$(j 'd["data"]["status"]')" = success ] && ok || fail "retry after a lost answer: $code $(head -c 300 "$tmp/body")"
[ "$(mine)" = $((before + 1)) ] && ok || fail "the retry ordered twice"
admin DELETE /admin/faults >/dev/null
[ "$(admin GET /admin/faults)" = 200 ] && [ "$(ja 'd["faults"]')" = "[]" ] && ok || fail "faults not cleared"

# -- restart keeps ordered numbers (ops/stack stop carrier; start carrier)
n_before=$(mine)
out=$(ops/stack stop carrier 2>&1) && grep -q 'carrier: stopped' <<<"$out" && ok || fail "stop carrier: $out"
curl -s -m 2 -o /dev/null "$URL/healthz" && fail "carrier still answers after stop" || ok
out=$(ops/stack start carrier 2>&1) && grep -q 'carrier: started' <<<"$out" && ok || fail "start carrier: $out"
[ "$(mine)" = "$n_before" ] && ok || fail "owned after restart: $(mine), want $n_before"
call GET "/v2/phone_numbers/$id2"
[ "$code" = 200 ] && [ "$(j 'd["data"]["phone_number"]')" = "$n2" ] && ok || fail "number lost by a restart: $code"
search "filter[country_code]=US&filter[phone_number][starts_with]=%2B${n2#+}"
[ "$(j 'len(d["data"])')" = 0 ] && ok || fail "ordered number back in search after a restart"
call POST /v2/number_orders "$body" -H "Idempotency-Key: $REF-k2"
[ "$code" = 201 ] && grep -qi '^Idempotent-Replayed: true' "$tmp/headers" && ok || fail "idempotency key lost by a restart"

# -- /admin/reset restores
[ "$(admin POST /admin/reset)" = 200 ] && ok || fail "POST /admin/reset"
[ "$(owned)" = 0 ] && [ "$(avail_us)" = "$us_initial" ] && ok || fail "after reset: owned $(owned), US available $(avail_us) (want 0, $us_initial)"
search "filter[country_code]=US&filter[phone_number][starts_with]=%2B${n2#+}"
[ "$(j "[r['phone_number'] for r in d['data']]")" = "[\"$n2\"]" ] && ok || fail "reset did not restore $n2"
call GET "/v2/phone_numbers/$id2"
expect_code 404 "numbers after reset"

echo "carrier sandbox: $checks checks passed, $failures failed"
[ "$failures" = 0 ]
