#!/usr/bin/env bash
# `make run` keeps its processes alive (docs/STACK.md, "make run: supervised processes"):
#  1. ops/run (VOX_RUN_STACK=0 VOX_RUN_DEMO=0: only the ingress and the workers, on the test
#     stack) starts ingress, provisioning and metering; a SIGKILLed metering worker is reported by
#     name and signal, and a new one runs within 5 s; `ops/stack status` shows it running with one
#     restart; SIGINT stops everything cleanly (exit 0, every process gone).
#  2. A worker that cannot start (a bad setting: exit 2 at once) makes the supervisor give up after
#     VOX_RUN_RESTART_MAX fast deaths: it stops the others and exits 1 with a clear message.
#  3. A process that does not stop on SIGTERM (a stand-in for metering) is still waited for after
#     one SIGINT (status: stopping); a second SIGINT kills it: exit 130, nothing left.
# Isolation: a run dir of its own (the procs/ and logs/ of this test), a free ingress port, and
# workers in a consumer group of their own on a topic nobody writes, with no outbox relay: the
# shared test stack's topics and groups are not touched, and no service of the stack is stopped.
# shellcheck disable=SC2015 # `A && ok || bad`: ok always succeeds, so bad runs only when A fails
# shellcheck disable=SC2317 # functions called through wait_for and the EXIT trap
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
export VOX_BIN_DIR=${VOX_BIN_DIR:-$root/build/rel/bin}
tmp=$(mktemp -d)
sup=
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
now_ms() { date +%s%3N; }
cleanup() {
	local p
	[ -n "$sup" ] && kill -KILL "$sup" 2>/dev/null
	# whatever a failed run left behind: only the pids in this test's own state files
	while read -r p; do
		case $(cat "/proc/$p/comm" 2>/dev/null) in
		ingress | provisioning | metering | notifications | porting | invoicing | exporter | voxctl) kill -KILL "$p" 2>/dev/null ;;
		esac
	done < <(sed -n 's/^pid=//p' "$tmp"/run*/procs/*.state 2>/dev/null)
	rm -rf "$tmp"
}
trap cleanup EXIT

id=$(cat /proc/sys/kernel/random/uuid)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export VOX_RUN_STACK=0 VOX_RUN_DEMO=0 VOX_INGRESS_PORT=$port \
	VOX_WORKER_GROUP=vox.test.supervise.$id VOX_WORKER_TOPICS=vox.test.supervise.$id \
	VOX_WORKER_METRICS_PORT=0 VOX_WORKER_RELAY=false VOX_KAFKA_SESSION_TIMEOUT_MS=6000 \
	VOX_EXPORT_TOPICS=vox.test.supervise.$id VOX_EXPORT_GROUP=vox.test.supervise.export.$id VOX_EXPORT_METRICS_PORT=0

field() { sed -n "s/^$2=//p" "$VOX_RUN_DIR/procs/$1.state" 2>/dev/null; }
alive() { [ -n "$1" ] && [ -d "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }
running() { [ "$(field "$1" state)" = running ] && alive "$(field "$1" pid)"; }
# wait_for SECONDS CMD...: true as soon as CMD is
wait_for() {
	local deadline=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
all_running() { running ingress && running provisioning && running metering && running notifications && running porting && running invoicing; }
ingress_answers() { curl -fsS -m 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; }
sup_gone() { ! alive "$sup"; }
# start_run OUT: ops/run in the background, in a session of its own, with SIGINT back to its
# default (a background job of a script starts with SIGINT ignored, which bash cannot trap)
start_run() {
	mkdir -p "$VOX_RUN_DIR"
	setsid env --default-signal=INT ops/run >"$1" 2>&1 &
	sup=$!
}
# stop_run SECONDS: the exit status of ops/run, or 255 when it did not end in time
stop_run_wait() {
	local rc
	wait_for "$1" sup_gone || { echo "ops/run did not end within $1 s"; return 255; }
	wait "$sup"
	rc=$?
	sup=
	return "$rc"
}

# --- 1. SIGKILL a worker: reported and back within 5 s; SIGINT stops everything -------------
export VOX_RUN_DIR=$tmp/run1
out=$tmp/run1.out
t0=$(now_ms)
start_run "$out"
if wait_for 20 all_running && wait_for 20 ingress_answers; then
	ok "ingress, provisioning, metering, notifications, porting and invoicing running under ops/run in $(($(now_ms) - t0)) ms"
else
	bad "the processes did not come up within 20 s"
	cat "$out"
	exit 1
fi
pids=$(for n in ingress provisioning metering notifications porting invoicing; do field "$n" pid; done)
old=$(field metering pid)
t0=$(now_ms)
kill -KILL "$old"
back() { running metering && [ "$(field metering pid)" != "$old" ]; }
if wait_for 5 back; then
	ok "a new metering worker (pid $(field metering pid)) runs $(($(now_ms) - t0)) ms after SIGKILL of pid $old"
else
	bad "no new metering worker within 5 s of the SIGKILL (state: $(field metering state))"
fi
pids="$pids $(field metering pid)"
if grep -q "^\[run\] metering (pid $old) killed by SIGKILL" "$out"; then
	ok "the supervisor said: $(grep -m1 "^\[run\] metering (pid $old)" "$out")"
else
	bad "no '[run] metering (pid $old) killed by SIGKILL' line in the output"
fi
grep -q '^\[run\]   last lines of .*metering.log' "$out" && grep -q '^    | .*"service":"metering"' "$out" &&
	ok "... followed by the worker's last log lines" || bad "the worker's last log lines were not printed"
grep -q '^\[ingress\] .*"ingress listening"' "$out" && ok "the processes' logs reach the terminal, prefixed" ||
	bad "no '[ingress] ...' log line in the output"
status=$(ops/stack status 2>&1)
if grep -Eq '^  metering +running +pid [0-9]+ +up [0-9]+s +restarts 1 \(last: killed by SIGKILL' <<<"$status" &&
	grep -Eq '^  ingress +running +pid [0-9]+ .*restarts 0' <<<"$status" &&
	grep -Eq '^  provisioning +running +pid [0-9]+ .*restarts 0' <<<"$status" &&
	grep -q "^processes: supervised by make run (pid $sup)" <<<"$status"; then
	ok "ops/stack status: $(grep '^  metering' <<<"$status")"
else
	bad "ops/stack status does not show the processes as expected:"
	echo "$status"
fi
t0=$(now_ms)
kill -INT "$sup"
stop_run_wait 40
rc=$?
[ "$rc" = 0 ] && ok "SIGINT: ops/run exited 0 in $(($(now_ms) - t0)) ms" || bad "SIGINT: ops/run exit $rc, want 0"
left=
for p in $pids; do alive "$p" && left+=" $p"; done
[ -z "$left" ] && ok "every process is gone" || bad "still running after ops/run ended:$left"
grep -q '"msg":"consumer stopping: committing offsets"' "$VOX_RUN_DIR/logs/provisioning.log" &&
	ok "the workers drained (provisioning: consumer stopping: committing offsets)" ||
	bad "provisioning did not log its drain"
grep -Eq '^\[run\] metering \(pid [0-9]+\) stopped: exited with code 0' "$out" &&
	ok "the supervisor reports the clean stop (exit 0)" || bad "no 'metering ... stopped: exited with code 0'"
status=$(ops/stack status 2>&1)
grep -q '^processes: make run is not running' <<<"$status" && grep -Eq '^  metering +stopped' <<<"$status" &&
	ok "ops/stack status after the stop: metering stopped" || { bad "status after the stop:"; echo "$status"; }

# --- 2. a worker that cannot start: the supervisor gives up and stops everything ------------
export VOX_RUN_DIR=$tmp/run2
out=$tmp/run2.out
t0=$(now_ms)
VOX_RESERVATION_TTL_S=0 start_run "$out" # provisioning: out of range, exit 2
stop_run_wait 40
rc=$?
took=$(($(now_ms) - t0))
[ "$rc" = 1 ] && ok "ops/run gave up and exited 1 after $took ms" || bad "ops/run exit $rc after $took ms, want 1"
deaths=$(grep -c '^\[run\] provisioning (pid [0-9]*) exited with code 2' "$out")
[ "$deaths" = 5 ] && ok "provisioning died 5 times, each reported with its exit code 2" ||
	bad "$deaths reports of provisioning exiting with code 2, want 5"
grep -q '^    | .*VOX_RESERVATION_TTL_S' "$out" && ok "its last log lines name the bad setting" ||
	bad "provisioning's config error was not shown"
grep -q '^\[run\] provisioning died 5 times within 60s: giving up, stopping everything' "$out" &&
	grep -q '^run: gave up: provisioning kept dying (exited with code 2); everything is stopped' "$out" &&
	ok "the give-up is said: $(grep '^run: gave up' "$out")" || bad "no clear give-up message"
for n in ingress metering notifications porting; do
	if [ "$(field "$n" state)" = stopped ] && ! alive "$(field "$n" pid)"; then
		ok "$n stopped with the rest"
	else
		bad "$n: state $(field "$n" state), pid $(field "$n" pid) alive?"
	fi
done
[ "$(field provisioning state)" = "given up" ] && ok "provisioning's state: given up" ||
	bad "provisioning's state: $(field provisioning state), want given up"
status=$(ops/stack status 2>&1)
grep -Eq '^  provisioning +given up +restarts 4 \(last: exited with code 2' <<<"$status" &&
	ok "ops/stack status: $(grep '^  provisioning' <<<"$status")" || { bad "status after giving up:"; echo "$status"; }

# --- 3. a process that does not stop on SIGTERM: a second SIGINT kills it, exit 130 ---------
# (a metering that ignores SIGTERM, so that it is still "draining" when the second signal comes)
export VOX_RUN_DIR=$tmp/run3
out=$tmp/run3.out
mkdir -p "$tmp/bin"
for b in ingress provisioning notifications porting invoicing exporter voxctl; do ln -s "$VOX_BIN_DIR/$b" "$tmp/bin/$b"; done
cat >"$tmp/bin/metering" <<'EOF'
#!/usr/bin/python3
import signal, time
signal.signal(signal.SIGTERM, lambda *a: print("SIGTERM: not stopping", flush=True))
print("metering stand-in up (ignores SIGTERM)", flush=True)
while True:
    time.sleep(60)
EOF
chmod +x "$tmp/bin/metering"
VOX_BIN_DIR=$tmp/bin start_run "$out"
wait_for 20 all_running && wait_for 20 ingress_answers || bad "run 3: the processes did not come up"
pids=$(for n in ingress provisioning metering notifications porting invoicing; do field "$n" pid; done)
kill -INT "$sup"
stopping() { [ "$(field metering state)" = stopping ] && grep -q "SIGTERM: not stopping" "$VOX_RUN_DIR/logs/metering.log"; }
wait_for 5 stopping && ! sup_gone && ok "after one SIGINT the supervisor waits for metering (state: stopping)" ||
	bad "run 3: metering state $(field metering state) after one SIGINT"
status=$(ops/stack status 2>&1)
grep -Eq '^  metering +stopping +pid [0-9]+ .*restarts 0' <<<"$status" && ok "ops/stack status: $(grep '^  metering' <<<"$status")" ||
	{ bad "status while stopping:"; echo "$status"; }
t0=$(now_ms)
kill -INT "$sup"
stop_run_wait 10
rc=$?
[ "$rc" = 130 ] && grep -q '^\[run\] second signal: SIGKILL to what still runs' "$out" &&
	grep -q '^\[run\] metering (pid [0-9]*) stopped: killed by SIGKILL' "$out" &&
	ok "the second SIGINT kills it: ops/run exit 130 after $(($(now_ms) - t0)) ms" ||
	bad "second SIGINT: exit $rc, want 130, with the 'second signal' and 'metering ... killed by SIGKILL' lines"
left=
for p in $pids; do alive "$p" && left+=" $p"; done
[ -z "$left" ] && ok "every process is gone" || bad "still running after ops/run ended:$left"

if [ "$fail" != 0 ]; then
	for f in "$tmp"/run*.out; do
		echo "---- $f"
		grep -v '^\[\(ingress\|provisioning\|metering\)\]' "$f"
	done
fi
exit "$fail"
