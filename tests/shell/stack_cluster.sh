#!/usr/bin/env bash
# ops/stack --cluster: three KRaft brokers in a run dir of their own, every topic of ops/topics
# on three replicas with min.insync.replicas=2. With one broker stopped an acks=all write still
# succeeds; with two stopped it is refused (NOT_ENOUGH_REPLICAS), which is what keeps a 202 honest;
# the stopped brokers come back and catch up. Only Kafka is started (ops/stack start kafka), on
# ports beside the test stack's.
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${VOX_KAFKA_PORT:?run through make test}" "${VOX_KAFKA_CONTROLLER_PORT:?}"
fail() { echo "FAIL: $*"; exit 1; }
logs=${VOX_TEST_LOGS:-/tmp}

export VOX_RUN_DIR=$logs/stack-cluster
export VOX_KAFKA_PORT=$((VOX_KAFKA_PORT + 10)) VOX_KAFKA_CONTROLLER_PORT=$((VOX_KAFKA_CONTROLLER_PORT + 10))
brokers=127.0.0.1:$VOX_KAFKA_PORT,127.0.0.1:$((VOX_KAFKA_PORT + 2)),127.0.0.1:$((VOX_KAFKA_PORT + 4))
rm -rf "$VOX_RUN_DIR"
trap 'ops/stack down >/dev/null 2>&1; rm -rf "$VOX_RUN_DIR"' EXIT

ops/stack start kafka --cluster || fail "the cluster did not start"
# later commands need no flag: the run dir remembers
eval "$(ops/stack env)"
[ "$VOX_KAFKA_BROKERS" = "$brokers" ] || fail "env gives VOX_KAFKA_BROKERS=$VOX_KAFKA_BROKERS, want $brokers"
echo "ok   three brokers, env lists them: $VOX_KAFKA_BROKERS"

meta=$(kcat -b "$brokers" -L) || fail "no metadata"
[ "$(grep -c '^  broker [0-9]* at ' <<<"$meta")" = 3 ] || fail "not three brokers: $meta"
want=$(sed -e 's/#.*//' ops/topics | awk 'NF >= 2' | wc -l)
have=$(grep -c '^  topic "vox\.' <<<"$meta")
[ "$have" = "$want" ] || fail "$have topics, ops/topics lists $want"
bad=$(grep '^    partition' <<<"$meta" | grep -v 'replicas: [0-9],[0-9],[0-9], isrs: [0-9],[0-9],[0-9]$' || true)
[ -z "$bad" ] || fail "partitions not on three in-sync replicas: $bad"
echo "ok   $have topics, every partition on 3 replicas, all in sync"
desc=$(java -cp "${VOX_CACHE_DIR:-$HOME/.cache/voxlink}/kafka-4.1.1-libs/*" org.apache.kafka.tools.TopicCommand \
	--bootstrap-server "$brokers" --describe --topic vox.cmd.metering 2>&1 | head -n 1)
grep -q 'ReplicationFactor: 3' <<<"$desc" && grep -q 'min.insync.replicas=2' <<<"$desc" ||
	fail "vox.cmd.metering: $desc"
echo "ok   vox.cmd.metering: ReplicationFactor 3, min.insync.replicas=2"

produce() { # acks=all, 10 s at most: 0 when the broker took it
	printf 'cluster-%s\n' "$1" | timeout 20 kcat -P -b "$brokers" -t vox.test -p 0 -X acks=all \
		-X message.timeout.ms=10000 -X enable.idempotence=true 2>"$logs/stack-cluster-produce.err"
}
ops/stack stop kafka-2 >/dev/null || fail "cannot stop kafka-2"
status=$(ops/stack status 2>/dev/null) # 1: services of this run dir are down
grep -q '^kafka-2: down' <<<"$status" || fail "status does not say kafka-2 is down: $status"
produce one || fail "acks=all with one broker of three down: $(cat "$logs/stack-cluster-produce.err")"
echo "ok   one broker down: acks=all write taken"

ops/stack stop kafka-3 >/dev/null || fail "cannot stop kafka-3"
if produce two; then fail "acks=all taken with only one in-sync replica (min.insync.replicas not 2)"; fi
echo "ok   two brokers down: acks=all write refused ($(grep -o 'Message timed out\|[Nn]ot enough in-sync replicas' "$logs/stack-cluster-produce.err" | head -n 1))"

ops/stack start kafka-2 >/dev/null || fail "kafka-2 did not come back"
ops/stack start kafka-3 >/dev/null || fail "kafka-3 did not come back"
produce three || fail "write after both returned: $(cat "$logs/stack-cluster-produce.err")"
got=$(timeout 20 kcat -C -b "$brokers" -t vox.test -p 0 -o beginning -e -q -X fetch.wait.max.ms=100 | grep -c '^cluster-')
[ "$got" = 2 ] || fail "read back $got records, want 2 (one, three)"
for _ in $(seq 60); do
	grep '^    partition' <<<"$(kcat -b "$brokers" -L -t vox.test)" | grep -q 'isrs: [0-9],[0-9],[0-9]$' && break
	sleep 0.5
done
echo "ok   brokers back, records one and three read, the partition's replicas back in sync"
ops/stack down >/dev/null || fail "down failed"
echo "ok   down"
