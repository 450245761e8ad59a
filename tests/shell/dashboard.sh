#!/usr/bin/env bash
# The web dashboard (docs/DASHBOARD.md) in a real browser: its files as the
# ingress serves them (CSP, caching, bad names), then tests/browser/*.test.mjs
# in Debian's headless chromium driven by puppeteer-core, against the whole
# pipeline on the test stack tests/run exported: an ingress serving
# build/web, the provisioning, metering, notifications, porting and
# invoicing workers, a customer's webhook receiver (tests/support/
# webhook_receiver.py), a fresh account (its owner key: a new user) and a
# carrier credential for CDRs. Screenshots: $VOX_TEST_LOGS/screenshots.
#
#   tests/shell/dashboard.sh [NAME...]   only the tests whose file names contain NAME
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
bin=${VOX_BIN_DIR:-$root/build/rel/bin}
logs=${VOX_TEST_LOGS:-$root/build/rel/test-logs}
PY=/usr/bin/python3
VPY=${VOX_CACHE_DIR:-$HOME/.cache/voxlink}/st-venv/bin/python
tmp=$(mktemp -d)
pids=()
mkdir -p "$logs"

cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
die() {
	echo "FAIL: $*"
	exit 1
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
jget() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

[ -f build/web/index.html ] || die "build/web is not built (make web)"
[ -d web/node_modules/puppeteer-core ] || die "web/node_modules lacks puppeteer-core (make web runs npm ci)"
command -v chromium >/dev/null || die "no chromium (ops/install-deps installs it)"
for b in ingress provisioning metering notifications porting invoicing voxctl; do
	[ -x "$bin/$b" ] || die "$bin/$b is not built"
done

# The customer's webhook endpoint (127.0.0.1, allowed by VOX_WEBHOOK_ALLOW_CIDRS below).
"$VPY" tests/support/webhook_receiver.py --host 127.0.0.1 --port 0 >"$tmp/receiver.out" 2>"$logs/dashboard-receiver.log" &
pids+=($!)
for _ in $(seq 100); do grep -q '^ready' "$tmp/receiver.out" && break; sleep 0.1; done
receiver=$(sed -n 's/^ready //p' "$tmp/receiver.out")
[ -n "$receiver" ] || die "the webhook receiver did not start ($logs/dashboard-receiver.log)"

export VOX_ENCRYPTION_KEY=${VOX_ENCRYPTION_KEY:-$(openssl rand -hex 32)}
# JWTs of an identity provider (HS256 with this secret): 55_jwt signs in with one.
export VOX_DASH_JWT_SECRET
VOX_DASH_JWT_SECRET=$(openssl rand -hex 32)
export VOX_WEBHOOK_ALLOW_CIDRS=127.0.0.1/32
port=$(free_port)
base="http://127.0.0.1:$port"
VOX_INGRESS_PORT=$port VOX_JWT_ALG=HS256 VOX_JWT_SECRET=$VOX_DASH_JWT_SECRET VOX_JWT_AUDIENCE=voxlink \
	VOX_DASHBOARD_DIR="$root/build/web" VOX_OPENAPI_FILE="$root/schemas/openapi.yaml" \
	VOX_RATE_READ=100000 VOX_RATE_COMMAND=100000 VOX_RATE_SEARCH=100000 \
	"$bin/ingress" >"$logs/dashboard-ingress.log" 2>&1 &
pids+=($!)
# The porting worker applies the porting webhooks of one carrier: the one
# whose credential this script makes below (the carrier sandbox signs with it).
name="dashboard-$$-$(date +%s)"
export VOX_PORTING_CARRIER=$name
for w in provisioning metering notifications porting invoicing; do
	VOX_WORKER_METRICS_PORT=0 VOX_NOTIFY_POLL_MS=200 "$bin/$w" >"$logs/dashboard-$w.log" 2>&1 &
	pids+=($!)
done
for _ in $(seq 100); do
	curl -fsS -m 1 -o /dev/null "$base/healthz" 2>/dev/null && break
	sleep 0.1
done
curl -fsS -m 2 -o /dev/null "$base/healthz" || die "the ingress did not come up ($logs/dashboard-ingress.log)"

echo "== the dashboard's files as served"
hdr() { curl -sS -o "$tmp/body" -D - "$@" | tr -d '\r'; }
h=$(hdr "$base/dashboard")
grep -q '^HTTP/1.1 200' <<<"$h" || die "GET /dashboard: $(head -n 1 <<<"$h")"
grep -qi "^content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';" <<<"$h" || die "GET /dashboard: no strict CSP: $h"
grep -qi '^cache-control: no-cache' <<<"$h" || die "GET /dashboard: the page is not revalidated: $h"
grep -qi '^content-type: text/html' <<<"$h" || die "GET /dashboard: not text/html"
etag=$(sed -n 's/^[Ee][Tt]ag: //p' <<<"$h")
[ "$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$base/dashboard")" = 304 ] || die "If-None-Match did not answer 304"
# gzip for clients that take it (a form of its own: Vary, its own ETag), not for those refusing it
curl -sS -o "$tmp/index.gz" -D "$tmp/gz.h" -H 'Accept-Encoding: br, gzip' "$base/dashboard"
grep -qi '^content-encoding: gzip' "$tmp/gz.h" || die "GET /dashboard with Accept-Encoding: gzip is not gzipped"
grep -qi '^vary: accept-encoding' "$tmp/gz.h" || die "GET /dashboard: no Vary: Accept-Encoding"
gunzip -c "$tmp/index.gz" | cmp -s - "$tmp/body" || die "GET /dashboard: the gzipped page is not the page"
! grep -qi "^etag: $etag" "$tmp/gz.h" || die "GET /dashboard: the gzipped form has the plain form's ETag"
curl -sS -o /dev/null -D "$tmp/nogz.h" -H 'Accept-Encoding: gzip;q=0, identity' "$base/dashboard"
! grep -qi '^content-encoding' "$tmp/nogz.h" || die "GET /dashboard with gzip;q=0 was gzipped"
if grep -q '<script>' "$tmp/body" || grep -q ' style=' "$tmp/body"; then die "index.html has inline code"; fi
js=$(grep -o '/dashboard/app-[A-Z0-9]*\.js' "$tmp/body")
css=$(grep -o '/dashboard/app-[A-Z0-9]*\.css' "$tmp/body")
if [ -z "$js" ] || [ -z "$css" ]; then die "index.html names no hashed bundle"; fi
for f in "$js" "$css"; do
	h=$(hdr "$base$f")
	grep -q '^HTTP/1.1 200' <<<"$h" || die "GET $f: $(head -n 1 <<<"$h")"
	grep -qi '^cache-control: public, max-age=31536000, immutable' <<<"$h" || die "GET $f: not cached for a year"
	grep -qi '^x-content-type-options: nosniff' <<<"$h" || die "GET $f: no nosniff"
done
for bad in nope.js .hidden.js %2e%2e%2fMakefile ..%2f..%2fetc%2fpasswd app.exe index.html%2Fx; do
	code=$(curl -sS -o "$tmp/err" -w '%{http_code}' "$base/dashboard/$bad")
	[ "$code" = 404 ] || die "GET /dashboard/$bad answered $code, want 404"
	"$PY" -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; sys.exit(e["code"] != "route_not_found")' "$tmp/err" ||
		die "GET /dashboard/$bad: not the error format: $(cat "$tmp/err")"
done
echo "files: index (CSP, no-cache, ETag/304, gzip), $js and $css (immutable), 6 bad names 404"

# A new user: a fresh account and its owner key; a carrier credential for
# CDRs and porting webhooks.
"$bin/voxctl" account create --name "$name" --json >"$tmp/account.json" || die "voxctl account create"
"$bin/voxctl" carrier create --name "$name" --json >"$logs/dashboard-carrier.json" || die "voxctl carrier create"

echo "== browser tests"
VOX_DASH_BASE=$base VOX_DASH_OWNER_KEY=$(jget "$tmp/account.json" api_key) \
	VOX_DASH_ACCOUNT_ID=$(jget "$tmp/account.json" account_id) \
	VOX_DASH_CARRIER_JSON="$logs/dashboard-carrier.json" VOX_DASH_RECEIVER=$receiver \
	VOX_DASH_SHOTS="$logs/screenshots" VOX_BIN_DIR=$bin \
	node tests/browser/run.mjs "$@"
