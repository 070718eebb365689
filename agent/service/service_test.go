package service

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kardianos/service"

	"github.com/pwbi/edge-agent/agent/config"
)

func TestConfigPaths(t *testing.T) {
	t.Chdir(tempDir(t)) // a current directory unrelated to the executable
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Config(filepath.Join("conf", "..", "conf", "agent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if Name != "pwbi-agent" || cfg.Name != Name || cfg.DisplayName != "PWBI Edge Agent" || cfg.Description == "" {
		t.Errorf("names: %q %q %q", cfg.Name, cfg.DisplayName, cfg.Description)
	}
	want := []string{"run", "--config", filepath.Join(wd, "conf", "agent.toml")}
	if !reflect.DeepEqual(cfg.Arguments, want) {
		t.Errorf("Arguments = %q, want %q", cfg.Arguments, want)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err = filepath.EvalSymlinks(exe)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Executable != exe || !filepath.IsAbs(cfg.Executable) {
		t.Errorf("Executable = %q, want %q", cfg.Executable, exe)
	}
	if cfg.WorkingDirectory != filepath.Dir(exe) {
		t.Errorf("WorkingDirectory = %q, want the executable's directory %q", cfg.WorkingDirectory, filepath.Dir(exe))
	}
	if cfg.WorkingDirectory == wd {
		t.Errorf("WorkingDirectory is the current directory %q", wd)
	}
	for _, p := range append([]string{cfg.Executable, cfg.WorkingDirectory}, cfg.Arguments[2]) {
		if !filepath.IsAbs(p) {
			t.Errorf("%q is not absolute", p)
		}
	}
	if !reflect.DeepEqual(cfg.Option, options(runtime.GOOS)) {
		t.Errorf("Option = %v, want options(%s)", cfg.Option, runtime.GOOS)
	}
	if !reflect.DeepEqual(cfg.Dependencies, dependencies(runtime.GOOS)) {
		t.Errorf("Dependencies = %v", cfg.Dependencies)
	}
}

func TestConfigDefaultPath(t *testing.T) {
	t.Setenv(config.EnvPath, filepath.Join("rel", "from-env.toml"))
	cfg, err := Config("")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if got, want := cfg.Arguments[2], filepath.Join(wd, "rel", "from-env.toml"); got != want {
		t.Errorf("config argument = %q, want %q", got, want)
	}
}

func TestConfigResolvesSymlinkedExecutable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows (and Wine's do not resolve)")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "opt", "pwbi", "pwbi-agent")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "pwbi-agent")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
	setExecutable(t, link)
	cfg, err := Config("c.toml")
	if err != nil {
		t.Fatal(err)
	}
	realResolved, _ := filepath.EvalSymlinks(real)
	if cfg.Executable != realResolved || cfg.WorkingDirectory != filepath.Dir(realResolved) {
		t.Errorf("Executable %q, WorkingDirectory %q; want %q and its directory", cfg.Executable, cfg.WorkingDirectory, realResolved)
	}
}

// setExecutable makes Config use path as the program to install.
func setExecutable(t *testing.T, path string) {
	t.Helper()
	old := executable
	executable = func() (string, error) { return path, nil }
	t.Cleanup(func() { executable = old })
}

// TestOptionsWindows pins the option names and types kardianos v1.3.0's
// service_windows.go reads; a wrong type silently falls back to its default.
func TestOptionsWindows(t *testing.T) {
	o := options("windows")
	want := service.KeyValue{
		"StartType":              "automatic",
		"DelayedAutoStart":       true,
		"OnFailure":              "restart",
		"OnFailureDelayDuration": "5s",
		"OnFailureResetPeriod":   86400,
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("options(windows) = %#v\nwant %#v", o, want)
	}
	if _, ok := o["OnFailureResetPeriod"].(int); !ok {
		t.Error("OnFailureResetPeriod must be an int")
	}
	if d, err := time.ParseDuration(o["OnFailureDelayDuration"].(string)); err != nil || d != restartDelay {
		t.Errorf("OnFailureDelayDuration does not parse as %v: %v %v", restartDelay, d, err)
	}
	if deps := dependencies("windows"); deps != nil {
		t.Errorf("Windows dependencies must be service names; got %q", deps)
	}
}

func TestOptionsLinux(t *testing.T) {
	o := options("linux")
	if o["Restart"] != "on-failure" {
		t.Errorf("Restart = %v", o["Restart"])
	}
	if o["SystemdScript"] != systemdScript {
		t.Error("SystemdScript is not our unit template")
	}
	for _, k := range []string{"OnFailure", "StartType", "UserService", "LogOutput"} {
		if _, ok := o[k]; ok {
			t.Errorf("unexpected option %s on linux", k)
		}
	}
	deps := dependencies("linux")
	for _, want := range []string{"After=network-online.target", "Wants=network-online.target"} {
		if !slices.Contains(deps, want) {
			t.Errorf("dependencies lack %q: %q", want, deps)
		}
	}
	for _, want := range []string{"RestartSec=5s\n", "TimeoutStopSec=25s\n", "{{Restart}}", "ExecStart={{Path | cmdEscape}}{{range Arguments}} {{. | cmd}}{{end}}"} {
		if !strings.Contains(systemdScript, want) {
			t.Errorf("unit template lacks %q", want)
		}
	}
}

func TestControlUnknownAction(t *testing.T) {
	for _, action := range []string{"", "status", "Start", "reinstall", "install "} {
		err := Control(action, "c.toml")
		if !errors.Is(err, ErrUnknownAction) {
			t.Errorf("Control(%q) = %v, want ErrUnknownAction", action, err)
		}
		var se *Error
		if !errors.As(err, &se) || !strings.Contains(se.Hint, "install, uninstall, start, stop, restart") {
			t.Errorf("Control(%q): no usable hint: %v", action, err)
		}
	}
}

func TestStatusValue(t *testing.T) {
	// Read-only on the real service manager of this machine.
	st, err := Status("c.toml")
	switch st {
	case StatusRunning, StatusStopped, StatusNotInstalled:
		if err != nil {
			t.Errorf("status %q with error %v", st, err)
		}
	case StatusUnknown:
		t.Logf("status unknown: %v", err)
	default:
		t.Errorf("Status = %q", st)
	}
}

// fakeService is a service.Service that records the calls made to it.
type fakeService struct {
	platform string
	status   service.Status
	statErr  error
	errs     map[string]error // per method
	calls    []string
}

func (f *fakeService) call(name string) error {
	f.calls = append(f.calls, name)
	return f.errs[name]
}
func (f *fakeService) Run() error       { return f.call("Run") }
func (f *fakeService) Start() error     { return f.call("Start") }
func (f *fakeService) Stop() error      { return f.call("Stop") }
func (f *fakeService) Restart() error   { return f.call("Restart") }
func (f *fakeService) Install() error   { return f.call("Install") }
func (f *fakeService) Uninstall() error { return f.call("Uninstall") }
func (f *fakeService) Logger(chan<- error) (service.Logger, error) {
	return service.ConsoleLogger, nil
}
func (f *fakeService) SystemLogger(chan<- error) (service.Logger, error) {
	return service.ConsoleLogger, nil
}
func (f *fakeService) String() string   { return "fake" }
func (f *fakeService) Platform() string { return f.platform }
func (f *fakeService) Status() (service.Status, error) {
	return f.status, f.statErr
}

var _ service.Service = (*fakeService)(nil)

func TestControlActions(t *testing.T) {
	notInstalled := func() *fakeService {
		return &fakeService{platform: "linux-systemd", statErr: service.ErrNotInstalled}
	}
	running := func() *fakeService { return &fakeService{platform: "linux-systemd", status: service.StatusRunning} }
	stopped := func() *fakeService { return &fakeService{platform: "windows-service", status: service.StatusStopped} }
	tests := []struct {
		name    string
		svc     *fakeService
		action  string
		calls   []string
		wantErr error
	}{
		{"install", notInstalled(), "install", []string{"Install"}, nil},
		{"install twice", stopped(), "install", nil, ErrAlreadyInstalled},
		{"start not installed", notInstalled(), "start", nil, ErrNotInstalled},
		{"stop not installed", notInstalled(), "stop", nil, ErrNotInstalled},
		{"restart not installed", notInstalled(), "restart", nil, ErrNotInstalled},
		{"uninstall not installed", notInstalled(), "uninstall", nil, ErrNotInstalled},
		{"start stopped", stopped(), "start", []string{"Start"}, nil},
		{"start running is a no-op", running(), "start", nil, nil},
		{"stop running", running(), "stop", []string{"Stop"}, nil},
		{"stop stopped is a no-op", stopped(), "stop", nil, nil},
		{"restart running", running(), "restart", []string{"Restart"}, nil},
		{"restart stopped starts", stopped(), "restart", []string{"Start"}, nil},
		{"uninstall running stops first", running(), "uninstall", []string{"Stop", "Uninstall"}, nil},
		{"uninstall stopped", stopped(), "uninstall", []string{"Uninstall"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := control(tt.svc, tt.action, noSysV)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(tt.svc.calls, tt.calls) {
				t.Errorf("calls = %q, want %q", tt.svc.calls, tt.calls)
			}
			if err != nil && !strings.HasPrefix(err.Error(), tt.action+" service pwbi-agent: ") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestControlErrorHints(t *testing.T) {
	denied := &os.PathError{Op: "open", Path: "/etc/init.d/pwbi-agent", Err: os.ErrPermission}
	f := &fakeService{platform: "linux-systemd", statErr: service.ErrNotInstalled, errs: map[string]error{"Install": denied}}
	err := control(f, "install", noSysV)
	var se *Error
	if !errors.As(err, &se) || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("err = %v", err)
	}
	if runtime.GOOS == "windows" {
		if !strings.Contains(se.Hint, "Run as administrator") {
			t.Errorf("hint %q", se.Hint)
		}
	} else if !strings.Contains(se.Hint, "root") {
		t.Errorf("hint %q", se.Hint)
	}

	boom := errors.New("exit status 1")
	f = &fakeService{platform: "linux-systemd", status: service.StatusStopped, errs: map[string]error{"Start": boom}}
	err = control(f, "start", noSysV)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "journalctl -u pwbi-agent") && !strings.Contains(err.Error(), "root") {
		t.Errorf("start failure: %v", err)
	}
	if strings.ContainsAny(err.Error()[:1], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		t.Errorf("error starts with a capital: %v", err)
	}
}

func TestStatusMapping(t *testing.T) {
	root := tempDir(t)
	tests := []struct {
		name string
		svc  *fakeService
		want string
		err  bool
	}{
		{"running", &fakeService{platform: "linux-systemd", status: service.StatusRunning}, StatusRunning, false},
		{"stopped", &fakeService{platform: "windows-service", status: service.StatusStopped}, StatusStopped, false},
		{"not installed", &fakeService{platform: "windows-service", statErr: service.ErrNotInstalled}, StatusNotInstalled, false},
		{"systemd failed", &fakeService{platform: "linux-systemd", statErr: errors.New("service in failed state")}, StatusStopped, false},
		{"other error", &fakeService{platform: "windows-service", statErr: errors.New("access denied")}, StatusUnknown, true},
		{"sysv without script", &fakeService{platform: platformSysV, status: service.StatusRunning}, StatusNotInstalled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := status(tt.svc, root)
			if got != tt.want || (err != nil) != tt.err {
				t.Errorf("status = %q, %v; want %q (error %v)", got, err, tt.want, tt.err)
			}
		})
	}

	// SysV with the script: `service NAME status` exits 1 when stopped.
	if err := os.MkdirAll(filepath.Join(root, "init.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "init.d", Name), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := status(&fakeService{platform: platformSysV, statErr: errors.New("exit status 1")}, root)
	if got != StatusStopped || err != nil {
		t.Errorf("sysv stopped: %q %v", got, err)
	}
	got, err = status(&fakeService{platform: platformSysV, status: service.StatusRunning}, root)
	if got != StatusRunning || err != nil {
		t.Errorf("sysv running: %q %v", got, err)
	}
}

func TestUninstallRemovesSysVLinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SysV only")
	}
	root := t.TempDir()
	script := filepath.Join(root, "init.d", Name)
	mustMkdir(t, filepath.Dir(script))
	if err := os.WriteFile(script, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	var links []string
	for _, l := range []string{"rc0.d/K02", "rc1.d/K02", "rc6.d/K02", "rc2.d/S50", "rc3.d/S50", "rc4.d/S50", "rc5.d/S50"} {
		p := filepath.Join(root, l+Name)
		mustMkdir(t, filepath.Dir(p))
		if err := os.Symlink(script, p); err != nil {
			t.Fatal(err)
		}
		links = append(links, p)
	}
	other := filepath.Join(root, "rc2.d", "S50other")
	if err := os.Symlink("/etc/init.d/other", other); err != nil {
		t.Fatal(err)
	}
	f := &fakeService{platform: platformSysV, status: service.StatusStopped}
	if err := control(f, "uninstall", root); err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if _, err := os.Lstat(l); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there", l)
		}
	}
	if _, err := os.Lstat(other); err != nil {
		t.Errorf("another service's link was removed: %v", err)
	}
}

// noSysV is a SysV root that does not exist, for fake services.
var noSysV = filepath.Join(os.TempDir(), "pwbi-no-such-sysv-root")

// tempDir is t.TempDir without its cleanup failure under Wine 8, whose
// os.RemoveAll fails with "Invalid function" (toolchain.md §4).
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pwbi-service-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
