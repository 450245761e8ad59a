# shellcheck shell=bash
# tests/chaos/metering.sh: the metering set-up that scenarios 1 and 4 share
# (source it after lib.sh).
#
#   meter_setup TAG         an account (voxctl), a rate card of this run
#                           assigned to it, and 1,000 active numbers
#                           +1628<BASE..BASE+999> no other run holds. Sets
#                           METER_ACCOUNT, METER_CARD, METER_BASE.
#   meter_flood N CARRIER OUT [RESEND UNKNOWN POISON_EVERY TAG]
#                           prints "KEY|EVENT" lines for kcat -K '|': N
#                           vox.cdr.received CloudEvents as the ingress makes
#                           them, keyed by our number; record i has id c-<i>,
#                           type i%4, number i%1000, calls (i*7919)%3601 s
#                           (0: unanswered), messages 1+i%5 segments,
#                           outbound calls to GB (+44) when i%8 == 1. With
#                           RESEND 1 every 100th record from 5000 on is
#                           followed by record i-5000 again (the carrier
#                           pushing it twice); UNKNOWN records (u-<k>) for
#                           numbers nobody owns are spread over the flood;
#                           every POISON_EVERY-th record is followed by a
#                           poison message (TAG in it), five kinds in turn:
#                           not JSON, text with a NUL byte, a CloudEvent of
#                           another type, a CDR of type "fax" (invalid
#                           data), bytes that are not UTF-8.
#                           Writes "EXPECTED_SUM MESSAGES RESENT UNKNOWN
#                           POISON" to OUT: the expected cost of the N records
#                           by docs/METERING.md's rule, in integers (awk's
#                           doubles are exact below 2^53; the caller checks).
#   meter_rated             records rated so far for METER_ACCOUNT (usage_daily,
#                           kept in step with usage_records in the same
#                           transactions, and cheap to read).
#   METER_RATES             the card's rates, for the scenario's header.
#
# Rates (USD micro-units): inbound calls 8,333/min in 6/6 s increments;
# outbound 12,345/min, 7 connect, 30/6; outbound to +44 20,000/min, 150
# connect, per second; SMS received 1,000 + 3; SMS sent 4,100 per segment.
# shellcheck disable=SC2034 # read by the scenarios that source this file
METER_RATES='in 8333/min 6/6; out 12345/min +7 30/6; out +44 20000/min +150 1/1; sms_in 1000+3; sms_out 4100'

meter_setup() { # TAG
	local tag=$1 b
	METER_ACCOUNT=$("$VOX_BIN_DIR/voxctl" account create --name "chaos $tag" --json |
		sed -nE 's/.*"account_id": *"([^"]+)".*/\1/p')
	[ -n "$METER_ACCOUNT" ] || fail "voxctl account create gave no account"
	METER_CARD=$(chaos_sql "INSERT INTO rate_cards (name, currency, effective_from)
		VALUES ('chaos $tag', 'USD', '2020-01-01') RETURNING id")
	chaos_sql "INSERT INTO rates (rate_card_id, currency, event_type, prefix, per_minute_micros,
			per_unit_micros, setup_micros, first_increment_s, next_increment_s) VALUES
		('$METER_CARD', 'USD', 'inbound_call',  '',   8333,  0,    0,   6,  6),
		('$METER_CARD', 'USD', 'outbound_call', '',   12345, 0,    7,   30, 6),
		('$METER_CARD', 'USD', 'outbound_call', '44', 20000, 0,    150, 1,  1),
		('$METER_CARD', 'USD', 'sms_received',  '',   0,     1000, 3,   60, 60),
		('$METER_CARD', 'USD', 'sms_sent',      '',   0,     4100, 0,   60, 60);
		INSERT INTO account_rate_cards (account_id, rate_card_id, effective_from)
		VALUES ('$METER_ACCOUNT', '$METER_CARD', '2020-01-01')" >/dev/null
	METER_BASE=
	for _ in $(seq 20); do
		b=$((1000000 + (RANDOM * 32768 + RANDOM) % 8990 * 1000))
		if [ "$(chaos_sql "SELECT count(*) FROM numbers WHERE e164 BETWEEN '+1628$b' AND '+1628$((b + 999))'")" = 0 ]; then
			METER_BASE=$b
			break
		fi
	done
	[ -n "$METER_BASE" ] || fail "no free block of 1,000 numbers"
	chaos_sql "INSERT INTO numbers (e164, country, area_code, number_type, status, account_id, carrier)
		SELECT '+1628' || g, 'US', '628', 'local', 'active', '$METER_ACCOUNT', 'sandbox'
		FROM generate_series($METER_BASE, $METER_BASE + 999) g" >/dev/null
	# The unknown numbers +16289999900..99 are never in a block above.
	[ "$(chaos_sql "SELECT count(*) FROM numbers WHERE e164 BETWEEN '+16289999900' AND '+16289999999'")" = 0 ] ||
		fail "the unknown numbers +16289999900.. are in use"
}

meter_rated() { chaos_sql "SELECT coalesce(sum(records), 0) FROM usage_daily WHERE account_id = '$METER_ACCOUNT'"; }

meter_flood() { # N CARRIER OUT [RESEND UNKNOWN POISON_EVERY TAG]
	awk -v n="$1" -v carrier="$2" -v out="$3" -v resend="${4:-0}" -v unknown="${5:-0}" \
		-v poison_every="${6:-0}" -v tag="${7:-none}" -v base="$METER_BASE" \
		-v hour="$(date -u -d '-2 hours' +%Y-%m-%dT%H)" '
	function ceil_div(a, b) { return int((a + b - 1) / b) }
	function billable(d, first, incr) { return d <= first ? first : first + ceil_div(d - first, incr) * incr }
	function call_cost(d, pm, setup, first, incr) { return d == 0 ? 0 : setup + ceil_div(pm * billable(d, first, incr), 60) }
	function head(type, subject, t) {
		return sprintf("{\"specversion\":\"1.0\",\"id\":\"019ab6c2-0000-7000-8000-%012d\",\"source\":\"/voxlink/carriers\",\"type\":\"%s\",\"time\":\"%s\",\"subject\":\"%s\",\"datacontenttype\":\"application/json\",\"accountid\":null,\"data\":", msgs, type, t, subject)
	}
	function cdr(id, type, from, to, t, dur, seg) {
		return sprintf("{\"carrier\":\"%s\",\"id\":\"%s\",\"type\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"started_at\":\"%s\",\"received_via\":\"api\",\"duration_s\":%d,\"segments\":%d}}", carrier, id, type, from, to, t, dur, seg)
	}
	function stamp(i) { return sprintf("%s:%02d:%02d.%03dZ", hour, int(i / 60000) % 60, int(i / 1000) % 60, i % 1000) }
	function emit(i, id, num, type, from, to, dur, seg,    t) {
		t = stamp(i)
		printf "%s|%s%s\n", num, head("vox.cdr.received", num, t), cdr(id, type, from, to, t, dur, seg)
		msgs++
	}
	function poison(i, k,    num, t) {
		num = "+1628" (base + i % 1000); t = stamp(i)
		if (k == 0) printf "%s|chaos poison %s %d: not JSON {\n", num, tag, i
		else if (k == 1) printf "%s|chaos poison %s %d: a NUL %c byte in UTF-8 text\n", num, tag, i, 0
		else if (k == 4) printf "%s|{\"chaos\":\"%s %d\",\"bytes\":\"\377\376 not UTF-8\"}\n", num, tag, i
		else if (k == 2) printf "%s|%s{\"carrier\":\"%s\",\"id\":\"p-%d\",\"chaos\":\"%s\"}}\n", num, head("vox.chaos.no_such_type", num, t), carrier, i, tag
		else printf "%s|%s%s\n", num, head("vox.cdr.received", num, t), cdr("p-" i, "fax", num, "+12125550100", t, 60, 0)
		msgs++; poisoned++
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
		every = unknown > 0 ? int(n / unknown) : 0; u = 0; resent = 0; poisoned = 0
		for (i = 0; i < n; i++) {
			sum += record(i)
			emit(i, "c-" i, R_num, R_t, R_from, R_to, R_d, R_s)
			if (resend && i >= 5000 && i % 100 == 0) {
				record(i - 5000)
				emit(i, "c-" (i - 5000), R_num, R_t, R_from, R_to, R_d, R_s)
				resent++
			}
			if (every && i % every == 37 && u < unknown) {
				num = "+16289999" (900 + u)
				emit(i, "u-" u, num, "inbound_call", "+12125550100", num, 60, 0)
				u++
			}
			if (poison_every && i % poison_every == poison_every - 1)
				poison(i, poisoned % 5)
		}
		printf "%.0f %d %d %d %d\n", sum, msgs, resent, u, poisoned > out
	}'
}
