#!/usr/bin/env bash
# tests/support/webhook_receiver.py: scripted answers in order then `then`, delay, headers; records;
# Standard Webhooks verification with two secrets (a rotation: both verify, verified_by [0, 1]), a
# bad signature, bad admin input. Run by `make test` (tests/run).
# shellcheck disable=SC2015 # `A && ok || fail`: ok always succeeds
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
VPY=${VOX_CACHE_DIR:-$HOME/.cache/voxlink}/st-venv/bin/python
tmp=$(mktemp -d)
failures=0
checks=0
"$VPY" tests/support/webhook_receiver.py --host 127.0.0.1 --port 0 >"$tmp/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
for _ in $(seq 50); do grep -q '^ready' "$tmp/log" && break; sleep 0.1; done
R=$(sed -n 's/^ready //p' "$tmp/log")
[ -n "$R" ] && ok || { fail "no ready line: $(cat "$tmp/log")"; exit 1; }
admin() { curl -sS -m 5 -o "$tmp/admin" -w '%{http_code}' -X POST "$R/_admin/$1" -d "$2"; }

[ "$(admin script '{"path":"/a","responses":[{"status":500},{"status":200,"delay_ms":200},{"status":302,"headers":{"Location":"http://10.0.0.1/"}}],"then":{"status":410}}')" = 200 ] && ok || fail "script"
got=$(for _ in 1 2 3 4 5; do curl -sS -m 5 -o /dev/null -w '%{http_code}/%{redirect_url}/%{time_total} ' -d '{}' "$R/a"; done)
[[ $got =~ ^500//[0-9.]+\ 200//0\.[2-9][0-9]*\ 302/http://10\.0\.0\.1//[0-9.]+\ 410//[0-9.]+\ 410// ]] && ok || fail "scripted answers: $got"
[ "$(curl -sS -m 5 "$R/other")" = ok ] && ok || fail "default answer"

# two secrets (a rotation): a request signed with both verifies with both; one signed wrongly with neither
s1=whsec_$(head -c 24 /dev/urandom | base64); s2=whsec_$(head -c 24 /dev/urandom | base64)
[ "$(admin secrets "{\"path\":\"/s\",\"secrets\":[\"$s1\",\"$s2\"]}")" = 200 ] && ok || fail "secrets"
"$VPY" - "$R" "$s1" "$s2" <<'PY' || fail "signed requests"
import sys, time, urllib.request
from datetime import datetime, timezone
from standardwebhooks import Webhook
base, s1, s2 = sys.argv[1:4]
body = b'{"id":"msg_1","type":"webhook.test"}'
now = datetime.now(timezone.utc)
both = Webhook(s1).sign("msg_1", now, body) + " " + Webhook(s2).sign("msg_1", now, body)
for sig in (both, "v1,AAAA"):
    req = urllib.request.Request(base + "/s", data=body, method="POST", headers={
        "webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": sig})
    urllib.request.urlopen(req, timeout=5).read()
PY
curl -sS -m 5 -o "$tmp/rec" "$R/_admin/received?path=/s&min=2&timeout_ms=3000"
v=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([(r["verified"], r["verified_by"], r["verify_error"] is None, r["headers"]["webhook-id"]) for r in d])' "$tmp/rec")
[ "$v" = "[(True, [0, 1], True, 'msg_1'), (False, [], False, 'msg_1')]" ] && ok || fail "verification: $v"
curl -sS -m 5 -o "$tmp/rec" "$R/_admin/received?path=/a"
[ "$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d), d[0]["method"], d[0]["body"], d[0]["verified"])' "$tmp/rec")" = "5 POST {} None" ] && ok || fail "records of /a"

for bad in 'nope' '{"path":"a"}' '{"path":"/a","responses":[{"status":99}]}' '{"path":"/a","then":{"bogus":1}}'; do
	[ "$(admin script "$bad")" = 400 ] && ok || fail "bad script $bad accepted"
done
[ "$(admin secrets '{"path":"/s","secrets":[""]}')" = 400 ] && ok || fail "empty secret accepted"
[ "$(admin reset '')" = 200 ] && [ "$(curl -sS -m 5 "$R/_admin/received")" = "[]" ] && ok || fail "reset"

echo "webhook receiver: $checks checks passed, $failures failed"
[ "$failures" = 0 ]
