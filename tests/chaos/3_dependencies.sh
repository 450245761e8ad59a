#!/usr/bin/env bash
# Chaos scenario 3: each dependency fails in turn during ingress load:
# PostgreSQL restarted (stop, start), Redis stopped for a while, the carrier
# sandbox stopped for a while. The load mixes canaries with number
# activations (a carrier call each: PATCH /v2/phone_numbers), so the carrier
# outage matters. For each fault the checks of scenario 2: every 202 is a
# command Kafka kept (on vox.cmd.provisioning after the offsets noted before
# the load) and reaches a terminal state (completed, or failed with a
# reason: carrier_unavailable while the carrier is away) within a bound;
# other answers (503) are allowed and counted.
#
# Settings: VOX_CHAOS_DEPS_RATE (200 requests/s, one in five an
# activation), VOX_CHAOS_DEPS_LOAD_S (40 s per fault), VOX_CHAOS_DEPS_FAULT_AT_S
# (8), VOX_CHAOS_DEPS_DOWN_S (10: how long Redis and the carrier are away),
# VOX_CHAOS_DEPS_PG_DOWN_S (5: PostgreSQL's), VOX_CHAOS_DEPS_FAULTS ("postgres
# redis carrier"), VOX_CHAOS_TERMINAL_S (120).
# shellcheck disable=SC2119 # ing_start_* take optional VAR=VALUE arguments, not the script's
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/chaos/lib.sh
source tests/chaos/lib.sh
# shellcheck source=tests/chaos/ingress_lib.sh
source tests/chaos/ingress_lib.sh

chaos_init dependencies
ing_setup
rate=${VOX_CHAOS_DEPS_RATE:-200}
load_s=${VOX_CHAOS_DEPS_LOAD_S:-40}
fault_at=${VOX_CHAOS_DEPS_FAULT_AT_S:-8}
down_s=${VOX_CHAOS_DEPS_DOWN_S:-10}
faults=${VOX_CHAOS_DEPS_FAULTS:-postgres redis carrier}
topic=vox.cmd.provisioning
numbers=10

read -r _ key <<<"$(ing_account "chaos dependencies")"
[ -n "${key:-}" ] || fail "cannot create an account"
ing_start_ingress
ing_start_provisioning
ing_pipeline_ready "$key"
ing_numbers "$key" "$numbers" >"$ING_WORK/numbers" || fail "cannot buy $numbers numbers"
[ "$(wc -l <"$ING_WORK/numbers")" -ge "$numbers" ] || fail "bought $(wc -l <"$ING_WORK/numbers") numbers, not $numbers"
# per number: one activation (to one of two destinations in turn) and four canaries
i=0
while read -r id; do
	printf 'POST /v1/numbers/%s/activate %s {"forward_to":"+1212555%04d"}\n' "$id" "$key" $((i % 2))
	for _ in 1 2 3 4; do printf 'POST /v1/canary %s\n' "$key"; done
	i=$((i + 1))
done <"$ING_WORK/numbers" >"$ING_WORK/requests"
figure rate "$rate"
figure activations_share 0.2

# One fault during one load: NAME, then the commands that make and end it.
fault() { # NAME DOWN_S
	local name=$1 down=$2 t_fault t_back n_err last_err
	ing_offsets "$topic" "$ING_WORK/$name.offsets"
	ing_load "$name" "$rate" "$load_s" "$ING_WORK/requests"
	sleep "$fault_at"
	t_fault=$(chaos_now)
	ops/stack stop "$name" >&2 || fail "ops/stack stop $name failed"
	chaos_on_exit "ops/stack start $name >/dev/null 2>&1"
	sleep "$down"
	ops/stack start "$name" >&2 || fail "ops/stack start $name failed"
	t_back=$(chaos_now)
	figure "${name}_down_s" "$(awk -v a="$t_fault" -v b="$t_back" 'BEGIN {printf "%.1f", b - a}')"
	ing_load_wait "$name"
	read -r n_err last_err <<<"$(ing_errors_after "$name" "$t_fault")"
	figure "${name}_errors_after_fault" "$n_err"
	# the last non-2xx answer, seconds after the service was back (0: none after)
	figure "${name}_recover_s" "$(awk -v a="$t_fault" -v b="$t_back" -v l="$last_err" \
		'BEGIN {r = a + l - b; printf "%.1f", ((l > 0 && r > 0) ? r : 0)}')"
	ing_verify "$name" "$topic" "$ING_WORK/$name.offsets" "${VOX_CHAOS_TERMINAL_S:-120}"
	figure "${name}_failed_by_reason" "$(ing_failed_reasons "$ING_WORK/$name.accepted")"
	chaos_check "$name: the ingress is still running" chaos_alive ingress
	figure "${name}_provisioning_restarts" "$ING_RESTARTS"
	chaos_check "$name: the provisioning worker is running" chaos_alive provisioning
}

for f in $faults; do
	case $f in
	postgres) fault postgres "${VOX_CHAOS_DEPS_PG_DOWN_S:-5}" ;;
	redis | carrier) fault "$f" "$down_s" ;;
	*) fail "unknown fault $f (postgres, redis, carrier)" ;;
	esac
done
chaos_done
