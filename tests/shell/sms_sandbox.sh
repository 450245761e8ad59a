#!/usr/bin/env bash
# The SMS sandbox (ops/sms-sandbox, docs/SMS_SANDBOX.md) over HTTP: a message sent with curl, its
# signed status callbacks (sent, delivered) received by tests/support/webhook_receiver.py and their
# X-Twilio-Signature checked; receipt rules (undelivered 30003, failed 30008) scoped to this run's
# numbers; a callback retried after a 500; Twilio errors (auth, To, From, Body, 1600 chars); reads.
# HTTP faults (fail_next, refuse, latency, bad rules) go to a private sandbox on a free port, so that
# the shared one's other users never draw them. Run by `make test` (tests/run).
# shellcheck disable=SC2015 # `A && ok || fail`: ok always succeeds
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
if [ -z "${VOX_SMS_URL:-}" ]; then eval "$(ops/stack env)"; fi
SID=${VOX_SMS_ACCOUNT_SID:-AC_sandbox}
TOKEN=${VOX_SMS_AUTH_TOKEN:-sandbox-token}
PY=/usr/bin/python3
VPY=${VOX_CACHE_DIR:-$HOME/.cache/voxlink}/st-venv/bin/python
tmp=$(mktemp -d)
failures=0
checks=0
pids=()
tag=$(printf '%07d' $((($(date +%s%N) / 1000 + RANDOM) % 10000000)))
num() { echo "+1555$1$tag"; } # this run's numbers: +1555 D NNNNNNN
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for d in 1 2 3 4; do curl -s -m 5 -o /dev/null -X DELETE "$VOX_SMS_URL/admin/faults?to=%2B1555$d$tag"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }

# send URL TO [curl args...]: POST Messages.json; code, body in $tmp/body
send() {
	local url=$1 to=$2
	shift 2
	code=$(curl -sS -m 10 -u "$SID:$TOKEN" -o "$tmp/body" -w '%{http_code}' --data-urlencode "To=$to" \
		"$@" "$url/2010-04-01/Accounts/$SID/Messages.json" 2>"$tmp/err")
}
j() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$tmp/body" "$1"; }
err_is() { # status code description
	if [ "$code" = "$1" ] && [ "$(j 'd["code"]')" = "$2" ] && [ "$(j 'd["more_info"]')" = "https://www.twilio.com/docs/errors/$2" ]; then ok
	else fail "$3: HTTP $code $(head -c 300 "$tmp/body") (want $1 code $2)"; fi
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# start NAME READY_GREP CMD...: runs CMD in the background until its log has READY_GREP
start() {
	local name=$1 ready=$2
	shift 2
	"$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do grep -q "$ready" "$tmp/$name.log" && return 0; sleep 0.1; done
	fail "$name did not start: $(tail -5 "$tmp/$name.log")"
	return 1
}

start receiver '^ready' "$VPY" tests/support/webhook_receiver.py --host 127.0.0.1 --port 0 || exit 1
RECV=$(sed -n 's/^ready //p' "$tmp/receiver.log")
received() { # path min: the receiver's records (waits up to 8 s for min of them)
	curl -sS -m 15 -o "$tmp/body" "$RECV/_admin/received?path=$1&min=$2&timeout_ms=8000"
}
# check_callbacks PATH N STATUSES...: N callbacks, their MessageStatus in order, every signature valid
check_callbacks() {
	local path=$1 n=$2 want
	shift 2
	want=$*
	received "$path" "$n"
	local got
	got=$(TOKEN=$TOKEN URL="$RECV$path?run=$tag" "$PY" - "$tmp/body" <<'PY'
import base64, hashlib, hmac, json, os, sys
from urllib.parse import parse_qsl
out = []
for r in json.load(open(sys.argv[1])):
    params = dict(parse_qsl(r["body"], keep_blank_values=True))
    data = os.environ["URL"] + "".join(k + params[k] for k in sorted(params))
    sig = base64.b64encode(hmac.new(os.environ["TOKEN"].encode(), data.encode(), hashlib.sha1).digest()).decode()
    good = hmac.compare_digest(sig, r["headers"].get("x-twilio-signature", ""))
    out.append("%s%s%s" % (params.get("MessageStatus"), ":" + params["ErrorCode"] if "ErrorCode" in params else "",
                           "" if good and params.get("ApiVersion") == "2010-04-01" else "(BAD SIGNATURE)"))
print(" ".join(out))
PY
)
	[ "$got" = "$want" ] && ok || fail "callbacks on $path: got '$got', want '$want'"
}

S=$VOX_SMS_URL
# -- a message, its receipts (sent, delivered), signed
send "$S" "$(num 1)" --data-urlencode From=+15005550006 --data-urlencode "Body=Usage alert: 80% ✓" \
	--data-urlencode "StatusCallback=$RECV/cb1?run=$tag"
[ "$code" = 201 ] && ok || fail "send: HTTP $code $(cat "$tmp/body" "$tmp/err")"
sid=$(j 'd["sid"]')
[[ $sid =~ ^SM[0-9a-f]{32}$ ]] && [ "$(j 'd["status"], d["to"], d["num_segments"], d["account_sid"]')" = "('queued', '$(num 1)', '1', '$SID')" ] &&
	ok || fail "send answer: $(cat "$tmp/body")"
check_callbacks /cb1 2 sent delivered
code=$(curl -sS -m 5 -u "$SID:$TOKEN" -o "$tmp/body" -w '%{http_code}' "$S/2010-04-01/Accounts/$SID/Messages/$sid.json")
[ "$code" = 200 ] && [ "$(j 'd["status"]')" = delivered ] && ok || fail "GET message: $code $(head -c 200 "$tmp/body")"
code=$(curl -sS -m 5 -u "$SID:$TOKEN" -o "$tmp/body" -w '%{http_code}' "$S/2010-04-01/Accounts/$SID/Messages.json?To=%2B15551$tag")
[ "$code" = 200 ] && [ "$(j '[m["sid"] for m in d["messages"]]')" = "[\"$sid\"]" ] && ok || fail "list To=: $(head -c 300 "$tmp/body")"
curl -sS -m 5 -o "$tmp/body" "$S/admin/messages?to=%2B15551$tag"
[ "$(j '[h["status"] for h in d["messages"][0]["history"]]')" = '["queued", "sent", "delivered"]' ] && ok || fail "admin history: $(head -c 400 "$tmp/body")"

# -- receipt rules for this run's numbers: undelivered (30003), failed (30008, never sent)
curl -sS -m 5 -o /dev/null -X POST "$S/admin/faults" -d "[{\"to\":\"$(num 2)\",\"receipt\":\"undelivered\",\"receipt_delay_ms\":50},
	{\"to\":\"$(num 3)\",\"receipt\":\"failed\",\"receipt_delay_ms\":50}]"
send "$S" "$(num 2)" --data-urlencode From=+15005550006 -d Body=x --data-urlencode "StatusCallback=$RECV/cb2?run=$tag"
check_callbacks /cb2 2 sent undelivered:30003
send "$S" "$(num 3)" --data-urlencode From=+15005550006 -d Body=x --data-urlencode "StatusCallback=$RECV/cb3?run=$tag"
check_callbacks /cb3 1 failed:30008
# -- a callback answered 500 is tried again
curl -sS -m 5 -o /dev/null -X POST "$RECV/_admin/script" -d '{"path":"/cb4","responses":[{"status":500}]}'
send "$S" "$(num 4)" --data-urlencode From=+15005550006 -d Body=x --data-urlencode "StatusCallback=$RECV/cb4?run=$tag"
check_callbacks /cb4 3 sent sent delivered

# -- Twilio's errors; the maximum body
send "$S" "$(num 1)" -u "$SID:wrong" --data-urlencode From=+15005550006 -d Body=x; err_is 401 20003 "bad token"
send "$S" 12345 --data-urlencode From=+15005550006 -d Body=x; err_is 400 21211 "To not E.164"
send "$S" "$(num 1)" -d Body=x; err_is 400 21603 "no From"
send "$S" "$(num 1)" --data-urlencode From=+15005550006; err_is 400 21602 "no Body"
send "$S" "$(num 1)" --data-urlencode From=+15005550006 -d "Body=$(head -c 1601 /dev/zero | tr '\0' a)"; err_is 400 21617 "1601 chars"
send "$S" "$(num 1)" --data-urlencode From=+15005550006 -d "Body=$(head -c 1600 /dev/zero | tr '\0' a)"
[ "$code" = 201 ] && [ "$(j 'd["num_segments"]')" = 11 ] && ok || fail "1600 chars: $code $(head -c 200 "$tmp/body")"
send "$S" "$(num 1)" --data-urlencode From=+15005550006 -d Body=x -d StatusCallback=ftp://x; err_is 400 21609 "bad StatusCallback"
code=$(curl -sS -m 5 -u "$SID:$TOKEN" -o "$tmp/body" -w '%{http_code}' "$S/2010-04-01/Accounts/$SID/Messages/SM00.json")
err_is 404 20404 "unknown message"

# -- HTTP faults, on a private sandbox
P=$(free_port)
start private listening /usr/bin/python3 ops/sms-sandbox/server.py --port "$P" || exit 1
S=http://127.0.0.1:$P
curl -sS -m 5 -o /dev/null -X POST "$S/admin/faults" -d '{"fail_next":1,"status":503,"retry_after":2}'
send "$S" "$(num 1)" --data-urlencode From=+15005550006 -d Body=x; err_is 503 20503 "fail_next 503"
send "$S" "$(num 1)" --data-urlencode From=+15005550006 -d Body=x
[ "$code" = 201 ] && ok || fail "after fail_next: $code"
curl -sS -m 5 -o /dev/null -X POST "$S/admin/faults" -d '{"endpoint":"send","refuse":true}'
send "$S" "$(num 1)" --data-urlencode From=+15005550006 -d Body=x
[ "$code" = 000 ] && ok || fail "refuse: HTTP $code"
curl -sS -m 5 -o /dev/null -X POST "$S/admin/faults" -d '{"endpoint":"send","latency_ms":300}'
t=$(curl -sS -m 5 -u "$SID:$TOKEN" -o /dev/null -w '%{time_total}' --data-urlencode To=+15551234567 --data-urlencode From=+15005550006 -d Body=x "$S/2010-04-01/Accounts/$SID/Messages.json")
"$PY" -c "import sys; sys.exit(0 if $t >= 0.3 else 1)" && ok || fail "latency 300 ms: took $t s"
for bad in '{"endpoint":"nope"}' '{"receipt":"lost"}' '{"to":"+1555"}' 'not json' '{"receipt":"none","receipt_delay_ms":-1}'; do
	code=$(curl -sS -m 5 -o "$tmp/body" -w '%{http_code}' -X POST "$S/admin/faults" -d "$bad")
	[ "$code" = 400 ] && [ "$(j 'd["code"]')" = 20001 ] && ok || fail "bad fault rule $bad: $code"
done
[ "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -X POST "$S/admin/reset")" = 200 ] && ok || fail "reset"

echo "sms sandbox: $checks checks passed, $failures failed"
[ "$failures" = 0 ]
