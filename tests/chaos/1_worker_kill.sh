#!/usr/bin/env bash
# Chaos 1: SIGKILL the metering worker CHAOS_KILLS (20) times while it rates a
# flood of CHAOS_RECORDS (1,000,000) CDRs, restarting it after each kill.
#
# The flood is produced to vox.cdr.raw as the ingress publishes carriers'
# records (vox.cdr.received CloudEvents keyed by our number) by awk | kcat,
# while the worker runs: 1,000 numbers of one account on a rate card of this
# run (per-second and 6/6 and 30/6 increments, connect fees, a longer prefix
# for GB destinations, message rates), 1 % of the records pushed a second
# time by the carrier (same carrier and id), and 100 records for a number
# nobody owns (meant to be exceptions: unknown_number). The same awk pass
# computes the expected cost of every record from docs/METERING.md's rule
# (billable = first increment, then whole next increments; cost = setup +
# ceil(per_minute * billable / 60); messages setup + per_unit * segments)
# in integers and sums them; awk's doubles hold integers exactly below 2^53,
# which the script checks the sum stays under.
#
# Kills are spread over the flood by progress: kill k comes when about
# k/(kills+1) of the records are rated (+- 1/3 of a step at random), after a
# further random 0-0.5 s; the worker is restarted after 0-1 s with the same
# VOX_WORKER_INSTANCE_ID (static membership, as docs/ARCHITECTURE.md asks of
# a supervisor), so it gets its partitions back without waiting out the
# dead member's session (one id for every chaos scenario that runs metering:
# a static member stays in the group after it stops, and a new id would wait
# out its session).
#
# Checked afterwards: every distinct record in usage_records once (no
# duplicates, none lost), usage_dedup the same, the cost sum equal to the
# expected one to the micro-unit, usage_daily equal to both, exactly the 100
# meant exceptions (unknown_number) and nothing else, no crashed_worker dead
# letter (a kill blamed on a record would lose it), the group's lag 0.
# Figures: records, messages, kills, wall time, records/s, expected and
# actual sum, duplicates, lost, exceptions.
# shellcheck disable=SC2317 # functions run through chaos_wait
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/chaos/lib.sh
source tests/chaos/lib.sh
# shellcheck source=tests/chaos/metering.sh
source tests/chaos/metering.sh
chaos_init worker_kill

N=${CHAOS_RECORDS:-1000000}
KILLS=${CHAOS_KILLS:-20}
UNKNOWN=100
LIMIT=${CHAOS_TIMEOUT:-600}
RUN=$(date +%s)$((RANDOM % 1000))
CARRIER=chaos1-$RUN
WORK=$(mktemp -d)
chaos_on_exit "rm -rf '$WORK'"

# ---------------------------------------------------------------- set-up
meter_setup "worker kill $RUN"
ACCOUNT=$METER_ACCOUNT

note "$N records over 1,000 numbers, carrier $CARRIER, account $ACCOUNT, rates: $METER_RATES"
DLQ_T0=$(($(date +%s) * 1000))
T0=$(chaos_now)
# kcat: the same producer settings as ours (acks=all, idempotent).
meter_flood "$N" "$CARRIER" "$WORK/expected" 1 "$UNKNOWN" | kcat -P -b "$VOX_KAFKA_BROKERS" -t vox.cdr.raw -K '|' -z lz4 \
	-X enable.idempotence=true -X linger.ms=20 -X queue.buffering.max.messages=500000 \
	2>"$VOX_CHAOS_LOGS/$CHAOS_NAME-kcat.log" &
PRODUCER=$!

WORKER_ENV=(VOX_WORKER_INSTANCE_ID=chaos-metering VOX_WORKER_METRICS_PORT=0 VOX_LOG_LEVEL=warn)
chaos_start metering "${WORKER_ENV[@]}" metering

deadline=$(($(date +%s) + LIMIT))
kills=0
step=$((N / (KILLS + 1)))
while [ "$kills" -lt "$KILLS" ]; do
	k=$((kills + 1))
	jitter=$(((RANDOM * 32768 + RANDOM) % (2 * step / 3 + 1) - step / 3))
	target=$((k * step + jitter))
	while :; do
		at=$(meter_rated)
		[ "$at" -ge "$target" ] && break
		[ "$(date +%s)" -lt "$deadline" ] || fail "only $at of $N rated after $LIMIT s (kill $k of $KILLS pending)"
		if ! chaos_alive metering; then
			fail "the worker died on its own (see $VOX_CHAOS_LOGS/$CHAOS_NAME-metering.log)"
		fi
		sleep 0.2
	done
	sleep "0.$((RANDOM % 500))"
	chaos_kill metering || fail "the worker was not running at kill $k"
	kills=$k
	note "SIGKILL $k at $(meter_rated) rated (target $target)"
	sleep "0.$((RANDOM % 1000))"
	chaos_start metering "${WORKER_ENV[@]}" metering
done

wait "$PRODUCER" || fail "kcat could not produce the flood (see $VOX_CHAOS_LOGS/$CHAOS_NAME-kcat.log)"
read -r EXPECTED MESSAGES RESENT UNKNOWN_SENT _ <"$WORK/expected"
exceptions() { chaos_sql "SELECT count(*) FROM usage_exceptions WHERE carrier = '$CARRIER'"; }
all_done() { [ "$(meter_rated)" -ge "$N" ] && [ "$(exceptions)" -ge "$UNKNOWN_SENT" ]; }
chaos_wait $((deadline - $(date +%s))) "every record rated" all_done ||
	note "not all rated in $LIMIT s: the checks below say what is missing"
T1=$(chaos_now)
# The last batch's offsets are stored after its commit: a clean stop.
chaos_stop metering 30

# ---------------------------------------------------------------- checks
IFS='|' read -r ROWS DISTINCT ACTUAL UNEXPECTED <<<"$(chaos_sql "
	SELECT count(*), count(DISTINCT carrier_cdr_id), coalesce(sum(cost_micros), 0),
	       count(*) FILTER (WHERE carrier_cdr_id !~ '^c-[0-9]+\$' OR substr(carrier_cdr_id, 3)::bigint >= $N)
	FROM usage_records WHERE carrier = '$CARRIER'")"
DEDUP=$(chaos_sql "SELECT count(*) FROM usage_dedup WHERE carrier = '$CARRIER'")
IFS='|' read -r DAILY_RECORDS DAILY_COST <<<"$(chaos_sql "
	SELECT coalesce(sum(records), 0), coalesce(sum(cost_micros), 0) FROM usage_daily WHERE account_id = '$ACCOUNT'")"
IFS='|' read -r EXC EXC_MEANT <<<"$(chaos_sql "
	SELECT count(*), count(*) FILTER (WHERE reason_code = 'unknown_number' AND carrier_cdr_id LIKE 'u-%')
	FROM usage_exceptions WHERE carrier = '$CARRIER'")"
# Dead letters of this run: our carrier's records on vox.cdr.raw.dlq since the start.
kcat -b "$VOX_KAFKA_BROKERS" -C -t vox.cdr.raw.dlq -o "s@$DLQ_T0" -e -q -f '%h\t%s\n' 2>/dev/null |
	grep -F "\"carrier\":\"$CARRIER\"" >"$WORK/dlq" || true
CRASHED=$(grep -c 'vox-dlq-reason=crashed_worker' "$WORK/dlq" || true)
DLQ_UNKNOWN=$(grep 'vox-dlq-reason=unknown_number' "$WORK/dlq" | grep -oE '"id":"u-[0-9]+"' | sort -u | wc -l)
LAG=$(chaos_lag vox.metering vox.cdr.raw) || LAG=unknown

WALL=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')
figure records "$N"
figure messages "$MESSAGES"
figure resent "$RESENT"
figure kills "$kills"
figure wall_flood_s "$WALL"
figure records_per_s "$(awk -v n="$N" -v w="$WALL" 'BEGIN { printf "%.0f", n / w }')"
figure expected_sum_micros "$EXPECTED"
figure actual_sum_micros "$ACTUAL"
figure usage_daily_sum_micros "$DAILY_COST"
figure duplicates "$((ROWS - DISTINCT))"
figure lost "$((N - DISTINCT + UNEXPECTED))"
figure exceptions "$EXC"
figure exceptions_meant "$UNKNOWN_SENT"
figure dlq_unknown_number "$DLQ_UNKNOWN"
figure dlq_crashed_worker "$CRASHED"
figure lag "$LAG"

chaos_check "the expected sum stays below 2^53 (awk's exact integers)" [ "${#EXPECTED}" -lt 16 ]
chaos_check "$KILLS kills (got $kills)" [ "$kills" -eq "$KILLS" ]
chaos_check "usage_records: $ROWS rows for $N records" [ "$ROWS" -eq "$N" ]
chaos_check "duplicates: $((ROWS - DISTINCT))" [ "$ROWS" -eq "$DISTINCT" ]
chaos_check "records not of this flood: $UNEXPECTED" [ "$UNEXPECTED" -eq 0 ]
chaos_check "usage_dedup: $DEDUP pairs for $N records" [ "$DEDUP" -eq "$N" ]
chaos_check "cost sum $ACTUAL, expected $EXPECTED" [ "$ACTUAL" = "$EXPECTED" ]
chaos_check "usage_daily: $DAILY_RECORDS records for $N" [ "$DAILY_RECORDS" -eq "$N" ]
chaos_check "usage_daily: cost $DAILY_COST, expected $EXPECTED" [ "$DAILY_COST" = "$EXPECTED" ]
chaos_check "exceptions: $EXC for the $UNKNOWN_SENT meant" [ "$EXC" -eq "$UNKNOWN_SENT" ]
chaos_check "exceptions unknown_number of the meant records: $EXC_MEANT" [ "$EXC_MEANT" -eq "$UNKNOWN_SENT" ]
chaos_check "dead letters unknown_number: $DLQ_UNKNOWN of $UNKNOWN_SENT" [ "$DLQ_UNKNOWN" -eq "$UNKNOWN_SENT" ]
chaos_check "crashed_worker dead letters: $CRASHED" [ "$CRASHED" -eq 0 ]
chaos_check "consumer lag after the flood: $LAG" [ "$LAG" = 0 ]
chaos_done
