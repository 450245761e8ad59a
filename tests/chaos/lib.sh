# shellcheck shell=bash
# tests/chaos/lib.sh: what every chaos scenario sources (tests/chaos/<n>_*.sh).
# The runner (tests/chaos/run) has brought the stack up and exported
# VOX_BIN_DIR, VOX_ROOT, VOX_PG_URL, VOX_KAFKA_BROKERS, VOX_REDIS_URL and
# VOX_CHAOS_LOGS. A scenario:
#
#   source "$(dirname "$0")/lib.sh"
#   chaos_init worker_kill            # name used in figures and log names
#   chaos_start metering metering     # or: chaos_start m2 VOX_WORKER_INSTANCE_ID=x metering
#   chaos_kill metering; chaos_start metering metering
#   chaos_wait 60 "all rated" rated_all   # polls a command until it succeeds
#   figure records "$n"               # -> "chaos: worker_kill: records=1000000"
#   chaos_check "no duplicates" [ "$dup" -eq 0 ]   # records a failure, goes on
#   chaos_done                        # PASS/FAIL line, exit 0 or 1
#
# Processes
#   chaos_start NAME [VAR=VALUE...] PROGRAM [ARGS...]
#       PROGRAM from $VOX_BIN_DIR unless it contains a '/'; background, its
#       output appended to $VOX_CHAOS_LOGS/<scenario>-NAME.log, pid in
#       CHAOS_PID[NAME]. NAME may be started again once stopped or killed.
#   chaos_stop NAME [SECONDS]   SIGTERM, SIGKILL after SECONDS (10); waits for it.
#   chaos_kill NAME             SIGKILL; waits for it. Returns 0 if it was running.
#   chaos_alive NAME            true while it runs.
#   chaos_on_exit 'COMMAND'     run COMMAND at exit (e.g. 'ops/stack start kafka-2').
#   At exit (pass, fail, error, ^C) every process still running is stopped
#   (SIGTERM, then SIGKILL after 10 s) and the on-exit commands run.
#   Workers: give each a VOX_WORKER_INSTANCE_ID (static membership) so a
#   restart gets its partitions back at once, and VOX_WORKER_METRICS_PORT=0.
#   One id per process running at a time: a second process with the same id
#   fences the first (fatal). A stopped static member stays in its group
#   for the session timeout (10 s), so reuse ids across scenarios
#   (chaos-metering, chaos-provisioning... as scenarios 1 and 4 do).
# Waiting
#   chaos_wait SECONDS DESC COMMAND [ARGS...]
#       runs COMMAND every 0.2 s until it succeeds; on timeout prints
#       "DESC: not after SECONDS s" to stderr and returns 1.
# Data
#   chaos_sql SQL               psql -qAt, stops on error; prints rows, '|' between columns.
#   chaos_topic_end TOPIC       sum of the partitions' end offsets (kcat).
#   chaos_lag GROUP [TOPIC]     the group's lag summed over partitions (of TOPIC only
#                               if given), from Kafka's own ConsumerGroupCommand
#                               (a JVM start, ~2-3 s: call it once in a while, not
#                               in a tight loop). Partitions without a committed
#                               offset count their whole log. Prints an integer;
#                               fails (prints nothing) if the group is not known.
#   chaos_committed GROUP TOPIC "PARTITION OFFSET" lines: the group's committed
#                               offsets of TOPIC (-1: none yet); same JVM cost.
#   chaos_dlq_count TOPIC.dlq [REASON]   messages on a dead-letter topic (whose
#                               vox-dlq-reason is REASON if given).
#   chaos_now                   seconds since the epoch with 3 decimals.
# Results
#   figure KEY VALUE            prints "chaos: <scenario>: KEY=VALUE" (stdout).
#   note TEXT                   progress line on stderr, "chaos: <scenario>: TEXT".
#   chaos_check DESC COMMAND... runs COMMAND; if it fails, "FAIL DESC" is
#                               printed and remembered; returns 0 either way.
#   chaos_done                  figure wall_s; exits 1 if a check failed, else 0.
#   pass / fail MESSAGE         end the scenario now: exit 0 / exit 1.
#
# Only bash, psql, kcat and the Kafka jars that ops/stack already fetched.

: "${VOX_BIN_DIR:?run through tests/chaos/run (make chaos)}" "${VOX_PG_URL:?}" "${VOX_KAFKA_BROKERS:?}"
VOX_CHAOS_LOGS=${VOX_CHAOS_LOGS:-${TMPDIR:-/tmp}/vox-chaos-logs}
mkdir -p "$VOX_CHAOS_LOGS"

CHAOS_NAME=${CHAOS_NAME:-$(basename "$0" .sh)}
CHAOS_T0=0
CHAOS_FAILED=0
declare -A CHAOS_PID=()
CHAOS_EXIT_HOOKS=()

chaos_now() { date +%s.%3N; }
note() { printf 'chaos: %s: %s\n' "$CHAOS_NAME" "$*" >&2; }
figure() { printf 'chaos: %s: %s=%s\n' "$CHAOS_NAME" "$1" "$2"; }

chaos_init() { # NAME
	CHAOS_NAME=$1
	CHAOS_T0=$(chaos_now)
	trap chaos_cleanup EXIT
	trap 'exit 130' INT TERM
}

chaos_on_exit() { CHAOS_EXIT_HOOKS+=("$1"); }

chaos_start() { # NAME [VAR=VALUE...] PROGRAM [ARGS...]
	local name=$1 envs=() prog
	shift
	while [ $# -gt 0 ] && [[ $1 == [A-Za-z_]*=* ]]; do
		envs+=("$1")
		shift
	done
	prog=$1
	shift
	[[ $prog == */* ]] || prog=$VOX_BIN_DIR/$prog
	if chaos_alive "$name"; then
		note "chaos_start: $name is already running (pid ${CHAOS_PID[$name]})"
		return 1
	fi
	env "${envs[@]}" "$prog" "$@" >>"$VOX_CHAOS_LOGS/$CHAOS_NAME-$name.log" 2>&1 &
	CHAOS_PID[$name]=$!
}

chaos_alive() { # NAME
	local pid=${CHAOS_PID[$1]:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

chaos_kill() { # NAME
	local pid=${CHAOS_PID[$1]:-}
	[ -n "$pid" ] || return 1
	unset "CHAOS_PID[$1]"
	if ! kill -KILL "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null || true
		return 1
	fi
	wait "$pid" 2>/dev/null || true
	return 0
}

chaos_stop() { # NAME [SECONDS]
	local pid=${CHAOS_PID[$1]:-} limit=${2:-10} i
	[ -n "$pid" ] || return 0
	unset "CHAOS_PID[$1]"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < limit * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	return 0
}

chaos_cleanup() {
	local rc=$? name hook
	trap - EXIT INT TERM
	for name in "${!CHAOS_PID[@]}"; do kill -TERM "${CHAOS_PID[$name]}" 2>/dev/null || true; done
	for name in "${!CHAOS_PID[@]}"; do chaos_stop "$name" 10; done
	for hook in "${CHAOS_EXIT_HOOKS[@]}"; do eval "$hook" || true; done
	exit "$rc"
}

chaos_wait() { # SECONDS DESC COMMAND [ARGS...]
	local limit=$1 desc=$2 end
	shift 2
	end=$(($(date +%s) + limit))
	until "$@"; do
		if [ "$(date +%s)" -ge "$end" ]; then
			note "$desc: not after $limit s"
			return 1
		fi
		sleep 0.2
	done
}

chaos_sql() { psql -qAt -v ON_ERROR_STOP=1 "$VOX_PG_URL" -c "$1"; }

chaos_topic_end() { # TOPIC
	local topic=$1 parts=() p
	mapfile -t parts < <(kcat -b "$VOX_KAFKA_BROKERS" -L -t "$topic" 2>/dev/null |
		sed -nE 's/^ +partition ([0-9]+),.*/\1/p')
	[ "${#parts[@]}" -gt 0 ] || {
		echo 0
		return
	}
	local args=()
	for p in "${parts[@]}"; do args+=(-t "$topic:$p:-1"); done
	kcat -b "$VOX_KAFKA_BROKERS" -Q "${args[@]}" 2>/dev/null |
		awk '/ offset /{s += $NF} END {print s + 0}'
}

chaos_kafka_libs() {
	local d
	for d in "${VOX_CACHE_DIR:-${HOME:-/root}/.cache/voxlink}"/kafka-*-libs; do
		[ -d "$d" ] && printf '%s\n' "$d" && return 0
	done
	note "no Kafka jars under ${VOX_CACHE_DIR:-~/.cache/voxlink} (ops/stack up fetches them)"
	return 1
}

chaos_group_describe() { # GROUP: Kafka's table of the group's partitions
	local libs
	libs=$(chaos_kafka_libs) || return 1
	java -Xmx128m -Dlog4j2.configurationFile="$VOX_ROOT/ops/kafka/log4j2.xml" \
		-Dkafka.logs.dir="$VOX_CHAOS_LOGS" -cp "$libs/*" \
		org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
		--bootstrap-server "$VOX_KAFKA_BROKERS" --describe --group "$1" 2>/dev/null
}

chaos_committed() { # GROUP TOPIC
	chaos_group_describe "$1" | awk -v topic="$2" '
		$1 == "GROUP" { for (i = 1; i <= NF; i++) col[$i] = i; seen = 1; next }
		seen && NF >= col["CURRENT-OFFSET"] && $col["TOPIC"] == topic {
			o = $col["CURRENT-OFFSET"]
			print $col["PARTITION"], (o ~ /^[0-9]+$/ ? o : -1)
		}
		END { if (!seen) exit 1 }'
}

chaos_lag() { # GROUP [TOPIC]
	chaos_group_describe "$1" |
		awk -v topic="${2:-}" '
			$1 == "GROUP" { for (i = 1; i <= NF; i++) col[$i] = i; seen = 1; next }
			seen && NF >= col["LAG"] && (topic == "" || $col["TOPIC"] == topic) {
				lag = $col["LAG"]
				if (lag ~ /^[0-9]+$/) s += lag
				else if ($col["LOG-END-OFFSET"] ~ /^[0-9]+$/) s += $col["LOG-END-OFFSET"]
			}
			END { if (!seen) exit 1; print s + 0 }'
}

chaos_dlq_count() { # DLQ_TOPIC [REASON]
	local n
	n=$(chaos_topic_end "$1")
	[ "$n" -gt 0 ] || {
		echo 0
		return
	}
	if [ -z "${2:-}" ]; then
		echo "$n"
		return
	fi
	kcat -b "$VOX_KAFKA_BROKERS" -C -t "$1" -o beginning -e -q -f '%h\n' 2>/dev/null |
		grep -c "vox-dlq-reason=$2\(,\|\$\)" || true
}

chaos_check() { # DESC COMMAND [ARGS...]
	local desc=$1
	shift
	if ! "$@"; then
		printf 'chaos: %s: FAIL %s\n' "$CHAOS_NAME" "$desc"
		CHAOS_FAILED=$((CHAOS_FAILED + 1))
	fi
	return 0
}

chaos_wall() { awk -v a="$CHAOS_T0" -v b="$(chaos_now)" 'BEGIN { printf "%.1f", b - a }'; }

chaos_done() {
	figure wall_s "$(chaos_wall)"
	if [ "$CHAOS_FAILED" -gt 0 ]; then
		printf 'chaos: %s: FAIL (%d checks failed)\n' "$CHAOS_NAME" "$CHAOS_FAILED"
		exit 1
	fi
	printf 'chaos: %s: PASS\n' "$CHAOS_NAME"
	exit 0
}

pass() {
	figure wall_s "$(chaos_wall)"
	printf 'chaos: %s: PASS%s\n' "$CHAOS_NAME" "${1:+ ($1)}"
	exit 0
}

fail() {
	figure wall_s "$(chaos_wall)"
	printf 'chaos: %s: FAIL %s\n' "$CHAOS_NAME" "$*"
	exit 1
}
