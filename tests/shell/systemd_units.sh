#!/usr/bin/env bash
# deploy/systemd: every unit passes `systemd-analyze verify` (offline: no
# systemd needs to run here), with every program a template instance can
# start, and no warning at all (verify exits 0 on unknown keys and bad values,
# so any output is a failure). Then what verify cannot know: every daemon in
# the bin dir has a unit, the long-running ones restart, stop with a timeout
# at least their drain, are hardened and memory-capped, read the env file, and
# every setting the example env file sets is one a program knows (--help).
# No systemd-analyze is a failure, not a skip (ops/install-deps installs it).
# ok() always succeeds, so `test && ok ... || bad ...` is an if-then-else here.
# shellcheck disable=SC2015
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
bin=${VOX_BIN_DIR:-build/rel/bin}
units=deploy/systemd
workers=(provisioning porting metering invoicing notifications)
daemons=(ingress "${workers[@]}" exporter)
fail=0
ok() { echo "ok   $1"; }
bad() {
	echo "FAIL $1"
	fail=1
}

if ! command -v systemd-analyze >/dev/null; then
	bad "systemd-analyze is missing: ops/install-deps installs the Debian package systemd"
	exit 1
fi
for b in "${daemons[@]}" voxctl; do
	[ -x "$bin/$b" ] || bad "$bin/$b is missing (make all): verify checks that ExecStart= can run"
done
[ "$fail" -eq 0 ] || exit 1
bin=$(cd "$bin" && pwd) # make test passes an absolute VOX_BIN_DIR, by hand it is relative

# The units as installed, but with /opt/voxlink pointing at this build, so
# verify's check that each ExecStart= is executable means something.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/opt/voxlink/bin" "$tmp/units"
for b in "${daemons[@]}" voxctl; do
	ln -s "$bin/$b" "$tmp/opt/voxlink/bin/$b"
done
cp -R "$units"/*.service "$units"/*.target "$units"/*.timer "$units"/*.d "$tmp/units/"
sed -i "s|/opt/voxlink|$tmp/opt/voxlink|g" "$tmp"/units/*.service "$tmp"/units/*.target \
	"$tmp"/units/*.d/*.conf
targets=()
for f in "$tmp"/units/*.service "$tmp"/units/*.target "$tmp"/units/*.timer; do
	case $f in *@.service) continue ;; esac
	targets+=("$f")
done
for w in "${workers[@]}"; do
	ln -s voxlink-worker@.service "$tmp/units/voxlink-worker@$w.service"
	targets+=("$tmp/units/voxlink-worker@$w.service")
done
for u in "${targets[@]}"; do
	name=$(basename "$u")
	out=$(cd "$tmp/units" && systemd-analyze verify "./$name" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
		ok "verify $name"
	else
		bad "verify $name (exit $rc): $out"
	fi
done
# The check itself: a unit with a mistake must not pass.
printf '[Service]\nExecStart=/bin/true\nTimeoutStopSec=soon\n' >"$tmp/units/broken.service"
out=$(cd "$tmp/units" && systemd-analyze verify ./broken.service 2>&1)
[ -n "$out" ] && ok "verify reports a bad value (the check can fail)" ||
	bad "verify said nothing about TimeoutStopSec=soon: this check proves nothing"

# KEY FILE: the value of the last KEY= line (drop-ins of the unit win).
value() {
	local f=$1 key=$2 v
	v=$(grep -h "^$key=" "$f" "$f.d"/*.conf 2>/dev/null | tail -n 1)
	echo "${v#*=}"
}
# Seconds of a systemd time span as these units write it: 30s, 2min, 10min, 3min.
seconds() {
	case $1 in
	*min) echo $((${1%min} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo -1 ;;
	esac
}
# UNIT DRAIN-SECONDS: what a long-running unit must have.
daemon_unit() {
	local u=$1 drain=$2 f=$units/$1 stop
	[ -f "$f" ] || {
		bad "$u missing"
		return
	}
	[ "$(value "$f" Restart)" = always ] && ok "$u: Restart=always" || bad "$u: Restart is not always"
	[ -n "$(value "$f" RestartSec)" ] && ok "$u: RestartSec set" || bad "$u: no RestartSec (restarts at once)"
	[ "$(value "$f" RestartPreventExitStatus)" = 2 ] && ok "$u: a bad setting (exit 2) is not restarted" ||
		bad "$u: exit 2 (bad setting) is restarted forever"
	stop=$(seconds "$(value "$f" TimeoutStopSec)")
	[ "$stop" -ge "$drain" ] && ok "$u: TimeoutStopSec ${stop}s >= drain ${drain}s" ||
		bad "$u: TimeoutStopSec ${stop}s < its drain ${drain}s"
	grep -q '^WantedBy=voxlink.target$' "$f" && ok "$u: part of voxlink.target" || bad "$u: not WantedBy=voxlink.target"
	grep -q '^PartOf=voxlink.target$' "$f" && ok "$u: stops with voxlink.target" || bad "$u: not PartOf=voxlink.target"
}
# Drains (seconds): the ingress 5 (producer) + 5 (HTTP); a worker its message in hand (3 carrier
# attempts of 3 s, or a payment's 3 of 10 s) + 10 (producer flush); the exporter S3 PUTs of 30 s.
daemon_unit voxlink-ingress.service 10
daemon_unit voxlink-worker@.service 40
daemon_unit voxlink-exporter.service 60
[ "$(seconds "$(value "$units/voxlink-worker@.service" TimeoutStopSec)")" -lt \
	"$(seconds "$(value "$units/voxlink-worker@invoicing.service" TimeoutStopSec)")" ] &&
	ok "invoicing waits longer for its batch" || bad "invoicing's drop-in does not raise TimeoutStopSec"
grep -q '^ExecStart=/opt/voxlink/bin/%i$' "$units/voxlink-worker@.service" &&
	ok "the worker template runs the program its instance names" || bad "the worker template's ExecStart"

# Every unit: the env file, hardening, a memory cap.
for f in "$units"/*.service; do
	u=$(basename "$f")
	missing=()
	for want in EnvironmentFile=/etc/voxlink/voxlink.env DynamicUser=yes NoNewPrivileges=yes \
		ProtectSystem=strict PrivateTmp=yes ProtectHome=yes CapabilityBoundingSet= \
		SystemCallFilter=@system-service; do
		grep -qx "$want" "$f" || missing+=("$want")
	done
	[ -n "$(value "$f" MemoryMax)" ] || missing+=(MemoryMax=)
	if [ "${#missing[@]}" -eq 0 ]; then ok "$u: env file, hardening, MemoryMax"; else bad "$u: missing ${missing[*]}"; fi
done
for u in voxlink-ingress.service voxlink-worker@.service voxlink-housekeep.service; do
	grep -q '^Requires=voxlink-migrate.service$' "$units/$u" && grep -q '^After=.*voxlink-migrate.service' "$units/$u" &&
		ok "$u: after the migration" || bad "$u: does not require and follow voxlink-migrate.service"
done
grep -q '^ExecStart=/opt/voxlink/bin/voxctl migrate$' "$units/voxlink-migrate.service" &&
	grep -q '^Type=oneshot$' "$units/voxlink-migrate.service" && ok "migrate: a oneshot of voxctl migrate" ||
	bad "voxlink-migrate.service is not a oneshot running voxctl migrate"
grep -q '^ExecStart=/opt/voxlink/bin/voxctl housekeep$' "$units/voxlink-housekeep.service" &&
	grep -q '^OnCalendar=' "$units/voxlink-housekeep.timer" && ok "housekeeping: a timer and its pass" ||
	bad "housekeeping service or timer"

# Every long-running program of the bin dir has its unit (cdr-import and voxctl are commands).
for b in "$bin"/*; do
	p=$(basename "$b")
	case $p in
	cdr-import | voxctl) continue ;;
	ingress | exporter) [ -f "$units/voxlink-$p.service" ] ;;
	*) [[ " ${workers[*]} " == *" $p "* ]] ;;
	esac && ok "unit for $p" || bad "no unit for $p (a new program? add it to deploy/systemd)"
done

# The example env file sets only settings that some program has.
known=$(for b in "${daemons[@]}" voxctl; do "$bin/$b" --help 2>/dev/null; done |
	awk '$1 ~ /^VOX_[A-Z0-9_]+$/ { print $1 }' | sort -u)
while IFS= read -r var; do
	grep -qx "$var" <<<"$known" && ok "env example: $var is a setting" ||
		bad "env example: $var is no program's setting (docs/CONFIG.md)"
done < <(sed -n 's/^\(VOX_[A-Z0-9_]*\)=.*/\1/p' "$units/voxlink.env.example")
# ... and none that only tests may set.
for var in VOX_TEST_CLOCK_SKEW_S VOX_INGRESS_BENCH VOX_BILLING_DAY_S VOX_NOTIFY_TIME_SCALE; do
	grep -q "^$var=" "$units/voxlink.env.example" && bad "env example sets $var" || ok "env example leaves $var alone"
done

# ... with values each program takes: started with the example's settings (as
# systemd would pass them: the rest of the line, spaces kept), none may stop
# with exit 2 (a bad setting). The placeholders that must be replaced (the
# encryption key, the JWT key file) get real ones here; ports are 0 so that
# nothing of another stack on this machine is touched. The programs then try
# to reach the example's hosts and are stopped after a few seconds.
mapfile -t example < <(grep -E '^VOX_[A-Z0-9_]+=' "$units/voxlink.env.example")
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null |
	openssl pkey -pubout -out "$tmp/jwt.pem" 2>/dev/null
overrides=("VOX_ENCRYPTION_KEY=1:$(openssl rand -hex 32)" "VOX_JWT_KEY_FILE=$tmp/jwt.pem"
	VOX_INGRESS_PORT=0 VOX_WORKER_METRICS_PORT=0 VOX_EXPORT_METRICS_PORT=0
	"VOX_OPENAPI_FILE=$PWD/schemas/openapi.yaml" "VOX_NOTIFY_TEMPLATES=$PWD/workers/notifications/templates")
for b in "${daemons[@]}"; do # all at once: the 2 s each waits are not added up
	(
		timeout -s KILL 2 env -i PATH="$PATH" "${example[@]}" "${overrides[@]}" "$bin/$b" \
			>"$tmp/$b.out" 2>&1
		echo $? >"$tmp/$b.rc"
	) 2>/dev/null &
done
wait
for b in "${daemons[@]}"; do
	rc=$(cat "$tmp/$b.rc")
	if [ "$rc" -eq 2 ]; then
		bad "$b refuses the example's settings: $(tail -n 3 "$tmp/$b.out")"
	else
		ok "$b takes the example's settings (stopped: exit $rc)"
	fi
done

[ "$fail" -eq 0 ] && echo "systemd units: all ok"
exit "$fail"
