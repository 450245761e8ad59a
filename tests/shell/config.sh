#!/usr/bin/env bash
# Every binary: --help prints its settings and exits 0; a bad value or an
# unknown argument stops it with a message naming the problem and exit 2.
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${VOX_BIN_DIR:-build/rel/bin}
fail=0
expect() { # want_status description command...
	local want=$1 what=$2
	shift 2
	out=$("$@" 2>&1)
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL $what: exit $got, want $want: $out"
		fail=1
	else
		echo "ok   $what"
	fi
}
for b in ingress provisioning; do
	expect 0 "$b --help" "$bin/$b" --help
	expect 2 "$b unknown argument" "$bin/$b" --bogus
	expect 2 "$b bad log level" env VOX_LOG_LEVEL=loud "$bin/$b"
done
expect 2 "ingress port out of range" env VOX_INGRESS_PORT=70000 "$bin/ingress"
expect 2 "ingress port not a number" env VOX_INGRESS_PORT=80a "$bin/ingress"
# A document store set up wrong stops the ingress before it listens (no store at all does not).
expect 2 "ingress S3 bucket not a bucket name" env VOX_INGRESS_PORT=0 VOX_S3_ACCESS_KEY=k \
	VOX_S3_SECRET_KEY=s VOX_S3_BUCKET=Not_A_Bucket "$bin/ingress"
expect 2 "ingress S3 key without secret" env VOX_INGRESS_PORT=0 VOX_S3_ACCESS_KEY=k VOX_S3_SECRET_KEY= "$bin/ingress"
expect 2 "ingress S3 endpoint not a URL" env VOX_INGRESS_PORT=0 VOX_S3_ACCESS_KEY=k VOX_S3_SECRET_KEY=s \
	VOX_S3_ENDPOINT=s3.example.com "$bin/ingress"
expect 2 "ingress document cap too small" env VOX_DOCUMENT_MAX_BYTES=10 "$bin/ingress"
expect 2 "worker attempts out of range" env VOX_WORKER_MAX_ATTEMPTS=0 "$bin/provisioning"
expect 2 "worker bool not a bool" env VOX_WORKER_RELAY=maybe "$bin/provisioning"
expect 0 "porting --help" "$bin/porting" --help
expect 2 "porting unknown argument" "$bin/porting" --bogus
expect 2 "porting without VOX_ENCRYPTION_KEY" env -u VOX_ENCRYPTION_KEY "$bin/porting"
expect 2 "porting with a malformed key" env VOX_ENCRYPTION_KEY=not-a-key "$bin/porting"
expect 0 "voxctl help" "$bin/voxctl" help
expect 2 "voxctl no command" "$bin/voxctl"
expect 2 "voxctl unknown command" "$bin/voxctl" frobnicate
expect 2 "voxctl bad setting" env VOX_PG_WAIT_MS=-1 "$bin/voxctl" migrate
out=$(VOX_INGRESS_PORT=70000 "$bin/ingress" 2>&1)
grep -q 'VOX_INGRESS_PORT' <<<"$out" || { echo "FAIL message does not name the variable: $out"; fail=1; }
exit $fail
