#!/usr/bin/env bash
# tools/capacity: its arithmetic on examples worked out here by hand from the
# formulas of docs/SCALING.md §2 (with the per-unit figures of its table),
# partitions that only grow, bad arguments refused with exit 2, and the
# worked example in docs/SCALING.md equal to what the tool prints.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok   $1"; }
bad() {
	echo "FAIL $1"
	fail=1
}
# DESCRIPTION COMMAND...: ok when the command succeeds
holds() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
# PATTERN TEXT: a line of TEXT matches (or none does); called through holds
# shellcheck disable=SC2317
has() { grep -q "$1" <<<"$2"; }
# shellcheck disable=SC2317
lacks() { ! grep -q "$1" <<<"$2"; }
# FIELD-MATCH WANT TSV DESCRIPTION: the row whose first fields are FIELD-MATCH
# (tab-separated) has WANT as the rest of its fields.
row() {
	local got
	got=$(awk -F'\t' -v key="$1" 'index($0, key "\t") == 1 { print substr($0, length(key) + 2) }' <<<"$3")
	if [ "$got" = "$2" ]; then ok "$4: $1 = $2"; else bad "$4: $1 = '$got', want '$2'"; fi
}

# A manifest of our own, so the test does not move when ops/topics does.
cat >"$tmp/topics" <<'EOF'
# name  partitions  retention_ms  cleanup
vox.cmd.provisioning   6   604800000  delete
vox.cdr.raw            24  604800000  delete
vox.events             6   604800000  delete
EOF

# 1. 10,000 commands/s and 100,000,000 CDRs a day, the defaults (utilisation
#    0.6, peak 3, growth 2, at least 2 replicas, 3 brokers):
#    CDRs at peak   = 1e8 / 86400 * 3                          = 3472.222
#    provisioning   = max(2, ceil(10000 / 8586 / 0.6 = 1.94))  = 2
#    partitions     = max(6, round6(2 * 2))                    = 6
#    metering       = max(2, ceil(3472.2 / 28000 / 0.6 = 0.21)) = 2; vox.cdr.raw stays 24
#    postgres busy  = (10000 * (21 + 145) + 3472.222 * 35) / 1e6 = 1.782; / 0.6 = 2.969
#    kafka busy     = (10000 * 17 + 3472.222 * 2) / 1e6 + 3 * 0.3 = 1.077; / 0.6 = 1.795
#    ingress busy   = 10000 * 45 / 1e6 = 0.450; / 0.6 = 0.750; processes max(2, ceil(10000 / 14550 / 0.6)) = 2
out=$(tools/capacity --topics "$tmp/topics" --format tsv --commands 10000 --cdrs-per-day 100000000)
rc=$?
holds "example 1 exits 0 (got $rc)" [ "$rc" -eq 0 ]
row $'load\tcdrs' $'3472.222\tCDRs/s rated (peak)' "$out" "example 1"
row $'replicas\tprovisioning' 2 "$out" "example 1"
row $'partitions\tvox.cmd.provisioning' $'6\t6\t2' "$out" "example 1"
row $'replicas\tmetering' 2 "$out" "example 1"
row $'partitions\tvox.cdr.raw' $'24\t24\t2' "$out" "example 1 (never fewer than now)"
row $'cores\tpostgres' $'1.782\t2.969' "$out" "example 1"
row $'cores\tkafka' $'1.077\t1.795' "$out" "example 1"
row $'cores\tingress' $'0.450\t0.750' "$out" "example 1"
row $'cores\tprovisioning' $'0.370\t0.617' "$out" "example 1"
row $'ingress_processes\tingress' 2 "$out" "example 1"
holds "example 1 lists the ingress's CDR cost as not counted" has $'^missing\tingress CPU per unit of \'cdrs\'$' "$out"

# 2. Growth: 40,000 commands/s and 300 orders/s, one broker, utilisation 0.5:
#    provisioning = ceil((40000 / 8586 + 300 / 263) / 0.5) = ceil(11.599) = 12
#    partitions   = max(6, round6(12 * 2 = 24)) = 24 (grown from 6)
#    postgres     = (40000 * 166 + 300 * 2333) / 1e6 = 7.340; / 0.5 = 14.680
#    kafka        = (40000 * 17 + 300 * 2100) / 1e6 + 0.3 = 1.610; / 0.5 = 3.220
#    ingress      = (40000 * 45 + 300 * 633) / 1e6 = 1.990; / 0.5 = 3.980; processes ceil(40300 / 14550 / 0.5) = 6
out=$(tools/capacity --topics "$tmp/topics" --format tsv --commands 40000 --orders 300 \
	--brokers 1 --utilisation 0.5)
row $'replicas\tprovisioning' 12 "$out" "example 2"
row $'partitions\tvox.cmd.provisioning' $'24\t6\t12' "$out" "example 2 (grown)"
row $'cores\tpostgres' $'7.340\t14.680' "$out" "example 2"
row $'cores\tkafka' $'1.610\t3.220' "$out" "example 2"
row $'cores\tingress' $'1.990\t3.980' "$out" "example 2"
row $'ingress_processes\tingress' 6 "$out" "example 2"
holds "example 2: one broker, no replication cost left out" lacks $'^missing\tKafka' "$out"
holds "example 2 lists Redis per order as not counted" has $'^missing\tredis CPU per unit of \'orders\'$' "$out"

# 3. Redis past one thread: 20,000 cold searches/s = 20000 * 145 / 1e6 / 0.6 = 4.83 cores.
out=$(tools/capacity --topics "$tmp/topics" --format tsv --search-cold 20000)
holds "example 3 warns about Redis's one thread" has $'^warning\tredis\t' "$out"

# 4. Bad arguments: exit 2 and a message naming the option.
refuse() { # description args...
	local what=$1 msg
	shift
	msg=$(tools/capacity --topics "$tmp/topics" "$@" 2>&1 >/dev/null)
	local rc=$?
	if [ "$rc" -eq 2 ] && [ -n "$msg" ]; then ok "refused: $what"; else bad "$what: exit $rc ($msg)"; fi
}
refuse "negative rate" --commands -5
refuse "rate not a number" --commands lots
refuse "utilisation 0" --utilisation 0
refuse "utilisation over 1" --utilisation 1.5
refuse "growth under 1" --growth 0.5
refuse "no brokers" --brokers 0
refuse "unknown option" --bogus 1
holds "--help exits 0" eval "tools/capacity --help >/dev/null"

# 5. docs/SCALING.md's blocks of the tool's output are what the tool prints
#    for their command (against ops/topics of this tree, as the document says).
mapfile -t cmds < <(sed -n 's/^<!-- capacity-example: \(.*\) -->$/\1/p' docs/SCALING.md)
holds "docs/SCALING.md has its two blocks of tool output" [ "${#cmds[@]}" -eq 2 ]
for cmd in "${cmds[@]}"; do
	case $cmd in
	"tools/capacity "*) ;;
	*)
		bad "docs/SCALING.md: '$cmd' is not a tools/capacity command"
		continue
		;;
	esac
	doc=$(awk -v m="<!-- capacity-example: $cmd -->" '
		on && /^<!-- \/capacity-example -->/ { exit }
		on && !/^```/ { print }
		$0 == m { on = 1 }' docs/SCALING.md)
	# shellcheck disable=SC2086 # the marker's command line, split into words
	now=$($cmd)
	if [ -n "$doc" ] && [ "$doc" = "$now" ]; then
		ok "docs/SCALING.md's block matches '$cmd'"
	else
		bad "docs/SCALING.md's block differs from '$cmd':"
		diff <(echo "$doc") <(echo "$now")
	fi
done

[ "$fail" -eq 0 ] && echo "capacity: all ok"
exit "$fail"
