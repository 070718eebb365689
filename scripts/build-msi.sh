#!/bin/sh
# Builds the PWBI Edge Agent MSI from installer/windows/pwbi-agent.wxs with
# wixl (msitools), then adds with msibuild what wixl 0.101 cannot express
# (docs/installers.md, "Windows MSI"). The Windows binaries come from
# BIN_DIR (pwbi-agent.exe, pwbi-tray.exe); the MSI goes to OUT_DIR.
#
# Usage: scripts/build-msi.sh [-wine-test] BIN_DIR OUT_DIR VERSION
#
# -wine-test builds pwbi-agent-<version>-x64-winetest.msi, a TEST-ONLY
# variant whose ServiceControl does not start the service at install:
# under Wine the start cannot succeed (Wine runs services in session 1, so
# kardianos never reports RUNNING; toolchain.md §4) and msiexec would roll
# back. It is never part of `make dist`.
set -eu
start=yes
suffix=""
if [ "${1:-}" = "-wine-test" ]; then
	start=no
	suffix="-winetest"
	shift
fi
bin=$1
out=$2
version=$3
root=$(cd "$(dirname "$0")/.." && pwd)
msi_version=$("$root/scripts/pkgversion.sh" "$version" msi)

mkdir -p "$out"
out=$(cd "$out" && pwd)
target="$out/pwbi-agent-${msi_version}-x64${suffix}.msi"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$bin/pwbi-agent.exe" "$bin/pwbi-tray.exe" "$stage/"
# Notepad before Windows 10 1809 shows LF-only files on one line.
sed 's/$/\r/' "$root/config.example.toml" > "$stage/config.toml"
cp "$root/tray/icons/ok.ico" "$stage/pwbi.ico"

rm -f "$target"
# wixl resolves File/@Source against the current directory.
(cd "$stage" && wixl --arch x64 -D Version="$msi_version" -D StartService="$start" \
	-o "$target" "$root/installer/windows/pwbi-agent.wxs")

# One msibuild call per statement: its SQL engine runs one query at a time.
q() {
	if ! msibuild "$target" -q "$1" >/dev/null 2>&1; then
		echo "build-msi: msibuild failed: $1" >&2
		rm -f "$target"
		exit 1
	fi
}
upgrade_code=$(msiinfo export "$target" Property | awk -F'\t' '$1 == "UpgradeCode" {print $2}' | tr -d '\r')

# The config: Permanent (16, kept on uninstall) and NeverOverwrite (128,
# an existing, possibly edited, file is kept on upgrade and repair), on top
# of wixl's 64-bit (256). The logs folder is kept too.
q "UPDATE Component SET Attributes = 400 WHERE Component = 'Config'"
q "UPDATE Component SET Attributes = 272 WHERE Component = 'LogsFolder'"

# Same-version upgrades (a rebuild of the same version) replace the
# installed product instead of installing a second copy beside it:
# VersionMaxInclusive (512) with MigrateFeatures (1), as WiX's
# AllowSameVersionUpgrades. Attributes is part of the key: delete, insert.
q "DELETE FROM \`Upgrade\` WHERE \`ActionProperty\` = 'WIX_UPGRADE_DETECTED'"
q "INSERT INTO \`Upgrade\` (\`UpgradeCode\`, \`VersionMin\`, \`VersionMax\`, \`Language\`, \`Attributes\`, \`ActionProperty\`) VALUES ('$upgrade_code', '', '$msi_version', '', 513, 'WIX_UPGRADE_DETECTED')"

# The service's delayed automatic start and its recovery actions, with the
# Windows Installer 5 tables (what WiX's ServiceConfig and
# ServiceConfigFailureActions elements produce), applied by the standard
# action MsiConfigureServices between InstallServices and StartServices.
# Event 5 = install (1) + reinstall (4). The same settings as `pwbi-agent
# install` (agent/service): restart after 5 s on every failure (three
# entries so that services.msc shows all three), reset after a day.
q "CREATE TABLE \`MsiServiceConfig\` (\`MsiServiceConfig\` CHAR(72) NOT NULL, \`Name\` CHAR(255) NOT NULL, \`Event\` SHORT NOT NULL, \`ConfigType\` LONG NOT NULL, \`Argument\` CHAR(0), \`Component_\` CHAR(72) NOT NULL PRIMARY KEY \`MsiServiceConfig\`)"
q "INSERT INTO \`MsiServiceConfig\` (\`MsiServiceConfig\`, \`Name\`, \`Event\`, \`ConfigType\`, \`Argument\`, \`Component_\`) VALUES ('AgentDelayedStart', 'pwbi-agent', 5, 3, '1', 'AgentService')"
q "CREATE TABLE \`MsiServiceConfigFailureActions\` (\`MsiServiceConfigFailureActions\` CHAR(72) NOT NULL, \`Name\` CHAR(255) NOT NULL, \`Event\` SHORT NOT NULL, \`ResetPeriod\` LONG, \`RebootMessage\` CHAR(255) LOCALIZABLE, \`Command\` CHAR(255), \`Actions\` CHAR(255), \`DelayActions\` CHAR(255), \`Component_\` CHAR(72) NOT NULL PRIMARY KEY \`MsiServiceConfigFailureActions\`)"
q "INSERT INTO \`MsiServiceConfigFailureActions\` (\`MsiServiceConfigFailureActions\`, \`Name\`, \`Event\`, \`ResetPeriod\`, \`Actions\`, \`DelayActions\`, \`Component_\`) VALUES ('AgentRecovery', 'pwbi-agent', 5, 86400, '1[~]1[~]1', '5000[~]5000[~]5000', 'AgentService')"
q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Condition\`, \`Sequence\`) VALUES ('MsiConfigureServices', 'VersionNT >= 601', 5850)"

# ACLs (SDDL, so that they do not depend on localised account names):
# %ProgramData%\PWBI\Agent, holding config.toml with its secrets and the
# database, for SYSTEM and Administrators only; its data\logs folder also
# readable by Users, for the tray's "Open logs folder".
q "CREATE TABLE \`MsiLockPermissionsEx\` (\`MsiLockPermissionsEx\` CHAR(72) NOT NULL, \`LockObject\` CHAR(72) NOT NULL, \`Table\` CHAR(32) NOT NULL, \`SDDLText\` CHAR(0) NOT NULL, \`Condition\` CHAR(255) PRIMARY KEY \`MsiLockPermissionsEx\`)"
q "INSERT INTO \`MsiLockPermissionsEx\` (\`MsiLockPermissionsEx\`, \`LockObject\`, \`Table\`, \`SDDLText\`) VALUES ('AgentDataAcl', 'AGENTDATA', 'CreateFolder', 'D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)')"
q "INSERT INTO \`MsiLockPermissionsEx\` (\`MsiLockPermissionsEx\`, \`LockObject\`, \`Table\`, \`SDDLText\`) VALUES ('AgentLogsAcl', 'LOGSDIR', 'CreateFolder', 'D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FR;;;BU)')"

echo "built $target"
