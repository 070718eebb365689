package service

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kardianos/service"
)

// renderSystemdUnit has kardianos's linux-systemd backend write the unit it
// would install for cfg, whatever the init system of this machine. It
// installs a user service (kardianos writes it to
// $HOME/.config/systemd/user/) with HOME in a temporary directory and a fake
// systemctl first in PATH, so nothing outside the test's directory is
// touched. The unit text is the system one: the template takes no input
// from UserService.
func renderSystemdUnit(t *testing.T, cfg *service.Config) string {
	t.Helper()
	var systemd service.System
	for _, s := range service.AvailableSystems() {
		if s.String() == "linux-systemd" {
			systemd = s
		}
	}
	if systemd == nil {
		t.Fatal("kardianos has no linux-systemd system")
	}
	home := t.TempDir()
	bin := filepath.Join(home, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := "#!/bin/sh\necho \"$@\" >> " + filepath.Join(home, "systemctl.log") + "\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("PATH", bin)

	c := *cfg
	c.Option = maps.Clone(cfg.Option)
	c.Option["UserService"] = true
	s, err := systemd.New(nopProgram{}, &c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Install(); err != nil {
		t.Fatalf("render unit: %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(home, "systemctl.log"))
	if !strings.Contains(string(log), "enable --user "+Name+".service") {
		t.Errorf("kardianos did not enable the unit: %q", log)
	}
	unit, err := os.ReadFile(filepath.Join(home, ".config", "systemd", "user", Name+".service"))
	if err != nil {
		t.Fatal(err)
	}
	return string(unit)
}

// TestSystemdUnit renders the unit `pwbi-agent install` writes on a
// systemd machine through kardianos's own template engine and checks it.
func TestSystemdUnit(t *testing.T) {
	exeDir := filepath.Join(t.TempDir(), "opt", "pwbi agent") // a space, to check quoting
	exe := filepath.Join(exeDir, "pwbi-agent")
	if err := os.MkdirAll(exeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	setExecutable(t, exe)
	cfg, err := Config(filepath.Join("relative", "config.toml")) // made absolute
	if err != nil {
		t.Fatal(err)
	}
	cfg.Option = options("linux")
	cfg.Dependencies = dependencies("linux")
	cfgArg := cfg.Arguments[2]
	verifyPath := os.Getenv("PATH")

	unit := renderSystemdUnit(t, cfg)
	t.Logf("rendered unit:\n%s", unit)

	escapedExe := strings.ReplaceAll(exe, " ", `\x20`)
	for _, want := range []string{
		"[Unit]\n",
		"Description=" + description + "\n",
		"After=network-online.target\n",
		"Wants=network-online.target\n",
		"[Service]\n",
		`ExecStart=` + escapedExe + ` "run" "--config" "` + cfgArg + `"` + "\n",
		"ConditionFileIsExecutable=" + exe + "\n",
		"WorkingDirectory=" + exeDir + "\n",
		"Restart=on-failure\n",
		"RestartSec=5s\n",
		"TimeoutStopSec=25s\n",
		"[Install]\nWantedBy=multi-user.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	for _, bad := range []string{"RestartSec=120", "StartLimitInterval=5", "{{", "}}", "<no value>"} {
		if strings.Contains(unit, bad) {
			t.Errorf("unit contains %q", bad)
		}
	}
	// Every path in the unit is absolute.
	for _, line := range strings.Split(unit, "\n") {
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		var paths []string
		switch key {
		case "ExecStart": // words, quoted or \x20-escaped
			for _, f := range regexp.MustCompile(`"[^"]*"|\S+`).FindAllString(val, -1) {
				paths = append(paths, strings.Trim(f, `"`))
			}
		case "WorkingDirectory", "ConditionFileIsExecutable": // the rest of the line
			paths = []string{val}
		case "EnvironmentFile": // "-" makes it optional
			paths = []string{strings.TrimPrefix(val, "-")}
		}
		for _, p := range paths {
			if strings.ContainsAny(p, `/\`) && !strings.HasPrefix(p, "/") {
				t.Errorf("%s: relative path %q", key, p)
			}
		}
	}
	if !strings.HasPrefix(cfgArg, "/") {
		t.Errorf("config argument %q is relative", cfgArg)
	}

	// systemd's own check, when it is installed (it works without systemd
	// running as init).
	t.Setenv("PATH", verifyPath)
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed; unit not verified by systemd")
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, Name+".service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The unit's condition holds for the executable (a failed condition
	// skips the unit without an error).
	for _, line := range strings.Split(unit, "\n") {
		if strings.HasPrefix(line, "Condition") {
			out, err := exec.Command(analyze, "condition", line).CombinedOutput()
			if err != nil {
				t.Errorf("systemd-analyze condition %q: %v\n%s", line, err, out)
			}
		}
	}
}
