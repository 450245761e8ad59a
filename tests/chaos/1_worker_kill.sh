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
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/chaos/lib.sh
source tests/chaos/lib.sh
chaos_init worker_kill

N=${CHAOS_RECORDS:-1000000}
KILLS=${CHAOS_KILLS:-20}
NUMBERS=1000
UNKNOWN=100
LIMIT=${CHAOS_TIMEOUT:-600}
RUN=$(date +%s)$((RANDOM % 1000))
CARRIER=chaos1-$RUN
WORK=$(mktemp -d)
chaos_on_exit "rm -rf '$WORK'"

# ---------------------------------------------------------------- set-up
ACCOUNT=$("$VOX_BIN_DIR/voxctl" account create --name "chaos worker kill $RUN" --json |
	sed -nE 's/.*"account_id": *"([^"]+)".*/\1/p')
[ -n "$ACCOUNT" ] || fail "voxctl account create gave no account"
CARD=$(chaos_sql "INSERT INTO rate_cards (name, currency, effective_from)
	VALUES ('chaos $RUN', 'USD', '2020-01-01') RETURNING id")
chaos_sql "INSERT INTO rates (rate_card_id, currency, event_type, prefix, per_minute_micros,
		per_unit_micros, setup_micros, first_increment_s, next_increment_s) VALUES
	('$CARD', 'USD', 'inbound_call',  '',   8333,  0,    0,   6,  6),
	('$CARD', 'USD', 'outbound_call', '',   12345, 0,    7,   30, 6),
	('$CARD', 'USD', 'outbound_call', '44', 20000, 0,    150, 1,  1),
	('$CARD', 'USD', 'sms_received',  '',   0,     1000, 3,   60, 60),
	('$CARD', 'USD', 'sms_sent',      '',   0,     4100, 0,   60, 60);
	INSERT INTO account_rate_cards (account_id, rate_card_id, effective_from)
	VALUES ('$ACCOUNT', '$CARD', '2020-01-01')" >/dev/null
# Our numbers: +1628 and 7 digits, a block of 1,000 no other run holds.
BASE=
for _ in $(seq 20); do
	b=$((1000000 + (RANDOM * 32768 + RANDOM) % 8990 * 1000))
	if [ "$(chaos_sql "SELECT count(*) FROM numbers WHERE e164 BETWEEN '+1628$b' AND '+1628$((b + NUMBERS - 1))'")" = 0 ]; then
		BASE=$b
		break
	fi
done
[ -n "$BASE" ] || fail "no free block of $NUMBERS numbers"
chaos_sql "INSERT INTO numbers (e164, country, area_code, number_type, status, account_id, carrier)
	SELECT '+1628' || g, 'US', '628', 'local', 'active', '$ACCOUNT', 'sandbox'
	FROM generate_series($BASE, $BASE + $NUMBERS - 1) g" >/dev/null
# Unknown numbers: 9999900.. (never in a block above), checked free.
[ "$(chaos_sql "SELECT count(*) FROM numbers WHERE e164 BETWEEN '+16289999900' AND '+16289999999'")" = 0 ] ||
	fail "the unknown numbers +16289999900.. are in use"

# ---------------------------------------------------------------- the flood
# One line per message: KEY|EVENT. Record i (0..N-1): type i%4, number
# i%1000; calls last (i*7919)%3601 s (some 0: unanswered), messages 1+i%5
# segments; outbound calls to GB (+44) when i%8 == 1, else to the US.
# Every 100th record from i=5000 on also sends record i-5000 again.
# Every N/UNKNOWN-th record (from 37 on) is followed by one for an unknown number.
HOUR=$(date -u -d '-2 hours' +%Y-%m-%dT%H)
flood() {
	awk -v n="$N" -v base="$BASE" -v carrier="$CARRIER" -v hour="$HOUR" \
		-v unknown="$UNKNOWN" -v out="$WORK/expected" '
	function ceil_div(a, b) { return int((a + b - 1) / b) }
	function billable(d, first, incr) { return d <= first ? first : first + ceil_div(d - first, incr) * incr }
	function call_cost(d, pm, setup, first, incr) { return d == 0 ? 0 : setup + ceil_div(pm * billable(d, first, incr), 60) }
	function emit(i, id, num, type, from, to, dur, seg,    t) {
		t = sprintf("%s:%02d:%02d.%03dZ", hour, int(i / 60000) % 60, int(i / 1000) % 60, i % 1000)
		printf "%s|{\"specversion\":\"1.0\",\"id\":\"019ab6c2-0000-7000-8000-%012d\",\"source\":\"/voxlink/carriers\",\"type\":\"vox.cdr.received\",\"time\":\"%s\",\"subject\":\"%s\",\"datacontenttype\":\"application/json\",\"accountid\":null,\"data\":{\"carrier\":\"%s\",\"id\":\"%s\",\"type\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"started_at\":\"%s\",\"received_via\":\"api\",\"duration_s\":%d,\"segments\":%d}}\n", num, msgs, t, num, carrier, id, type, from, to, t, dur, seg
		msgs++
	}
	# record i: sets R_* and returns its expected cost
	function record(i,    d, s) {
		R_num = "+1628" (base + i % 1000)
		R_type = i % 4; d = (i * 7919) % 3601; s = 1 + i % 5
		if (R_type == 0) {
			R_t = "inbound_call"; R_from = "+12125550100"; R_to = R_num; R_d = d; R_s = 0
			return call_cost(d, 8333, 0, 6, 6)
		}
		if (R_type == 1) {
			R_t = "outbound_call"; R_from = R_num; R_d = d; R_s = 0
			if (i % 8 == 1) {
				R_to = sprintf("+44207946%04d", i % 10000)
				return call_cost(d, 20000, 150, 1, 1)
			}
			R_to = sprintf("+1212555%04d", i % 10000)
			return call_cost(d, 12345, 7, 30, 6)
		}
		R_d = 0; R_s = s
		if (R_type == 2) {
			R_t = "sms_received"; R_from = "+12125550100"; R_to = R_num
			return 3 + 1000 * s
		}
		R_t = "sms_sent"; R_from = R_num; R_to = sprintf("+1212555%04d", i % 10000)
		return 4100 * s
	}
	BEGIN {
		every = int(n / unknown); u = 0; resent = 0
		for (i = 0; i < n; i++) {
			sum += record(i)
			emit(i, "c-" i, R_num, R_t, R_from, R_to, R_d, R_s)
			if (i >= 5000 && i % 100 == 0) {
				record(i - 5000)
				emit(i, "c-" (i - 5000), R_num, R_t, R_from, R_to, R_d, R_s)
				resent++
			}
			if (i % every == 37 && u < unknown) {
				num = "+16289999" (900 + u)
				emit(i, "u-" u, num, "inbound_call", "+12125550100", num, 60, 0)
				u++
			}
		}
		printf "%.0f %d %d %d\n", sum, msgs, resent, u > out
	}'
}

note "$N records over $NUMBERS numbers, carrier $CARRIER, account $ACCOUNT"
DLQ_T0=$(($(date +%s) * 1000))
T0=$(chaos_now)
# kcat: the same producer settings as ours (acks=all, idempotent).
flood | kcat -P -b "$VOX_KAFKA_BROKERS" -t vox.cdr.raw -K '|' -z lz4 \
	-X enable.idempotence=true -X linger.ms=20 -X queue.buffering.max.messages=500000 \
	2>"$VOX_CHAOS_LOGS/$CHAOS_NAME-kcat.log" &
PRODUCER=$!

WORKER_ENV=(VOX_WORKER_INSTANCE_ID=chaos-metering VOX_WORKER_METRICS_PORT=0 VOX_LOG_LEVEL=warn)
chaos_start metering "${WORKER_ENV[@]}" metering

rated() { chaos_sql "SELECT coalesce(sum(records), 0) FROM usage_daily WHERE account_id = '$ACCOUNT'"; }
deadline=$(($(date +%s) + LIMIT))
kills=0
step=$((N / (KILLS + 1)))
while [ "$kills" -lt "$KILLS" ]; do
	k=$((kills + 1))
	jitter=$(((RANDOM * 32768 + RANDOM) % (2 * step / 3 + 1) - step / 3))
	target=$((k * step + jitter))
	while :; do
		at=$(rated)
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
	note "SIGKILL $k at $(rated) rated (target $target)"
	sleep "0.$((RANDOM % 1000))"
	chaos_start metering "${WORKER_ENV[@]}" metering
done

wait "$PRODUCER" || fail "kcat could not produce the flood (see $VOX_CHAOS_LOGS/$CHAOS_NAME-kcat.log)"
read -r EXPECTED MESSAGES RESENT UNKNOWN_SENT <"$WORK/expected"
exceptions() { chaos_sql "SELECT count(*) FROM usage_exceptions WHERE carrier = '$CARRIER'"; }
all_done() { [ "$(rated)" -ge "$N" ] && [ "$(exceptions)" -ge "$UNKNOWN_SENT" ]; }
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
