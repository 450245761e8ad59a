#!/usr/bin/env bash
# A worker whose consumer librdkafka declares unusable (a fatal error: here a
# static member fenced by a second process with the same
# VOX_WORKER_INSTANCE_ID, as happened in chaos scenario 2 when the group
# coordinator's broker was SIGKILLed) exits non-zero, so its supervisor
# starts a fresh one, instead of living on consuming nothing. Runs against
# the test stack, in a consumer group of its own on vox.test.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
: "${VOX_BIN_DIR:?run through make test}" "${VOX_PG_URL:?}" "${VOX_KAFKA_BROKERS:?}"
logs=${VOX_TEST_LOGS:-/tmp}
fail() {
	echo "FAIL: $*"
	exit 1
}

group=consumer-fatal-$$-$RANDOM
start() { # NAME
	VOX_WORKER_GROUP=$group VOX_WORKER_TOPICS=vox.test VOX_WORKER_INSTANCE_ID=fenced-$group \
		VOX_WORKER_METRICS_PORT=0 VOX_WORKER_RELAY=0 "$VOX_BIN_DIR/provisioning" >>"$logs/consumer-fatal-$1.log" 2>&1 &
}
start first
first=$!
trap 'kill -TERM $first ${second:-} 2>/dev/null' EXIT
sleep 8 # joined its group
kill -0 "$first" 2>/dev/null || fail "the first worker did not start: $(tail -n 5 "$logs/consumer-fatal-first.log")"
start second
second=$!
for _ in $(seq 150); do
	kill -0 "$first" 2>/dev/null || break
	sleep 0.2
done
kill -0 "$first" 2>/dev/null && fail "the fenced worker still runs 30 s later (it consumes nothing)"
wait "$first"
status=$?
[ "$status" != 0 ] || fail "the fenced worker exited 0"
grep -q 'fatal consumer error' "$logs/consumer-fatal-first.log" || fail "no 'fatal consumer error' in its log"
echo "ok   a fenced worker exits (status $status) and says why"
kill -TERM "$second"
wait "$second"
trap - EXIT
