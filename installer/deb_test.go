//go:build linux

package installer

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// debEntry is one line of `dpkg-deb -c`.
type debEntry struct{ mode, owner string }

func debContents(t *testing.T, deb string) map[string]debEntry {
	t.Helper()
	m := map[string]debEntry{}
	for _, line := range strings.Split(run(t, "dpkg-deb", "-c", deb), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		path := strings.TrimPrefix(strings.TrimSuffix(f[5], "/"), ".")
		m[path] = debEntry{mode: f[0], owner: f[1]}
	}
	return m
}

// TestDebPackage inspects the .deb without installing it: fields, files
// and modes, conffiles, maintainer scripts, the packaged config, the unit
// (systemd-analyze verify) and the desktop entries.
func TestDebPackage(t *testing.T) {
	dist := distDir(t)
	need(t, "dpkg-deb", "systemd-analyze", "desktop-file-validate")
	deb := artifact(t, dist, "pwbi-agent_*_amd64.deb")

	// Control fields.
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Depends", "Recommends", "Maintainer"} {
		fields[f] = strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, f))
	}
	version := agentVersion(t, dist)
	want := map[string]string{
		"Package": "pwbi-agent", "Version": pkgVersion(t, version, "deb"), "Architecture": "amd64",
		"Depends": "passwd", "Recommends": "libayatana-appindicator3-1, libgtk-3-0, xdg-utils",
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("control %s = %q, want %q", k, fields[k], v)
		}
	}
	if !strings.HasPrefix(filepath.Base(deb), "pwbi-agent_"+fields["Version"]+"_") {
		t.Errorf("file name %s does not carry version %s", filepath.Base(deb), fields["Version"])
	}

	// Files, modes and owners.
	files := debContents(t, deb)
	wantFiles := map[string]debEntry{
		"/usr/bin/pwbi-agent":                                {"-rwxr-xr-x", "root/root"},
		"/usr/bin/pwbi-tray":                                 {"-rwxr-xr-x", "root/root"},
		"/lib/systemd/system/pwbi-agent.service":             {"-rw-r--r--", "root/root"},
		"/etc/pwbi-agent":                                    {"drwxr-x---", "root/root"},
		"/etc/pwbi-agent/config.toml":                        {"-rw-r-----", "root/root"},
		"/var/lib/pwbi-agent":                                {"drwxr-x---", "root/root"},
		"/etc/xdg/autostart/pwbi-tray.desktop":               {"-rw-r--r--", "root/root"},
		"/usr/share/applications/pwbi-tray.desktop":          {"-rw-r--r--", "root/root"},
		"/usr/share/icons/hicolor/64x64/apps/pwbi-agent.png": {"-rw-r--r--", "root/root"},
		"/usr/share/doc/pwbi-agent/README.md":                {"-rw-r--r--", "root/root"},
		"/usr/share/doc/pwbi-agent/config.example.toml":      {"-rw-r--r--", "root/root"},
	}
	for path, want := range wantFiles {
		got, ok := files[path]
		if !ok {
			t.Errorf("%s is not in the package", path)
		} else if got != want {
			t.Errorf("%s: %s %s, want %s %s", path, got.mode, got.owner, want.mode, want.owner)
		}
	}
	for path, e := range files {
		if _, ok := wantFiles[path]; !ok && !strings.HasPrefix(e.mode, "d") {
			t.Errorf("unexpected file %s in the package", path)
		}
	}

	// Control files: conffiles and the maintainer scripts.
	ctrl := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, ctrl)
	conffiles, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(conffiles)); !slices.Equal(got, []string{"/etc/pwbi-agent/config.toml", "/etc/xdg/autostart/pwbi-tray.desktop"}) {
		t.Errorf("conffiles %q", got)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		p := filepath.Join(ctrl, s)
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s missing or not executable: %v", s, err)
			continue
		}
		run(t, "sh", "-n", p)
	}

	// The payload.
	root := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, root)
	agent := filepath.Join(root, "usr/bin/pwbi-agent")

	// The agent is static (CGO_ENABLED=0); the tray links GTK and Ayatana.
	if interp, libs := elfInfo(t, agent); interp || len(libs) > 0 {
		t.Errorf("pwbi-agent is not static: interpreter %v, libraries %v", interp, libs)
	}
	if _, libs := elfInfo(t, filepath.Join(root, "usr/bin/pwbi-tray")); !slices.Contains(libs, "libayatana-appindicator3.so.1") || !slices.Contains(libs, "libgtk-3.so.0") {
		t.Errorf("pwbi-tray libraries %v", libs)
	}
	if got := strings.TrimSpace(run(t, agent, "version")); got != "pwbi-agent "+version {
		t.Errorf("packaged agent says %q, want version %s", got, version)
	}

	// The packaged config is the example with the unit's data directory,
	// and valid.
	cfg := filepath.Join(root, "etc/pwbi-agent/config.toml")
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^data_dir = "/var/lib/pwbi-agent"$`).Match(body) {
		t.Error(`packaged config.toml does not set data_dir = "/var/lib/pwbi-agent"`)
	}
	example, _ := os.ReadFile(filepath.Join(repoRoot(t), "config.example.toml"))
	if strings.Replace(string(example), `data_dir = ""`, `data_dir = "/var/lib/pwbi-agent"`, 1) != string(body) {
		t.Error("packaged config.toml differs from config.example.toml beyond data_dir")
	}
	if out, stderr, err := runErr(agent, "config", "check", "--config", cfg); err != nil {
		t.Errorf("config check of the packaged config: %v\n%s%s", err, out, stderr)
	}

	// The unit: systemd-analyze verify, which also checks that ExecStart
	// is executable, so point it at the extracted binary. Warnings (an
	// unknown or misspelt key) do not change its exit code: none allowed.
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/pwbi-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	testUnit := filepath.Join(t.TempDir(), "pwbi-agent.service")
	os.WriteFile(testUnit, []byte(strings.ReplaceAll(string(unit), "/usr/bin/pwbi-agent", agent)), 0o644)
	verifyUnit(t, testUnit)
	for _, key := range []string{"Restart=on-failure", "User=pwbi-agent", "StateDirectory=pwbi-agent",
		"ExecStart=/usr/bin/pwbi-agent run --config /etc/pwbi-agent/config.toml", "WantedBy=multi-user.target"} {
		if !strings.Contains(string(unit), "\n"+key+"\n") {
			t.Errorf("unit lacks %s", key)
		}
	}

	for _, d := range []string{"etc/xdg/autostart/pwbi-tray.desktop", "usr/share/applications/pwbi-tray.desktop"} {
		run(t, "desktop-file-validate", filepath.Join(root, d))
	}
}

// verifyUnit runs systemd-analyze verify on a unit file and wants no
// complaint at all.
func verifyUnit(t *testing.T, unit string) {
	t.Helper()
	out, stderr, err := runErr("systemd-analyze", "verify", unit)
	if err != nil || strings.TrimSpace(out+stderr) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s%s", unit, err, out, stderr)
	}
}

func elfInfo(t *testing.T, path string) (interp bool, libs []string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp = true
		}
	}
	libs, _ = f.ImportedLibraries()
	return interp, libs
}

// TestDebInstall installs, upgrades, removes and purges the .deb on this
// machine with dpkg. It changes the machine, so it runs only as root with
// PWBI_INSTALL_TEST=1, or CI=true without PWBI_INSTALL_TEST=0 (make test
// passes its choice on; installTestEnabled), and never when pwbi-agent is
// already installed. The machine is left as found: the pwbi-agent account,
// which the package keeps on purge by design, is deleted if this test
// created it.
//
// PID 1 here need not be systemd: the maintainer scripts then enable the
// unit offline and start nothing. `make test-systemd` covers a real boot.
func TestDebInstall(t *testing.T) {
	dist := distDir(t)
	if !installTestEnabled(os.Getenv) {
		t.Skip("installs the .deb on this machine with dpkg -i: set PWBI_INSTALL_TEST=1 (or CI=true) and run as root")
	}
	if os.Geteuid() != 0 {
		t.Skip("installing a .deb needs root")
	}
	need(t, "dpkg", "dpkg-query", "systemd-analyze", "getent")
	if out, _, _ := runErr("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "pwbi-agent"); strings.TrimSpace(out) != "" && !strings.HasPrefix(out, "un") && !strings.HasPrefix(out, "pn") {
		t.Skipf("pwbi-agent is already installed here (%q); not touching it", out)
	}
	deb := artifact(t, dist, "pwbi-agent_*_amd64.deb")
	version := agentVersion(t, dist)
	_, userErr := user.Lookup("pwbi-agent")
	createdUser := userErr != nil
	systemd := isDir("/run/systemd/system")
	t.Cleanup(func() {
		// Whatever happened, leave nothing installed.
		if out, _, _ := runErr("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "pwbi-agent"); strings.HasPrefix(out, "i") || strings.HasPrefix(out, "r") {
			runErr("dpkg", "--purge", "pwbi-agent")
		}
		if createdUser {
			runErr("userdel", "pwbi-agent")
			runErr("groupdel", "pwbi-agent")
		}
	})

	// Install.
	out := runAll(t, "dpkg", "-i", deb)
	t.Logf("dpkg -i:\n%s", out)
	if st := run(t, "dpkg-query", "-W", "-f", "${Status} ${Version}", "pwbi-agent"); st != "install ok installed "+pkgVersion(t, version, "deb") {
		t.Errorf("status after install: %q", st)
	}

	// The account and the ownership the postinst set.
	pw := strings.Split(strings.TrimSpace(run(t, "getent", "passwd", "pwbi-agent")), ":")
	if len(pw) != 7 || pw[5] != "/var/lib/pwbi-agent" || pw[6] != "/usr/sbin/nologin" {
		t.Errorf("pwbi-agent account %q", pw)
	}
	if uid := atoi(pw[2]); uid >= 1000 || uid == 0 {
		t.Errorf("pwbi-agent uid %d is not a system uid", uid)
	}
	for path, want := range map[string]string{
		"/etc/pwbi-agent":             "drwxr-x--- root pwbi-agent",
		"/etc/pwbi-agent/config.toml": "-rw-r----- root pwbi-agent",
		"/var/lib/pwbi-agent":         "drwxr-x--- pwbi-agent pwbi-agent",
		"/usr/bin/pwbi-agent":         "-rwxr-xr-x root root",
	} {
		if got := statLine(t, path); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}

	// The installed programs.
	if got := strings.TrimSpace(run(t, "/usr/bin/pwbi-agent", "version")); got != "pwbi-agent "+version {
		t.Errorf("installed version %q", got)
	}
	if out := run(t, "/usr/bin/pwbi-agent", "config", "check"); !strings.Contains(out, "/etc/pwbi-agent/config.toml: OK") {
		t.Errorf("config check:\n%s", out)
	}
	run(t, "/usr/bin/pwbi-tray", "--version")
	verifyUnit(t, "/lib/systemd/system/pwbi-agent.service")
	wants := "/etc/systemd/system/multi-user.target.wants/pwbi-agent.service"
	if target, err := os.Readlink(wants); err != nil || target != "/lib/systemd/system/pwbi-agent.service" {
		t.Errorf("service not enabled: %s -> %q, %v", wants, target, err)
	}

	// The service account can run the packaged agent with the packaged
	// config and files (what systemd would do, without its sandbox).
	if ln, err := net.Listen("tcp", "127.0.0.1:8687"); err != nil {
		t.Logf("127.0.0.1:8687 is taken; not running the agent as pwbi-agent (%v)", err)
	} else {
		ln.Close()
		runAsServiceUser(t)
	}

	// Upgrade over itself: an edited conffile is kept.
	f, err := os.OpenFile("/etc/pwbi-agent/config.toml", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "# edited by TestDebInstall")
	f.Close()
	t.Logf("dpkg -i again:\n%s", runAll(t, "dpkg", "-i", deb))
	if b, _ := os.ReadFile("/etc/pwbi-agent/config.toml"); !strings.Contains(string(b), "# edited by TestDebInstall") {
		t.Error("reinstall replaced the edited config.toml")
	}
	if m, _ := filepath.Glob("/etc/pwbi-agent/*.dpkg-*"); len(m) > 0 {
		t.Errorf("reinstall left %v", m)
	}

	// Remove: programs go, config and data stay.
	t.Logf("dpkg -r:\n%s", runAll(t, "dpkg", "-r", "pwbi-agent"))
	for _, gone := range []string{"/usr/bin/pwbi-agent", "/usr/bin/pwbi-tray", "/lib/systemd/system/pwbi-agent.service",
		"/usr/share/applications/pwbi-tray.desktop", wants} {
		if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after dpkg -r (%v)", gone, err)
		}
	}
	for _, kept := range []string{"/etc/pwbi-agent/config.toml", "/etc/xdg/autostart/pwbi-tray.desktop", "/var/lib/pwbi-agent"} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("%s removed by dpkg -r: %v", kept, err)
		}
	}

	// Purge: nothing left.
	t.Logf("dpkg -P:\n%s", runAll(t, "dpkg", "-P", "pwbi-agent"))
	for _, gone := range []string{"/etc/pwbi-agent", "/var/lib/pwbi-agent", "/etc/xdg/autostart/pwbi-tray.desktop", wants} {
		if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after dpkg -P (%v)", gone, err)
		}
	}
	if out, _, _ := runErr("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "pwbi-agent"); strings.HasPrefix(out, "i") || strings.HasPrefix(out, "r") {
		t.Errorf("package still known after purge: %q", out)
	}
	// Kept by design (see postrm); deleted by the cleanup if ours.
	if _, err := user.Lookup("pwbi-agent"); err != nil {
		t.Errorf("the pwbi-agent account was deleted by purge: %v", err)
	}
	t.Logf("systemd running as PID 1: %v", systemd)
}

// runAsServiceUser starts /usr/bin/pwbi-agent as pwbi-agent with the
// packaged config and waits for its local API, then stops it.
func runAsServiceUser(t *testing.T) {
	t.Helper()
	u, err := user.Lookup("pwbi-agent")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/pwbi-agent", "run", "--config", "/etc/pwbi-agent/config.toml")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(atoi(u.Uid)), Gid: uint32(atoi(u.Gid))}}
	cmd.Dir = "/"
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	// Generous: the install test runs beside the rest of `make test` on a
	// loaded machine; a passing test does not wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:8687/v1/status", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("agent as pwbi-agent exited: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("agent as pwbi-agent did not answer /v1/status:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := os.Stat("/var/lib/pwbi-agent/logs"); err != nil {
		t.Errorf("the agent did not create its logs under /var/lib/pwbi-agent: %v", err)
	}
	t.Log("the packaged agent ran as pwbi-agent and answered /v1/status")
}

func statLine(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%v", err)
		return ""
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%s %s %s", fi.Mode().String(), name(user.LookupId(fmt.Sprint(st.Uid))), group(user.LookupGroupId(fmt.Sprint(st.Gid))))
}

func name(u *user.User, err error) string {
	if err != nil {
		return "?"
	}
	return u.Username
}

func group(g *user.Group, err error) string {
	if err != nil {
		return "?"
	}
	return g.Name
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
