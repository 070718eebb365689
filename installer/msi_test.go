//go:build linux

package installer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// msiTable exports one table of an MSI with msiinfo and returns its rows
// as maps from column name to value.
func msiTable(t *testing.T, msi, table string) []map[string]string {
	t.Helper()
	out := run(t, "msiinfo", "export", msi, table)
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(out, "\r\n", "\n"), "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("msiinfo export %s: %q", table, out)
	}
	cols := strings.Split(lines[0], "\t")
	var rows []map[string]string
	for _, l := range lines[3:] { // header, types, key line
		vals := strings.Split(l, "\t")
		row := map[string]string{}
		for i, c := range cols {
			if i < len(vals) {
				row[c] = vals[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// rowWhere returns the first row whose column col is val.
func rowWhere(t *testing.T, rows []map[string]string, col, val string) map[string]string {
	t.Helper()
	for _, r := range rows {
		if r[col] == val {
			return r
		}
	}
	t.Errorf("no row with %s = %q", col, val)
	return map[string]string{}
}

// wantRow checks the given columns of a row.
func wantRow(t *testing.T, what string, row map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if row[k] != v {
			t.Errorf("%s: %s = %q, want %q", what, k, row[k], v)
		}
	}
}

// TestMSITables inspects the MSI `make dist` built: the files, the service
// (ServiceInstall, ServiceControl, the MSI 5 service configuration tables),
// the tray's Run key, the config component's attributes, the upgrade rows
// and the ACLs. It does not run Windows; `make test-windows` installs the
// MSI under Wine, and docs/installers.md lists what only a real Windows
// can show.
func TestMSITables(t *testing.T) {
	dist := distDir(t)
	need(t, "msiinfo", "msiextract")
	msi := artifact(t, dist, "pwbi-agent-*-x64.msi")
	version := agentVersion(t, dist)
	msiVersion := pkgVersion(t, version, "msi")
	if filepath.Base(msi) != "pwbi-agent-"+msiVersion+"-x64.msi" {
		t.Errorf("MSI name %s, want version %s", filepath.Base(msi), msiVersion)
	}

	tables := strings.Fields(run(t, "msiinfo", "tables", msi))
	for _, tb := range []string{"File", "Component", "ServiceInstall", "ServiceControl", "Registry", "Upgrade",
		"MsiServiceConfig", "MsiServiceConfigFailureActions", "MsiLockPermissionsEx", "CustomAction", "CreateFolder"} {
		if !slices.Contains(tables, tb) {
			t.Errorf("table %s missing (tables: %v)", tb, tables)
		}
	}

	suminfo := run(t, "msiinfo", "suminfo", msi)
	if !strings.Contains(suminfo, "Template: x64;1033") {
		t.Errorf("summary information is not x64:\n%s", suminfo)
	}

	props := map[string]string{}
	for _, r := range msiTable(t, msi, "Property") {
		props[r["Property"]] = r["Value"]
	}
	wantRow(t, "Property", props, map[string]string{
		"ProductName": "PWBI Edge Agent", "ProductVersion": msiVersion, "Manufacturer": "PWBI",
		"UpgradeCode": "{68E668D4-C049-4610-94C1-AB2F32EA93F6}", "ALLUSERS": "1",
	})

	// Where things go.
	dirs := map[string]map[string]string{}
	for _, r := range msiTable(t, msi, "Directory") {
		dirs[r["Directory"]] = r
	}
	path := func(id string) string {
		var parts []string
		for id != "" && id != "TARGETDIR" {
			parts = append([]string{strings.Split(dirs[id]["DefaultDir"], "|")[0]}, parts...)
			if p := dirs[id]["Directory_Parent"]; p == "TARGETDIR" {
				parts[0] = id
				break
			} else {
				id = p
			}
		}
		return strings.Join(parts, `\`)
	}
	comps := map[string]map[string]string{}
	for _, r := range msiTable(t, msi, "Component") {
		comps[r["Component"]] = r
	}
	files := msiTable(t, msi, "File")
	for name, want := range map[string]struct{ dir, comp, attrs string }{
		"pwbi-agent.exe":      {`ProgramFiles64Folder\PWBI\Agent`, "AgentService", "256"},
		"pwbi-tray.exe":       {`ProgramFiles64Folder\PWBI\Agent`, "Tray", "256"},
		"config.example.toml": {`ProgramFiles64Folder\PWBI\Agent`, "ConfigExample", "256"},
		// 400 = 64-bit (256) + NeverOverwrite (128) + Permanent (16).
		"config.toml": {`CommonAppDataFolder\PWBI\Agent`, "Config", "400"},
	} {
		f := rowWhere(t, files, "FileName", name)
		c := comps[f["Component_"]]
		if f["Component_"] != want.comp || path(c["Directory_"]) != want.dir || c["Attributes"] != want.attrs {
			t.Errorf("%s: component %s in %s, attributes %s; want %s in %s, %s", name,
				f["Component_"], path(c["Directory_"]), c["Attributes"], want.comp, want.dir, want.attrs)
		}
		if c["KeyPath"] != f["File"] {
			t.Errorf("%s is not its component's key path", name)
		}
	}
	if c := comps["LogsFolder"]; path(c["Directory_"]) != `CommonAppDataFolder\PWBI\Agent\data\logs` || c["Attributes"] != "272" {
		t.Errorf("logs folder component %v", c)
	}

	// The service: as `pwbi-agent install` registers it (agent/service).
	svc := rowWhere(t, msiTable(t, msi, "ServiceInstall"), "Name", "pwbi-agent")
	wantRow(t, "ServiceInstall", svc, map[string]string{
		"DisplayName": "PWBI Edge Agent", "ServiceType": "16" /* own process */, "StartType": "2", /* auto */
		"ErrorControl": "1", "StartName": "LocalSystem", "Component_": "AgentService",
		"Arguments": `run --config "[CommonAppDataFolder]PWBI\Agent\config.toml"`,
	})
	// 163 = start on install (1) + stop on install (2) and uninstall (32)
	// + delete on uninstall (128).
	wantRow(t, "ServiceControl", rowWhere(t, msiTable(t, msi, "ServiceControl"), "Name", "pwbi-agent"),
		map[string]string{"Event": "163", "Wait": "1", "Component_": "AgentService"})
	// Delayed automatic start (config type 3) and recovery: restart after
	// 5 s, failure count reset after a day; on install and reinstall (5).
	wantRow(t, "MsiServiceConfig", rowWhere(t, msiTable(t, msi, "MsiServiceConfig"), "Name", "pwbi-agent"),
		map[string]string{"Event": "5", "ConfigType": "3", "Argument": "1", "Component_": "AgentService"})
	wantRow(t, "MsiServiceConfigFailureActions", rowWhere(t, msiTable(t, msi, "MsiServiceConfigFailureActions"), "Name", "pwbi-agent"),
		map[string]string{"Event": "5", "ResetPeriod": "86400", "Actions": "1[~]1[~]1",
			"DelayActions": "5000[~]5000[~]5000", "Component_": "AgentService"})

	seq := map[string]int{}
	for _, r := range msiTable(t, msi, "InstallExecuteSequence") {
		seq[r["Action"]] = atoi(r["Sequence"])
	}
	// The old product is removed inside this transaction (rolled back with
	// it), after the trays are closed.
	order := []string{"FindRelatedProducts", "InstallValidate", "InstallInitialize", "CloseTrays", "RemoveExistingProducts",
		"StopServices", "DeleteServices", "InstallFiles", "InstallServices", "MsiConfigureServices", "StartServices",
		"InstallFinalize", "StartTray"}
	for i := 1; i < len(order); i++ {
		if seq[order[i-1]] == 0 || seq[order[i]] == 0 || seq[order[i-1]] >= seq[order[i]] {
			t.Errorf("InstallExecuteSequence: %s (%d) must come before %s (%d)", order[i-1], seq[order[i-1]], order[i], seq[order[i]])
		}
	}
	cas := msiTable(t, msi, "CustomAction")
	// 3186 = exe from a property (50) + ignore the exit code (64) +
	// deferred (1024) + no impersonation (2048): taskkill as SYSTEM.
	wantRow(t, "CloseTrays", rowWhere(t, cas, "Action", "CloseTrays"), map[string]string{"Type": "3186", "Source": "TASKKILL", "Target": "/F /IM pwbi-tray.exe"})
	wantRow(t, "SetTaskkillPath", rowWhere(t, cas, "Action", "SetTaskkillPath"), map[string]string{"Type": "51", "Target": "[SystemFolder]taskkill.exe"})
	// 210 = installed exe (18) + async, no wait (192), as the user.
	wantRow(t, "StartTray", rowWhere(t, cas, "Action", "StartTray"), map[string]string{"Type": "210", "Source": "pwbi_tray.exe"})

	// Registry: the tray at every user's login, the Event Log source.
	regs := msiTable(t, msi, "Registry")
	wantRow(t, "Run key", rowWhere(t, regs, "Name", "PWBI Agent Tray"), map[string]string{
		"Root": "2" /* HKLM */, "Key": `Software\Microsoft\Windows\CurrentVersion\Run`,
		"Value": `"[INSTALLDIR]pwbi-tray.exe"`, "Component_": "Tray",
	})
	for name, value := range map[string]string{"EventMessageFile": `[SystemFolder]EventCreate.exe`, "TypesSupported": "#7", "CustomSource": "#1"} {
		wantRow(t, name, rowWhere(t, regs, "Name", name), map[string]string{
			"Root": "2", "Key": `SYSTEM\CurrentControlSet\Services\EventLog\Application\pwbi-agent`, "Value": value,
		})
	}

	// Upgrades: older and same versions are replaced (513 = migrate
	// features + max inclusive); a newer one blocks the install.
	ups := msiTable(t, msi, "Upgrade")
	wantRow(t, "upgrade row", rowWhere(t, ups, "ActionProperty", "WIX_UPGRADE_DETECTED"),
		map[string]string{"VersionMin": "", "VersionMax": msiVersion, "Attributes": "513"})
	wantRow(t, "downgrade row", rowWhere(t, ups, "ActionProperty", "WIX_DOWNGRADE_DETECTED"),
		map[string]string{"VersionMin": msiVersion, "VersionMax": "", "Attributes": "2"})
	conds := map[string]bool{}
	for _, r := range msiTable(t, msi, "LaunchCondition") {
		conds[r["Condition"]] = true
	}
	if !conds["NOT WIX_DOWNGRADE_DETECTED"] || !conds["VersionNT64"] {
		t.Errorf("launch conditions %v", conds)
	}

	// ACLs: the config folder for SYSTEM and Administrators only, the logs
	// folder readable by Users.
	acls := msiTable(t, msi, "MsiLockPermissionsEx")
	wantRow(t, "data ACL", rowWhere(t, acls, "LockObject", "AGENTDATA"),
		map[string]string{"Table": "CreateFolder", "SDDLText": "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"})
	wantRow(t, "logs ACL", rowWhere(t, acls, "LockObject", "LOGSDIR"),
		map[string]string{"Table": "CreateFolder", "SDDLText": "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FR;;;BU)"})

	// The payload: the config is the example with CRLF line ends, and
	// valid; the programs are the ones in dist.
	x := t.TempDir()
	run(t, "msiextract", "-C", x, msi)
	var cfg, agentExe string
	filepath.Walk(x, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == "config.toml" && strings.Contains(p, "Agent") {
			cfg = p
		}
		if err == nil && fi.Name() == "pwbi-agent.exe" {
			agentExe = p
		}
		return nil
	})
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatalf("config.toml not extracted: %v", err)
	}
	example, _ := os.ReadFile(filepath.Join(repoRoot(t), "config.example.toml"))
	if strings.ReplaceAll(string(body), "\r\n", "\n") != string(example) || !strings.Contains(string(body), "\r\n") {
		t.Error("config.toml in the MSI is not config.example.toml with CRLF line ends")
	}
	if out, stderr, err := runErr(filepath.Join(dist, "linux-amd64", "pwbi-agent"), "config", "check", "--config", cfg); err != nil {
		t.Errorf("config check of the MSI's config.toml: %v\n%s%s", err, out, stderr)
	}
	got, _ := os.ReadFile(agentExe)
	want, _ := os.ReadFile(filepath.Join(dist, "windows-amd64", "pwbi-agent.exe"))
	if len(got) == 0 || string(got) != string(want) {
		t.Error("pwbi-agent.exe in the MSI is not dist/windows-amd64/pwbi-agent.exe")
	}
}

// TestMSIWineVariant builds the test-only Wine package and checks that it
// differs from the real one only in not starting the service.
func TestMSIWineVariant(t *testing.T) {
	dist := distDir(t)
	need(t, "wixl", "msibuild", "msiinfo")
	out := t.TempDir()
	run(t, filepath.Join(repoRoot(t), "scripts", "build-msi.sh"), "-wine-test", filepath.Join(dist, "windows-amd64"), out, "1.2.3")
	msi := artifact(t, out, "pwbi-agent-1.2.3-x64-winetest.msi")
	// 162: 163 without "start on install".
	wantRow(t, "ServiceControl", rowWhere(t, msiTable(t, msi, "ServiceControl"), "Name", "pwbi-agent"),
		map[string]string{"Event": "162"})
	if m, _ := filepath.Glob(filepath.Join(dist, "*winetest*")); len(m) > 0 {
		t.Errorf("a Wine test package is in dist: %v", m)
	}
}

// TestChecksums checks dist/SHA256SUMS against the files.
func TestChecksums(t *testing.T) {
	dist := distDir(t)
	need(t, "sha256sum")
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			names = append(names, f[1])
		}
	}
	for _, want := range []string{"linux-amd64/pwbi-agent", "linux-amd64/pwbi-tray", "windows-amd64/pwbi-agent.exe", "windows-amd64/pwbi-tray.exe"} {
		if !slices.Contains(names, want) {
			t.Errorf("SHA256SUMS lacks %s", want)
		}
	}
	cmd := []string{"-c", "--strict", "SHA256SUMS"}
	o, e, err := runErrIn(dist, "sha256sum", cmd...)
	if err != nil {
		t.Errorf("sha256sum -c: %v\n%s%s", err, o, e)
	}
}

// TestSignScript signs copies of the Windows files with a throw-away
// certificate through scripts/sign.sh and verifies them.
func TestSignScript(t *testing.T) {
	dist := distDir(t)
	need(t, "openssl", "osslsigncode")
	dir := t.TempDir()
	key, crt := filepath.Join(dir, "test.key"), filepath.Join(dir, "test.crt")
	run(t, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "1", "-nodes",
		"-subj", "/CN=PWBI Test Signing", "-addext", "extendedKeyUsage=codeSigning",
		"-addext", "keyUsage=digitalSignature", "-keyout", key, "-out", crt)
	var targets []string
	for _, src := range []string{artifact(t, dist, "pwbi-agent-*-x64.msi"), filepath.Join(dist, "windows-amd64", "pwbi-tray.exe")} {
		dst := filepath.Join(dir, filepath.Base(src))
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(dst, b, 0o644)
		targets = append(targets, dst)
	}
	cmd := envCmd(filepath.Join(repoRoot(t), "scripts", "sign.sh"), targets, "SIGN_CERT="+crt, "SIGN_KEY="+key, "SIGN_CA="+crt)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sign.sh: %v\n%s", err, out)
	}
	for _, f := range targets {
		out := run(t, "osslsigncode", "verify", "-CAfile", crt, "-in", f)
		if !strings.Contains(out, "Signature verification: ok") {
			t.Errorf("%s: %s", f, out)
		}
	}
}
