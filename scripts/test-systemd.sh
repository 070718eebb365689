#!/usr/bin/env bash
# Opt-in integration test of the .deb under a real systemd: boots a Debian
# bookworm container with systemd-nspawn, installs the package, and checks
# that the hardened unit starts the agent (its local API answers), that
# systemd restarts it after kill -9, that hot reload works inside the
# sandbox, that it stops in time, and that remove/purge clean up.
#
# Usage: scripts/test-systemd.sh DIST_DIR      (make test-systemd; root)
#
# The container's root file system is built once with debootstrap (about a
# minute) and kept in $PWBI_NSPAWN_ROOT (default
# /var/tmp/pwbi-nspawn-bookworm); the package is installed and purged in it
# each run. $PWBI_DEBIAN_MIRROR overrides the mirror (default: the host's).
set -euo pipefail

dist=$(cd "${1:?usage: test-systemd.sh DIST_DIR}" && pwd)
root=${PWBI_NSPAWN_ROOT:-/var/tmp/pwbi-nspawn-bookworm}
machine=pwbi-systemd-test
deb=$(ls "$dist"/pwbi-agent_*_amd64.deb)

if [ "$(id -u)" != 0 ]; then
	echo "test-systemd: needs root (systemd-nspawn, debootstrap)" >&2
	exit 1
fi

step() { printf '\n== %s\n' "$*"; }
fail() {
	echo "FAIL: $*" >&2
	if [ -n "${leader:-}" ]; then
		echo "--- journal of pwbi-agent in the container:" >&2
		in_ct journalctl -u pwbi-agent --no-pager -n 60 >&2 || true
	fi
	exit 1
}

step "tools"
missing=""
for p in systemd-container debootstrap; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

if [ ! -x "$root/lib/systemd/systemd" ]; then
	step "building the container root in $root (debootstrap, once)"
	mirror=${PWBI_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
	mirror=${mirror:-http://deb.debian.org/debian}
	rm -rf "$root.tmp"
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$root.tmp" "$mirror"
	mv "$root.tmp" "$root"
fi

# A clean slate: no package or account from an earlier, interrupted run.
chroot "$root" sh -c 'dpkg -P pwbi-agent >/dev/null 2>&1; userdel pwbi-agent 2>/dev/null; groupdel pwbi-agent 2>/dev/null; true'
mkdir -p "$root/opt/test"
cp "$deb" "$root/opt/test/pwbi-agent.deb"

step "booting the container"
log=$(mktemp)
systemd-nspawn -D "$root" -b --register=no --keep-unit --private-network -M "$machine" >"$log" 2>&1 &
nspawn=$!
leader=""
cleanup() {
	if [ -n "$leader" ]; then
		in_ct systemctl poweroff >/dev/null 2>&1 || true
	fi
	for _ in $(seq 1 30); do
		kill -0 "$nspawn" 2>/dev/null || break
		sleep 1
	done
	kill "$nspawn" 2>/dev/null || true
	wait "$nspawn" 2>/dev/null || true
	rm -f "$log"
}
trap cleanup EXIT

# The container's init is the child of systemd-nspawn.
for _ in $(seq 1 100); do
	leader=$(pgrep -P "$nspawn" | head -1 || true)
	[ -n "$leader" ] && break
	sleep 0.1
done
[ -n "$leader" ] || fail "no container init process; nspawn said: $(cat "$log")"
in_ct() {
	nsenter -t "$leader" -m -u -i -n -p -C --root --wd=/ \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}
# Until its system bus is up, systemctl cannot even ask.
state=""
for _ in $(seq 1 120); do
	state=$(in_ct timeout 60 systemctl is-system-running --wait 2>/dev/null || true)
	[ -n "$state" ] && break
	sleep 0.5
done
echo "container system state: $state"
case "$state" in running | degraded) ;; *) fail "container did not boot: $state" ;; esac

# status_code: the HTTP status of GET /v1/status inside the container
# (bash's /dev/tcp: the minimal root has no curl).
status_code() {
	in_ct bash -c 'exec 3<>/dev/tcp/127.0.0.1/8687 || exit 1
		printf "GET /v1/status HTTP/1.0\r\nHost: 127.0.0.1:8687\r\n\r\n" >&3
		head -1 <&3 | cut -d" " -f2' 2>/dev/null || true
}
wait_api() {
	for _ in $(seq 1 ${1:-100}); do
		[ "$(status_code)" = 200 ] && return 0
		sleep 0.2
	done
	return 1
}
main_pid() { in_ct systemctl show -p MainPID --value pwbi-agent; }

step "dpkg -i (postinst enables and starts the service)"
in_ct dpkg -i /opt/test/pwbi-agent.deb
[ "$(in_ct systemctl is-enabled pwbi-agent)" = enabled ] || fail "not enabled"
wait_api 100 || fail "/v1/status does not answer 200 after install"
[ "$(in_ct systemctl is-active pwbi-agent)" = active ] || fail "not active"
pid=$(main_pid)
user=$(in_ct stat -c %U "/proc/$pid")
[ "$user" = pwbi-agent ] || fail "the agent runs as $user"
echo "active, pid $pid, user $user, /v1/status 200"
in_ct systemctl show pwbi-agent -p Restart -p RestartUSec -p TimeoutStopUSec -p User -p StateDirectory -p ProtectSystem
in_ct ls -l /var/lib/pwbi-agent /var/lib/pwbi-agent/logs
in_ct test -s /var/lib/pwbi-agent/agent.db || fail "no database in /var/lib/pwbi-agent"
in_ct test -s /var/lib/pwbi-agent/logs/agent.log || fail "no log file in /var/lib/pwbi-agent/logs"

step "kill -9: systemd restarts the agent"
t0=$(date +%s.%N)
in_ct sh -c "kill -9 $pid" 2>/dev/null
for _ in $(seq 1 150); do
	npid=$(main_pid)
	if [ "$npid" != 0 ] && [ "$npid" != "$pid" ] && [ "$(status_code)" = 200 ]; then
		break
	fi
	sleep 0.1
done
t1=$(date +%s.%N)
[ "$npid" != 0 ] && [ "$npid" != "$pid" ] || fail "not restarted after kill -9"
[ "$(status_code)" = 200 ] || fail "/v1/status does not answer after the restart"
echo "restarted: pid $pid -> $npid, answering again after $(awk "BEGIN{printf \"%.1f\", $t1-$t0}") s, NRestarts=$(in_ct systemctl show -p NRestarts --value pwbi-agent)"

step "hot reload inside the sandbox (config read-only, inotify on /etc/pwbi-agent)"
in_ct sed -i 's/^log_level = "info"/log_level = "debug"/' /etc/pwbi-agent/config.toml
for _ in $(seq 1 50); do
	in_ct journalctl -u pwbi-agent --no-pager | grep -q "Configuration applied.*generation=2" && break
	sleep 0.2
done
in_ct journalctl -u pwbi-agent --no-pager | grep "Configuration applied.*generation=2" || fail "the edit was not applied"

step "no sandbox denials in the journal"
if in_ct journalctl -u pwbi-agent --no-pager | grep -iE "permission denied|operation not permitted|read-only file system|bad system call"; then
	fail "the sandbox got in the agent's way"
fi
echo "none"

step "systemctl stop"
t0=$(date +%s.%N)
in_ct systemctl stop pwbi-agent
t1=$(date +%s.%N)
[ "$(in_ct systemctl is-active pwbi-agent || true)" = inactive ] || fail "not inactive after stop"
echo "stopped in $(awk "BEGIN{printf \"%.2f\", $t1-$t0}") s"
in_ct journalctl -u pwbi-agent --no-pager -n 5

step "dpkg -r and dpkg -P"
in_ct systemctl start pwbi-agent
wait_api 100 || fail "did not start again"
in_ct dpkg -r pwbi-agent
[ "$(in_ct systemctl is-active pwbi-agent || true)" != active ] || fail "still running after dpkg -r"
in_ct test ! -e /etc/systemd/system/multi-user.target.wants/pwbi-agent.service || fail "still enabled after dpkg -r"
in_ct test -e /etc/pwbi-agent/config.toml || fail "dpkg -r removed the config"
in_ct dpkg -P pwbi-agent
for p in /etc/pwbi-agent /var/lib/pwbi-agent /lib/systemd/system/pwbi-agent.service /usr/bin/pwbi-agent; do
	in_ct test ! -e "$p" || fail "$p left after purge"
done
echo "removed and purged; account kept: $(in_ct getent passwd pwbi-agent)"
in_ct userdel pwbi-agent
in_ct groupdel pwbi-agent 2>/dev/null || true

printf '\nPASS: test-systemd\n'
