#!/usr/bin/env bash
# Chaos scenario 2: SIGKILL one Kafka broker during ingress load, then bring
# it back. Every 202 must be a command Kafka kept (its operation id is on
# vox.cmd.provisioning after the offsets noted before the load) and must
# reach a terminal state (completed, or failed with a reason) within a
# bound; answers other than 202 during the fault (503 bus_unavailable) are
# allowed and counted.
#
# On the cluster (VOX_KAFKA_BROKERS lists several brokers) the broker killed
# is the leader of vox.cmd.provisioning's partition 0, brought back with
# `ops/stack start kafka-<i>`; on one broker it is that broker (every
# command is refused while it is down).
#
# Settings: VOX_CHAOS_BROKER_RATE (300 canaries/s), VOX_CHAOS_BROKER_LOAD_S
# (60), VOX_CHAOS_BROKER_KILL_AT_S (10), VOX_CHAOS_BROKER_DOWN_S (15),
# VOX_CHAOS_TERMINAL_S (120: the bound after the load's end).
# shellcheck disable=SC2119 # ing_start_* take optional VAR=VALUE arguments, not the script's
# shellcheck disable=SC2317 # functions called through chaos_wait
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/chaos/lib.sh
source tests/chaos/lib.sh
# shellcheck source=tests/chaos/ingress_lib.sh
source tests/chaos/ingress_lib.sh

chaos_init broker_kill
ing_setup
rate=${VOX_CHAOS_BROKER_RATE:-300}
load_s=${VOX_CHAOS_BROKER_LOAD_S:-60}
kill_at=${VOX_CHAOS_BROKER_KILL_AT_S:-10}
down_s=${VOX_CHAOS_BROKER_DOWN_S:-15}
topic=vox.cmd.provisioning

# The broker to kill: "service pidfile".
victim() {
	local leader
	if [[ $VOX_KAFKA_BROKERS != *,* ]]; then
		echo "kafka $VOX_RUN_DIR/kafka/kafka.pid"
		return
	fi
	leader=$(kcat -b "$VOX_KAFKA_BROKERS" -L -t "$topic" 2>/dev/null |
		sed -nE 's/^ +partition 0, leader ([0-9]+),.*/\1/p')
	leader=${leader:-2}
	local f
	for f in "$VOX_RUN_DIR/kafka-$leader/kafka.pid" "$VOX_RUN_DIR/kafka$leader/kafka.pid" \
		"$VOX_RUN_DIR/kafka-$leader.pid"; do
		[ -f "$f" ] && {
			echo "kafka-$leader $f"
			return
		}
	done
	fail "no pid file for broker $leader under $VOX_RUN_DIR"
}

# Every partition of every topic has its full replica set in sync.
isr_full() {
	kcat -b "$VOX_KAFKA_BROKERS" -L 2>/dev/null |
		awk '/ partition [0-9]+, leader/ {
			r = $0; sub(/.*replicas: /, "", r); sub(/, isrs.*/, "", r)
			i = $0; sub(/.*isrs: /, "", i)
			if (split(r, a, ",") != split(i, b, ",")) bad++
			seen++
		}
		END { exit !(seen > 0 && bad == 0) }'
}

read -r _ key <<<"$(ing_account "chaos broker kill")"
[ -n "${key:-}" ] || fail "cannot create an account"
ing_start_ingress
ing_start_provisioning
ing_pipeline_ready "$key"
printf 'POST /v1/canary %s\n' "$key" >"$ING_WORK/requests"
ing_offsets "$topic" "$ING_WORK/offsets"
read -r svc pidfile <<<"$(victim)"
brokers=$(tr ',' '\n' <<<"$VOX_KAFKA_BROKERS" | grep -c .)
figure brokers "$brokers"
figure rate "$rate"

ing_load load "$rate" "$load_s" "$ING_WORK/requests"
sleep "$kill_at"
pid=$(cat "$pidfile")
t_kill=$(chaos_now)
kill -KILL "$pid" || fail "cannot kill $svc (pid $pid)"
chaos_on_exit "ops/stack start $svc >/dev/null 2>&1"
note "killed $svc (pid $pid) with SIGKILL"
sleep "$down_s"
t_start=$(chaos_now)
ops/stack start "$svc" >&2 || fail "ops/stack start $svc failed"
t_back=$(chaos_now)
figure broker_down_s "$(awk -v a="$t_kill" -v b="$t_back" 'BEGIN {printf "%.1f", b - a}')"
figure broker_start_s "$(awk -v a="$t_start" -v b="$t_back" 'BEGIN {printf "%.1f", b - a}')"
if [ "$brokers" -gt 1 ]; then
	chaos_wait 120 "every partition back in sync" isr_full || true
	figure isr_full_after_start_s "$(awk -v a="$t_back" -v b="$(chaos_now)" 'BEGIN {printf "%.1f", b - a}')"
	chaos_check "every partition has its full ISR again" isr_full
fi
ing_load_wait load

read -r n_err last_err <<<"$(ing_errors_after load "$t_kill")"
figure errors_after_kill "$n_err"
# how long after the kill clients were still refused (0: never)
figure recover_s "$last_err"
ing_verify load "$topic" "$ING_WORK/offsets" "${VOX_CHAOS_TERMINAL_S:-120}"
chaos_check "the ingress is still running" chaos_alive ingress
figure provisioning_restarts "$ING_RESTARTS"
chaos_check "the provisioning worker is running" chaos_alive provisioning
chaos_done
