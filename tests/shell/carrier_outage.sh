#!/usr/bin/env bash
# With the carrier sandbox stopped: search still answers, marked stale
# (X-Cache: stale); an order fails visibly (the operation says
# carrier_unavailable) and leaves the reservation as it was. Then the
# carrier returns and ordering works. Runs against the test stack.
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${VOX_BIN_DIR:?run through make test}" "${VOX_PG_URL:?}"
logs=${VOX_TEST_LOGS:-/tmp}
fail() { echo "FAIL: $*"; exit 1; }

key=$("$VOX_BIN_DIR/voxctl" account create --name "carrier outage" --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])') || fail "account"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
VOX_INGRESS_PORT=$port "$VOX_BIN_DIR/ingress" >>"$logs/carrier-outage-ingress.log" 2>&1 &
ingress=$!
VOX_WORKER_METRICS_PORT=0 VOX_CARRIER_TIMEOUT_MS=500 "$VOX_BIN_DIR/provisioning" >>"$logs/carrier-outage-worker.log" 2>&1 &
worker=$!
trap 'kill -TERM $ingress $worker 2>/dev/null; ops/stack start carrier >/dev/null 2>&1' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
api() { # method path [body] -> body on stdout, headers in /tmp/co.h.$$
	curl -s -D /tmp/co.h.$$ -X "$1" "http://127.0.0.1:$port$2" -H "Authorization: Bearer $key" \
		-H "Prefer: wait=15" ${3:+-H "Content-Type: application/json" -d "$3"}
}
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

search='/v1/available-numbers?country=US&area_code=212&limit=100'
n=$(api GET "$search" | field 'len(d["data"])')
[ "${n:-0}" -gt 0 ] || fail "no numbers before the outage"
number=$(api GET "$search" | field 'd["data"][0]["phone_number"]')
number2=$(api GET "$search" | field 'd["data"][1]["phone_number"]')
echo "ok   search with the carrier up ($n numbers)"

ops/stack stop carrier || fail "cannot stop the carrier"
# A search the local pool cannot fill asks the carrier, and finds it gone.
api GET '/v1/available-numbers?country=US&area_code=212&contains=7*7*7&limit=100' >/dev/null
grep -qi '^X-Cache: stale' /tmp/co.h.$$ || fail "refill without the carrier not marked stale: $(cat /tmp/co.h.$$)"
body=$(api GET "$search")
grep -qi '^X-Cache: stale' /tmp/co.h.$$ || fail "search without the carrier not marked stale: $(cat /tmp/co.h.$$)"
[ "$(field 'len(d["data"])' <<<"$body")" -gt 0 ] || fail "search without the carrier answered nothing"
echo "ok   search without the carrier answers, X-Cache: stale"

res=$(api POST /v1/reservations "{\"phone_numbers\":[\"$number\"]}")
rid=$(field 'd["result"]["reservation_id"]' <<<"$res") || fail "reservation: $res"
op=$(api POST /v1/orders "{\"reservation_id\":\"$rid\"}")
[ "$(field 'd["status"]' <<<"$op")" = failed ] || fail "order without the carrier: $op"
[ "$(field 'd["error"]["code"]' <<<"$op")" = carrier_unavailable ] || fail "order failure code: $op"
echo "ok   order without the carrier fails visibly: carrier_unavailable"
[ "$(api GET "/v1/reservations/$rid" | field 'd["status"]')" = active ] || fail "the reservation did not stay active"
echo "ok   the reservation is untouched"

ops/stack start carrier || fail "cannot start the carrier"
sleep 6 # the adapter's circuit breaker cools down (5 s)
res=$(api POST /v1/reservations "{\"phone_numbers\":[\"$number2\"]}")
rid2=$(field 'd["result"]["reservation_id"]' <<<"$res") || fail "reservation after: $res"
op=$(api POST /v1/orders "{\"reservation_id\":\"$rid2\"}")
[ "$(field 'd["status"]' <<<"$op")" = completed ] || fail "order after the carrier returned: $op"
echo "ok   order completes once the carrier is back"
kill -TERM $ingress $worker
wait $ingress $worker
trap - EXIT
rm -f /tmp/co.h.$$
