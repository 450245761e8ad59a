# shellcheck shell=bash
# tests/chaos/ingress_lib.sh: ingress load and the "nothing accepted is lost"
# checks of scenarios 2, 3 and 5, on top of lib.sh (source lib.sh first).
#
#   ing_setup                       ports, the load generator, a work dir
#   ing_start_ingress / ing_start_provisioning
#                                   the programs (lib.sh's chaos_start), ready
#   ing_account NAME                "account_id api_key" of a new account
#   ing_numbers KEY N               N numbers bought for KEY's account (ids)
#   ing_offsets TOPIC FILE          the topic's end offsets now ("p offset")
#   ing_load NAME RATE SECONDS REQUESTS [CONNS]
#                                   bench/openloop in the background: every
#                                   answer in $ING_WORK/NAME.log; its start
#                                   time (epoch s) in ING_LOAD_T0[NAME]
#   ing_load_wait NAME              waits for it; its summary line on stderr
#   ing_verify NAME TOPIC OFFSETS BOUND_S
#                                   the checks of one load, figures prefixed
#                                   NAME_: requests, accepted (202s), non-202
#                                   by status, 202s whose command is not on
#                                   TOPIC after OFFSETS (must be 0), 202s
#                                   terminal within BOUND_S of the load's end
#                                   (must be all), failed ones and failed
#                                   without a reason (must be 0)
#   ing_failed_reasons FILE         the failed operations of FILE by error code
#   ing_errors_after NAME T         answers that were not 2xx, given
#                                   after epoch time T: "count last_s"
#
# The load generator is bench/openloop (-f: a request file, one
# "METHOD PATH KEY [BODY]" a line, used in turn; -o: one line per answer,
# "<ms after start> <status> <id> <latency ms>", after "# start <epoch s>").

ING_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
declare -A ING_LOAD_PID=() ING_LOAD_T0=() ING_LOAD_T1=()

ing_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ing_setup() {
	ING_PORT=$(ing_free_port)
	ING_WORKER_PORT=$(ing_free_port)
	ING_URL=http://127.0.0.1:$ING_PORT
	ING_WORK=$VOX_CHAOS_LOGS/$CHAOS_NAME.work
	rm -rf "$ING_WORK"
	mkdir -p "$ING_WORK"
	ING_OPENLOOP=${VOX_BENCH_DIR:-$(dirname "$VOX_BIN_DIR")/bench}/openloop
	if [ ! -x "$ING_OPENLOOP" ] || [ "$ING_DIR/bench/openloop.c" -nt "$ING_OPENLOOP" ]; then
		make -C "$ING_DIR" --no-print-directory -s "${ING_OPENLOOP#"$ING_DIR"/}" >&2 ||
			fail "cannot build bench/openloop"
	fi
	chaos_on_exit ing_stop_loads
}

ing_stop_loads() {
	local name
	for name in "${!ING_LOAD_PID[@]}"; do kill -TERM "${ING_LOAD_PID[$name]}" 2>/dev/null || true; done
}

ing_ready() { curl -fs -o /dev/null "$ING_URL/readyz"; }

ing_start_ingress() { # [VAR=VALUE...]
	chaos_start ingress VOX_INGRESS_PORT="$ING_PORT" VOX_LOG_LEVEL=warn \
		VOX_RATE_COMMAND=10000000 VOX_RATE_READ=10000000 "$@" ingress
	chaos_wait 30 "the ingress is ready" ing_ready || fail "the ingress did not get ready"
}

# Static group membership (lib.sh): the id scenarios 1 and 4 use too, so a
# worker of the scenario before, stopped, is not waited for.
# shellcheck disable=SC2120 # optional VAR=VALUE arguments
ing_start_provisioning() { # [VAR=VALUE...]
	chaos_start provisioning VOX_WORKER_METRICS_PORT="$ING_WORKER_PORT" VOX_LOG_LEVEL=warn \
		VOX_WORKER_INSTANCE_ID=chaos-provisioning "$@" provisioning
}

# The provisioning worker restarted if it has exited, as its supervisor
# (systemd, Kubernetes, make run) would: a worker exits 1 when librdkafka
# declares its consumer unusable (e.g. fenced). Counted in ING_RESTARTS.
ING_RESTARTS=0
ing_keep_provisioning() {
	chaos_alive provisioning && return 0
	note "the provisioning worker exited: starting it again ($(tail -n 1 "$VOX_CHAOS_LOGS/$CHAOS_NAME-provisioning.log" | cut -c1-300))"
	unset "CHAOS_PID[provisioning]"
	ING_RESTARTS=$((ING_RESTARTS + 1))
	# shellcheck disable=SC2119 # no extra settings
	ing_start_provisioning
}

# A first canary through ingress, Kafka and the worker (it has joined its
# group and has its partitions).
ing_pipeline_ready() { # KEY
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $1" \
		-H 'Prefer: wait=30' "$ING_URL/v1/canary")
	[ "$code" = 200 ] || fail "the first canary did not complete (HTTP $code)"
}

ing_account() { # NAME -> "account_id api_key"
	"$VOX_BIN_DIR/voxctl" account create --name "$1" --json |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["account_id"], d["api_key"])'
}

# A JSON API call with Prefer: wait; the body on stdout, 2xx or fail.
ing_api() { # KEY METHOD PATH [BODY]
	local out code
	out=$(curl -s -w '\n%{http_code}' -X "$2" "$ING_URL$3" -H "Authorization: Bearer $1" \
		-H 'Prefer: wait=20' ${4:+-H 'Content-Type: application/json' -d "$4"})
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	[[ $code == 2* ]] || {
		note "$2 $3: HTTP $code $out"
		return 1
	}
	printf '%s\n' "$out"
}

# N numbers bought for KEY's account (reserve 10 at a time, order): their ids.
ing_numbers() { # KEY N
	local key=$1 n=$2 got=0 phones res rid order
	local search="/v1/available-numbers?country=US&area_code=212&limit=100"
	mapfile -t phones < <(ing_api "$key" GET "$search" |
		python3 -c 'import json,sys; [print(x["phone_number"]) for x in json.load(sys.stdin)["data"]]')
	[ "${#phones[@]}" -ge "$n" ] || {
		note "only ${#phones[@]} numbers to buy, $n needed"
		return 1
	}
	while [ "$got" -lt "$n" ]; do
		local batch=("${phones[@]:got:10}")
		batch=("${batch[@]:0:$((n - got < 10 ? n - got : 10))}")
		res=$(ing_api "$key" POST /v1/reservations \
			"$(printf '%s\n' "${batch[@]}" | python3 -c 'import json,sys; print(json.dumps({"phone_numbers": sys.stdin.read().split()}))')") ||
			return 1
		rid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["reservation_id"])' <<<"$res") || {
			note "reservation: $res"
			return 1
		}
		order=$(ing_api "$key" POST /v1/orders "{\"reservation_id\":\"$rid\"}") || return 1
		[ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' <<<"$order")" = completed ] || {
			note "order: $order"
			return 1
		}
		got=$((got + ${#batch[@]}))
	done
	ing_api "$key" GET "/v1/numbers?limit=100" |
		python3 -c 'import json,sys; [print(x["id"]) for x in json.load(sys.stdin)["data"]]'
}

ing_offsets() { # TOPIC FILE
	local topic=$1 parts=() p args=()
	mapfile -t parts < <(kcat -b "$VOX_KAFKA_BROKERS" -L -t "$topic" 2>/dev/null |
		sed -nE 's/^ +partition ([0-9]+),.*/\1/p')
	[ "${#parts[@]}" -gt 0 ] || fail "topic $topic has no partitions"
	for p in "${parts[@]}"; do args+=(-t "$topic:$p:-1"); done
	kcat -b "$VOX_KAFKA_BROKERS" -Q "${args[@]}" 2>/dev/null |
		awk '/ offset /{gsub(/[][]/, "", $2); print $2, $NF}' >"$2"
	[ -s "$2" ] || fail "cannot read the end offsets of $topic"
}

ing_load() { # NAME RATE SECONDS REQUESTS [CONNS]
	local name=$1
	# shellcheck disable=SC2034 # read by the scenarios
	ING_LOAD_T0[$name]=$(chaos_now)
	"$ING_OPENLOOP" -p "$ING_PORT" -r "$2" -d "$3" -w 0 -c "${5:-2048}" -f "$4" \
		-o "$ING_WORK/$name.log" >"$ING_WORK/$name.out" 2>&1 &
	ING_LOAD_PID[$name]=$!
}

ing_load_wait() { # NAME
	local name=$1
	wait "${ING_LOAD_PID[$name]}" || fail "the load generator $name failed: $(cat "$ING_WORK/$name.out")"
	unset "ING_LOAD_PID[$name]"
	ING_LOAD_T1[$name]=$(chaos_now)
	note "$name: $(tail -n 1 "$ING_WORK/$name.out")"
}

# Answers that were not 2xx, answered after epoch time T: "count last_s"
# (last_s: when the last one was answered, seconds after T; 0: none).
ing_errors_after() { # NAME T
	awk -v t="$2" '
		$1 == "#" { if ($2 == "start") t0 = $3; next }
		{ a = t0 + ($1 + $4) / 1000 }
		$2 !~ /^2/ && a >= t { n++; s = a - t; if (s > last) last = s }
		END { printf "%d %.1f\n", n, last }' "$ING_WORK/$1.log"
}

# The operation ids of the commands on TOPIC after the offsets in FILE.
ing_kafka_ids() { # TOPIC FILE OUT
	local p off
	: >"$3.raw"
	while read -r p off; do
		kcat -b "$VOX_KAFKA_BROKERS" -C -t "$1" -p "$p" -o "$off" -e -q -f '%s\n' 2>/dev/null |
			grep -oE '"operation_id": ?"[0-9a-f-]{36}"' | grep -oE '[0-9a-f-]{36}' >>"$3.raw" || true
	done <"$2"
	sort -u "$3.raw" >"$3"
	rm -f "$3.raw"
}

# The states of the operations in FILE (one id a line):
# "total terminal failed failed_without_reason no_row max_s" (max_s: the
# longest time from acceptance to the terminal state).
ing_op_states() { # FILE
	psql -qAt -v ON_ERROR_STOP=1 "$VOX_PG_URL" <<SQL | tr '|' ' '
CREATE TEMP TABLE ing_ids (id uuid);
\\copy ing_ids FROM '$1'
SELECT count(*),
       count(*) FILTER (WHERE o.status IN ('completed', 'failed')),
       count(*) FILTER (WHERE o.status = 'failed'),
       count(*) FILTER (WHERE o.status = 'failed' AND coalesce(o.error_code, '') = ''),
       count(*) FILTER (WHERE o.id IS NULL),
       round(coalesce(max(extract(epoch FROM coalesce(o.completed_at, o.updated_at) - o.created_at))
             FILTER (WHERE o.status IN ('completed', 'failed')), 0)::numeric, 1)
FROM ing_ids i LEFT JOIN operations o USING (id);
SQL
}

# The failed ones among the operations in FILE: "code:count ..." or "none".
ing_failed_reasons() { # FILE
	local r
	r=$(psql -qAt -v ON_ERROR_STOP=1 "$VOX_PG_URL" <<SQL | tr '|' ':' | paste -sd, -
CREATE TEMP TABLE ing_ids (id uuid);
\\copy ing_ids FROM '$1'
SELECT coalesce(o.error_code, 'no_reason'), count(*)
FROM ing_ids i JOIN operations o USING (id) WHERE o.status = 'failed' GROUP BY 1 ORDER BY 1;
SQL
	)
	echo "${r:-none}"
}

ing_all_terminal() { # FILE
	local total terminal rest
	ing_keep_provisioning
	read -r total terminal rest <<<"$(ing_op_states "$1")"
	[ "$total" = "$terminal" ]
}

ing_verify() { # NAME TOPIC OFFSETS BOUND_S
	local name=$1 w=$ING_WORK/$1 requests accepted statuses missing t_end waited
	local total terminal failed noreason norow max_s
	requests=$(grep -vc '^#' "$w.log")
	awk '$2 == 202 && $3 != "-" {print $3}' "$w.log" | sort -u >"$w.accepted"
	accepted=$(wc -l <"$w.accepted")
	statuses=$(awk '$1 != "#" && $2 != 202 {n[$2]++} END {for (s in n) {printf "%s%s:%d", sep, (s == 0 ? "no_answer" : s), n[s]; sep = ","}}' "$w.log")
	figure "${name}_requests" "$requests"
	figure "${name}_accepted" "$accepted"
	figure "${name}_not_accepted" "${statuses:-none}"
	# every 202 must reach a terminal state
	t_end=${ING_LOAD_T1[$name]}
	chaos_wait "$4" "$name: every 202 terminal" ing_all_terminal "$w.accepted" || true
	waited=$(awk -v a="$t_end" -v b="$(chaos_now)" 'BEGIN {printf "%.1f", b - a}')
	# and be a command Kafka kept
	ing_kafka_ids "$2" "$3" "$w.kafka"
	missing=$(comm -23 "$w.accepted" "$w.kafka" | tee "$w.missing" | wc -l)
	figure "${name}_missing_in_kafka" "$missing"
	chaos_check "$name: every 202's command is in $2 ($missing missing: $w.missing)" [ "$missing" -eq 0 ]
	read -r total terminal failed noreason norow max_s <<<"$(ing_op_states "$w.accepted")"
	figure "${name}_ops_terminal" "$terminal"
	figure "${name}_ops_failed" "$failed"
	figure "${name}_max_accepted_to_terminal_s" "$max_s"
	figure "${name}_all_terminal_after_load_s" "$waited"
	chaos_check "$name: every 202 terminal within $4 s of the load's end ($terminal of $total, $norow without a row)" \
		[ "$terminal" -eq "$total" ]
	chaos_check "$name: every failed operation has a reason ($noreason without)" [ "$noreason" -eq 0 ]
	chaos_check "$name: some commands were accepted" [ "$accepted" -gt 0 ]
}
