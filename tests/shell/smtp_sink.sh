#!/usr/bin/env bash
# The SMTP sink of the test stack (ops/smtp-sink) with curl's SMTP client and `voxctl mail`: a mail is
# stored in the Maildir and listed (headers, RFC 2047 subject, --to filter, --json) and shown; a 1 MiB
# mail goes through; reject*/defer* recipients get 550/451 and nothing is stored; voxctl's bad input.
# Run by `make test` (tests/run); by hand: eval "$(ops/stack env)"; bash tests/shell/smtp_sink.sh
# shellcheck disable=SC2015 # `A && ok || fail`: ok always succeeds
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
if [ -z "${VOX_SMTP_URL:-}" ]; then eval "$(ops/stack env)"; fi
VOXCTL=${VOX_BIN_DIR:-build/rel/bin}/voxctl
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }

tag=$(date +%s%N | tail -c 10)$RANDOM
to=ann.$tag@voxlink.test
mail() { # rcpt file: curl's exit code, its stderr in $tmp/err
	curl -sS -m 10 "$VOX_SMTP_URL" --mail-from noreply@voxlink.test --mail-rcpt "$1" -T "$2" 2>"$tmp/err"
}
printf 'From: VoxLink <noreply@voxlink.test>\r\nTo: Ann <%s>\r\nSubject: =?UTF-8?B?VXNhZ2UgYWxlcnQg4oCU?= =?UTF-8?Q?_caf=C3=A9_%s?=\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour usage passed 80%%.\r\n' \
	"$to" "$tag" "$(date -R)" >"$tmp/m1"
mail "$to" "$tmp/m1" && ok || fail "mail to $to: $(cat "$tmp/err")"

"$VOXCTL" mail list --to "$to" --json >"$tmp/list" && ok || fail "voxctl mail list --to --json"
n=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d), d[0]["subject"] if d else "", d[0]["n"] if d else 0, d[0]["rcpt_to"] if d else "")' "$tmp/list")
[ "$n" = "1 Usage alert — café $tag $(grep -o '"n": [0-9]*' "$tmp/list" | grep -o '[0-9]*$') $to" ] && ok || fail "list: $n"
num=$(grep -o '"n": [0-9]*' "$tmp/list" | grep -o '[0-9]*$')
"$VOXCTL" mail list | grep -F "Usage alert — café $tag" | grep -qF "<$to>" && ok || fail "table list has no line for $to"
"$VOXCTL" mail show "$num" >"$tmp/show" && grep -q 'Your usage passed 80%' "$tmp/show" && grep -qi "^X-RcptTo: $to" "$tmp/show" &&
	ok || fail "voxctl mail show $num: $(head -c 300 "$tmp/show")"

# a 1 MiB body (the sink takes up to 10 MiB)
{ printf 'From: noreply@voxlink.test\r\nTo: %s\r\nSubject: big %s\r\n\r\n' "$to" "$tag"
	head -c 786432 /dev/urandom | base64 -w 76 | sed 's/$/\r/'; } >"$tmp/m2"
mail "$to" "$tmp/m2" && ok || fail "1 MiB mail: $(cat "$tmp/err")"
"$VOXCTL" mail list --to "$to" --json | grep -c '"subject"' | grep -qx 2 && ok || fail "the 1 MiB mail is not listed"

# faults: reject* -> 550 (permanent), defer* -> 451 (temporary), nothing stored
mail "reject.$tag@voxlink.test" "$tmp/m1"
[ $? = 55 ] && grep -q 550 "$tmp/err" && ok || fail "reject*: want curl 55 with 550, got $(cat "$tmp/err")"
mail "Defer-$tag@voxlink.test" "$tmp/m1"
[ $? = 55 ] && grep -q 451 "$tmp/err" && ok || fail "defer*: want curl 55 with 451, got $(cat "$tmp/err")"
[ "$("$VOXCTL" mail list --to "reject.$tag" --json | grep -c '"subject"')" = 0 ] &&
	[ "$("$VOXCTL" mail list --to "defer-$tag" --json | grep -c '"subject"')" = 0 ] && ok || fail "a refused mail was stored"

# voxctl: bad input is a usage error (exit 2), a missing message exit 1
"$VOXCTL" mail show abc >/dev/null 2>&1; [ $? = 2 ] && ok || fail "mail show abc: want exit 2"
"$VOXCTL" mail show 999999999 >/dev/null 2>&1; [ $? = 1 ] && ok || fail "mail show 999999999: want exit 1"
"$VOXCTL" mail list --bogus >/dev/null 2>&1; [ $? = 2 ] && ok || fail "mail list --bogus: want exit 2"
VOX_SMTP_MAILDIR=$tmp/none "$VOXCTL" mail list >/dev/null 2>&1; [ $? = 1 ] && ok || fail "missing Maildir: want exit 1"

echo "smtp sink: $checks checks passed, $failures failed"
[ "$failures" = 0 ]
