#!/usr/bin/env bash
# Opt-in Windows checks under Wine 8 (toolchain.md §4), from a Linux machine:
#   1. the Windows binaries in DIST_DIR run (version, config check);
#   2. GOOS=windows go test -exec wine of the packages that can run there;
#   3. pwbi-tray.exe docks into an XEmbed tray on Xvfb against pwbi-agent.exe
#      running in the foreground, and turns to "agent down" when it stops
#      (screenshots in testdata/artifacts/windows/);
#   4. the MSI: install, upgrade in place with an edited config, uninstall,
#      with msiexec /qn, checking files, service registration, Run key and
#      the config that must survive.
# Wine cannot start a kardianos service (it runs services in session 1), so
# step 4 uses the test-only package `build-msi.sh -wine-test` that does not
# start the service; docs/installers.md lists what only real Windows shows.
#
# Usage: scripts/test-windows.sh DIST_DIR      (make test-windows)
# Needs wine, wine64 and the MinGW compiler (installed when run as root),
# and Xvfb, trayer, xdotool, imagemagick for step 3 (make deps).
# The Wine prefix is kept in $PWBI_WINEPREFIX (default
# /var/tmp/pwbi-wineprefix; about 700 MB, 25 s to create).
set -euo pipefail

dist=$(cd "${1:?usage: test-windows.sh DIST_DIR}" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
export WINEPREFIX=${PWBI_WINEPREFIX:-/var/tmp/pwbi-wineprefix}
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
artifacts=$repo/testdata/artifacts/windows
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wineserver -k 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
mkdir -p "$artifacts"

step "tools"
missing=""
for p in wine wine64 gcc-mingw-w64-x86-64-win32; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	[ "$(id -u)" = 0 ] || fail "missing:$missing (run as root to install them)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
wine --version

if [ ! -f "$WINEPREFIX/system.reg" ]; then
	step "creating the Wine prefix $WINEPREFIX"
	wineboot -i
	wineserver -w
fi
sys32=$WINEPREFIX/drive_c/windows/system32
if [ ! -f "$sys32/bcryptprimitives.dll" ]; then
	step "bcryptprimitives.dll shim (Go >= 1.24 needs it; Wine 8 lacks it)"
	x86_64-w64-mingw32-gcc -shared -O2 -o "$sys32/bcryptprimitives.dll" \
		"$repo/scripts/wine/bcryptprimitives.c" -lbcrypt -Wl,--kill-at
fi

# winpath turns a Unix path into the Z: path Wine programs see.
winpath() { echo "Z:$(echo "$1" | tr / '\\')"; }

step "1. Windows binaries"
agent_exe=$dist/windows-amd64/pwbi-agent.exe
tray_exe=$dist/windows-amd64/pwbi-tray.exe
want_version=$("$dist/linux-amd64/pwbi-agent" version)
got_version=$(wine "$agent_exe" version | tr -d '\r')
echo "$got_version"
[ "$got_version" = "$want_version" ] || fail "windows agent says '$got_version', linux agent '$want_version'"
sed 's/$/\r/' "$repo/config.example.toml" >"$work/config.toml"
wine "$agent_exe" config check --config "$(winpath "$work/config.toml")" | tr -d '\r' | tee "$work/check.txt"
grep -q ": OK" "$work/check.txt" || fail "config check of the CRLF example"

step "2. GOOS=windows go test -exec wine"
# agent/config is left out: its tests use t.TempDir, whose cleanup fails
# under Wine 8 (os.RemoveAll: "Invalid function"); the browser test needs
# a Windows Chromium.
(cd "$repo" && GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go test -count=1 -exec wine \
	./tray/ ./agent/service/ ./agent/localapi/ -skip 'TestDashboardInBrowser')

step "3. pwbi-tray.exe against pwbi-agent.exe on Xvfb + trayer"
if ! command -v Xvfb >/dev/null || ! command -v trayer >/dev/null; then
	echo "skipped: Xvfb/trayer missing (make deps)"
else
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mkdir -p "$work/agent"
	cat >"$work/agent/config.toml" <<EOF
version = 1
[agent]
id = "wine-test"
data_dir = "data"
[moka]
enabled = false
[local_api]
listen = "127.0.0.1:$port"
EOF
	# Xvfb picks a free display and writes its number to fd 3.
	mkfifo "$work/displayfd"
	Xvfb -displayfd 3 -screen 0 800x600x24 -nolisten tcp 3>"$work/displayfd" 2>"$work/xvfb.log" &
	pids+=("$!")
	read -r -t 20 dnum <"$work/displayfd" || fail "Xvfb did not start: $(cat "$work/xvfb.log")"
	display=:$dnum
	# Every Wine process of the prefix shares one desktop (explorer.exe),
	# created by the first one: it must already see the X display, or the
	# tray's window never appears.
	wineserver -k 2>/dev/null || true
	DISPLAY=$display wine "$agent_exe" run --config "$(winpath "$work/agent/config.toml")" >"$work/agent.log" 2>&1 &
	agent_pid=$!
	pids+=("$agent_pid")
	DISPLAY=$display trayer --edge top --align right --widthtype pixel --width 200 --heighttype pixel \
		--height 40 --transparent false --expand false >/dev/null 2>&1 &
	pids+=("$!")
	for _ in $(seq 1 100); do
		curl -fs "http://127.0.0.1:$port/v1/status" >/dev/null 2>&1 && break
		sleep 0.2
	done
	curl -fs "http://127.0.0.1:$port/v1/status" >/dev/null || fail "pwbi-agent.exe does not answer; $(cat "$work/agent.log")"
	DISPLAY=$display wine "$tray_exe" --api "127.0.0.1:$port" --poll 1s --log "$(winpath "$work/tray.log")" >/dev/null 2>&1 &
	pids+=("$!")
	for _ in $(seq 1 100); do
		grep -q 'msg="Tray state" icon=ok' "$work/tray.log" 2>/dev/null && break
		sleep 0.2
	done
	grep -q 'msg="Tray state" icon=ok' "$work/tray.log" || fail "tray.exe did not show ok; $(cat "$work/tray.log")"
	sleep 2
	DISPLAY=$display xwininfo -root -tree | grep -i "pwbi\|systray\|tray" | head -5 || true
	DISPLAY=$display import -window root "$artifacts/1-wine-tray-ok.png"
	# Right click on the icon (trayer's right end) opens the Win32 menu.
	DISPLAY=$display xdotool mousemove 784 20 click 3
	sleep 1.5
	DISPLAY=$display import -window root "$artifacts/2-wine-tray-menu.png"
	DISPLAY=$display xdotool key Escape
	kill "$agent_pid"
	wait "$agent_pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		grep -q 'msg="Tray state" icon=down' "$work/tray.log" && break
		sleep 0.2
	done
	grep -q 'msg="Tray state" icon=down' "$work/tray.log" || fail "tray.exe did not show agent down; $(cat "$work/tray.log")"
	sleep 2
	DISPLAY=$display import -window root "$artifacts/3-wine-tray-down.png"
	echo "tray log:"
	cat "$work/tray.log"
	echo "screenshots: $artifacts"
	wineserver -k 2>/dev/null || true
fi

step "4. MSI install, upgrade, uninstall (msiexec /qn)"
"$repo/scripts/build-msi.sh" -wine-test "$dist/windows-amd64" "$work/msi1" 1.0.0 >/dev/null
"$repo/scripts/build-msi.sh" -wine-test "$dist/windows-amd64" "$work/msi2" 1.0.1 >/dev/null
msi1=$(winpath "$work/msi1/pwbi-agent-1.0.0-x64-winetest.msi")
msi2=$(winpath "$work/msi2/pwbi-agent-1.0.1-x64-winetest.msi")
pf="$WINEPREFIX/drive_c/Program Files/PWBI/Agent"
pd="$WINEPREFIX/drive_c/ProgramData/PWBI/Agent"
svc='HKLM\SYSTEM\CurrentControlSet\Services\pwbi-agent'
run_key='HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
reg_q() { wine reg query "$@" 2>/dev/null | tr -d '\r'; }
products() { reg_q 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s | grep -c "DisplayName.*PWBI Edge Agent" || true; }

# Start from nothing (an earlier interrupted run may have left it).
wine msiexec /x "$msi2" /qn >/dev/null 2>&1 || true
wine msiexec /x "$msi1" /qn >/dev/null 2>&1 || true
rm -rf "$WINEPREFIX/drive_c/ProgramData/PWBI"

wine msiexec /i "$msi1" /qn /l*v "$(winpath "$work/install1.log")" || fail "install 1.0.0: $(tail -20 "$work/install1.log" | tr -d '\0')"
for f in pwbi-agent.exe pwbi-tray.exe config.example.toml; do
	[ -f "$pf/$f" ] || fail "$f not installed"
done
[ -f "$pd/config.toml" ] || fail "config.toml not created in ProgramData"
[ -d "$pd/data/logs" ] || fail "logs folder not created"
reg_q "$svc" | tee "$work/svc.txt"
grep -q 'ImagePath.*"C:\\Program Files\\PWBI\\Agent\\pwbi-agent.exe" run --config "C:\\ProgramData\\PWBI\\Agent\\config.toml"' "$work/svc.txt" ||
	grep -q 'ImagePath.*pwbi-agent.exe.* run --config "C:\\ProgramData\\PWBI\\Agent\\config.toml"' "$work/svc.txt" || fail "service ImagePath"
grep -q 'Start.*0x2' "$work/svc.txt" || fail "service is not automatic"
grep -q 'ObjectName.*LocalSystem' "$work/svc.txt" || fail "service account"
reg_q "$run_key" /v "PWBI Agent Tray" | tee "$work/run.txt"
grep -q 'C:\\Program Files\\PWBI\\Agent\\pwbi-tray.exe' "$work/run.txt" || fail "Run key"
reg_q 'HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\pwbi-agent' | grep -q EventMessageFile || fail "Event Log source"
echo "MsiConfigureServices under Wine: $(grep -a -i 'MsiConfigureServices' "$work/install1.log" | tr -d '\0' | head -2 | tr '\n' ' ')"
echo "service values: $(grep -iE 'DelayedAutostart|FailureActions' "$work/svc.txt" | tr '\n' ' ' || true)"
# The installed agent, as the service would run it (but in the foreground).
wine "$pf/pwbi-agent.exe" version | tr -d '\r'
wine "$pf/pwbi-agent.exe" config check | tr -d '\r' | grep -q 'config.toml: OK' || fail "installed config check"
[ "$(products)" = 1 ] || fail "$(products) products registered after install"

# Upgrade in place: an edited config survives, one product remains.
printf '# edited by test-windows\r\n' >>"$pd/config.toml"
wine msiexec /i "$msi2" /qn /l*v "$(winpath "$work/install2.log")" || fail "upgrade to 1.0.1: $(tail -20 "$work/install2.log" | tr -d '\0')"
grep -q "edited by test-windows" "$pd/config.toml" || fail "the upgrade replaced the edited config"
[ "$(products)" = 1 ] || fail "$(products) products registered after the upgrade"
reg_q 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s | grep -q "DisplayVersion.*1.0.1" || fail "upgrade did not register 1.0.1"
[ -f "$pf/pwbi-agent.exe" ] || fail "agent missing after the upgrade"
echo "upgraded to 1.0.1, config kept"

# Uninstall: programs, service and Run key go; the config stays.
wine msiexec /x "$msi2" /qn /l*v "$(winpath "$work/remove.log")" || fail "uninstall: $(tail -20 "$work/remove.log" | tr -d '\0')"
[ ! -e "$pf/pwbi-agent.exe" ] || fail "pwbi-agent.exe left after uninstall"
[ ! -e "$pf/pwbi-tray.exe" ] || fail "pwbi-tray.exe left after uninstall"
if reg_q "$svc" | grep -q ImagePath; then fail "service still registered"; fi
if reg_q "$run_key" | grep -q "PWBI Agent Tray"; then fail "Run key left"; fi
grep -q "edited by test-windows" "$pd/config.toml" || fail "uninstall removed the config"
[ "$(products)" = 0 ] || fail "product still registered"
echo "uninstalled; kept: $(ls "$pd")"
rm -rf "$WINEPREFIX/drive_c/ProgramData/PWBI"

printf '\nPASS: test-windows\n'
