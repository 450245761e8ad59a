#!/usr/bin/env bash
# bench/housekeep.sh: how fast `voxctl housekeep` prunes the inbox while a
# writer inserts into it, and what the pruning costs that writer
# (docs/HOUSEKEEPING.md "Figures"). Runs on the stack the environment
# points at (VOX_PG_URL, VOX_BIN_DIR; e.g. through a vtest runner's
# `shell`); its rows use topic vox.cmd.bench-housekeep and are removed.
#
#   BENCH_ROWS (100000)   old inbox rows to prune
#   BENCH_SECONDS (20)    how long the writer runs in each phase
#   BENCH_CLIENTS (2)     writer connections (pgbench -c)
#   VOX_HOUSEKEEP_BATCH   passed on to voxctl (its default: 5000)
#
# Phase 1: the writer alone (its baseline latency). Phase 2: the same
# writer while housekeep deletes BENCH_ROWS rows 20 days old. Prints rows/s
# of the pass and the writer's transactions, mean, p99 and max latency in
# both phases, and in the pass's own time window.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${BENCH_ROWS:-100000}
seconds=${BENCH_SECONDS:-20}
clients=${BENCH_CLIENTS:-2}
bin=${VOX_BIN_DIR:-$root/build/rel/bin}
: "${VOX_PG_URL:?VOX_PG_URL is not set (eval \"\$(ops/stack env)\")}"
topic=vox.cmd.bench-housekeep
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -qX "$VOX_PG_URL" -c "DELETE FROM inbox WHERE topic = '"'$topic'"'" >/dev/null' EXIT

cat >"$work/writer.sql" <<EOF
INSERT INTO inbox (consumer, message_id, topic, kafka_partition, kafka_offset)
VALUES ('bench-writer', gen_random_uuid()::text, '$topic', 0, 1);
EOF

# pgbench's per-transaction log: field 3 is the latency in microseconds,
# fields 5 and 6 when the transaction ended (s, us); with FROM and TO (us
# since the epoch) only the transactions that ended between them.
latency() {
	cat "$1"/pgbench_log.* | awk -v from="${2:-0}" -v to="${3:-0}" '
		{ t = $5 * 1000000 + $6 }
		to == 0 || (t >= from && t <= to) { print $3 }' | sort -n | awk '
		{ v[NR] = $1; s += $1 }
		END { printf "%d tx, mean %.2f ms, p99 %.2f ms, max %.2f ms",
			NR, s / NR / 1000, v[int(NR * 0.99)] / 1000, v[NR] / 1000 }'
}

writer() {
	mkdir -p "$1"
	(cd "$1" && pgbench -n -c "$clients" -T "$seconds" -l -f "$work/writer.sql" \
		"$VOX_PG_URL" >/dev/null 2>&1)
}

psql -qX "$VOX_PG_URL" -c "DELETE FROM inbox WHERE topic = '$topic'" >/dev/null
writer "$work/alone"
echo "writer alone:           $(latency "$work/alone")"

psql -qX "$VOX_PG_URL" -c "INSERT INTO inbox (consumer, message_id, topic, processed_at)
	SELECT 'bench-old', 'old-' || i, '$topic', now() - interval '20 days'
	FROM generate_series(1, $rows) i" -c "VACUUM ANALYZE inbox" >/dev/null
writer "$work/pruned" &
wpid=$!
sleep 2
from=$(date +%s%6N)
line=$("$bin/voxctl" housekeep | grep '^inbox: ')
to=$(date +%s%6N)
wait "$wpid"
echo "housekeep: $line"
left=$(psql -qAtX "$VOX_PG_URL" -c "SELECT count(*) FROM inbox WHERE consumer = 'bench-old'")
echo "writer, whole run:      $(latency "$work/pruned")"
echo "writer during the pass: $(latency "$work/pruned" "$from" "$to")"
# "inbox: N rows deleted, B batches, T ms"
echo "$line" | awk -v left="$left" '{
	printf "inbox pruned at %.0f rows/s (%d rows in %d ms, %d batches; %d old rows left)\n",
		$2 / ($7 / 1000), $2, $7, $5, left }'
