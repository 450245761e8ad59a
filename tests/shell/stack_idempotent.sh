#!/usr/bin/env bash
# `ops/stack up` on a running stack changes nothing: the same processes
# keep running (same pids) and every service says it was already up.
set -uo pipefail
cd "$(dirname "$0")/../.."
run=${VOX_RUN_DIR:-.run}
pids_of() { { cat "$run"/*/*.pid "$run"/*.pid 2>/dev/null; head -n 1 "$run"/pg/data/postmaster.pid 2>/dev/null; } | sort | tr "\n" " "; }
before=$(pids_of)
[ -n "$before" ] || { echo "FAIL: no pid files under $run (is the stack up?)"; exit 1; }
out=$(ops/stack up 2>&1) || { echo "FAIL: second up failed: $out"; exit 1; }
echo "$out"
after=$(pids_of)
[ "$before" = "$after" ] || { echo "FAIL: pids changed: '$before' -> '$after'"; exit 1; }
for svc in postgres redis kafka carrier smtp sms s3; do
	grep -qi "$svc.*already" <<<"$out" || { echo "FAIL: $svc did not say already running"; exit 1; }
done
ops/stack status || { echo "FAIL: status after second up"; exit 1; }
echo "ok: second up changed nothing (pids $after)"
