#!/usr/bin/env bash
# With Kafka stopped, commands get 503 and nothing is reported accepted;
# /readyz says so. After Kafka returns, commands are accepted again without
# restarting the ingress. Runs against the test stack (tests/run's env).
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${VOX_BIN_DIR:?run through make test}" "${VOX_PG_URL:?}"
logs=${VOX_TEST_LOGS:-/tmp}
fail() { echo "FAIL: $*"; exit 1; }

# An account and key, as voxctl would make them.
account=$(python3 -c 'import uuid; print(uuid.uuid4())')
key="vox_$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 43)"
hash=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
psql -q -v ON_ERROR_STOP=1 "$VOX_PG_URL" -c "insert into accounts (id, name) values ('$account', 'outage test');
  insert into api_keys (account_id, prefix, secret_hash, role) values ('$account', '${key:0:12}', decode('$hash', 'hex'), 'owner')" ||
	fail "cannot create the account"
count_ops() { psql -qtA "$VOX_PG_URL" -c "select count(*) from operations where account_id = '$account'"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
VOX_INGRESS_PORT=$port VOX_KAFKA_TIMEOUT_MS=2000 "$VOX_BIN_DIR/ingress" >>"$logs/outage-ingress.log" 2>&1 &
ingress=$!
trap 'kill -TERM $ingress 2>/dev/null; ops/stack start kafka >/dev/null 2>&1' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

post() { curl -s -o /tmp/outage.$$ -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/canary" -H "Authorization: Bearer $key"; }
[ "$(post)" = 202 ] || fail "canary before the outage: $(cat /tmp/outage.$$)"
echo "ok   202 with Kafka up"

ops/stack stop kafka || fail "cannot stop kafka"
before=$(count_ops)
code=$(post)
[ "$code" = 503 ] || fail "with Kafka down: HTTP $code $(cat /tmp/outage.$$)"
grep -q '"bus_unavailable"' /tmp/outage.$$ || fail "503 without bus_unavailable: $(cat /tmp/outage.$$)"
[ "$(count_ops)" = "$before" ] || fail "an operation was recorded although the answer was 503"
echo "ok   503 bus_unavailable with Kafka down, nothing accepted"
ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")
[ "$ready" = 503 ] || fail "/readyz answered $ready with Kafka down"
echo "ok   /readyz 503 with Kafka down"

ops/stack start kafka || fail "cannot start kafka"
ok=0
for _ in $(seq 60); do
	if [ "$(post)" = 202 ]; then ok=1; break; fi
	sleep 1
done
[ "$ok" = 1 ] || fail "commands not accepted 60 s after Kafka returned: $(cat /tmp/outage.$$)"
echo "ok   202 again after Kafka returned, same ingress process"
kill -0 $ingress || fail "the ingress died"
kill -TERM $ingress
wait $ingress
status=$?
trap - EXIT
rm -f /tmp/outage.$$
[ "$status" = 0 ] || fail "ingress exit status $status"
echo "ok   clean stop"
