// Package service runs the PWBI Edge Agent under the operating system's
// service manager and manages its registration there (SPEC §2: install,
// uninstall, start, stop, restart, status). It wraps
// github.com/kardianos/service v1.3.0: the Windows Service Control Manager,
// systemd, and SysV init on Linux machines without systemd.
//
// Three rules shape it (reference/reliability-lessons.md §2 and §5):
//
//   - A service never relies on its working directory (Windows starts it in
//     System32): the registered command line carries the absolute executable
//     and configuration paths, and RunService switches to the executable's
//     directory on Windows.
//   - Start reports RUNNING at once; the agent opens its database and replays
//     its backlog in the background. Stop cancels the agent and waits at most
//     StopTimeout.
//   - An agent that ends by itself is a failure: the process exits non-zero
//     so that the recovery action (Windows) or Restart=on-failure (systemd)
//     starts it again.
//
// This package imports only agent/config (for the default path); it must not
// import agent or any part that runs, so that the CLI can call Control and
// Status without starting anything.
package service

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kardianos/service"

	"github.com/pwbi/edge-agent/agent/config"
)

// Name is the service's name for the service manager: the Windows service
// name, the systemd unit (pwbi-agent.service) and the SysV script.
const Name = "pwbi-agent"

const (
	displayName = "PWBI Edge Agent"
	// description is also systemd's Description=, which names the unit in
	// every "Started ..." line (kardianos passes no display name to its
	// systemd template), so it is short; the .deb's unit uses the same.
	description = "PWBI Edge Agent (Moka POS sync, Mokka checkout gateway)"
)

// restartDelay is how long the service manager waits before restarting a
// failed agent, on Windows (recovery action) and systemd (RestartSec) alike.
// Nothing is lost while it is down: Moka keeps the transactions and the
// buffer is on disk. 5 s keeps a crash loop cheap and a single crash short.
const restartDelay = 5 * time.Second

// failureResetPeriod is the Windows failure-count reset period: after a day
// without failures the count starts again from zero. Every failure uses the
// same action (restart), so it only shows up in `sc qfailure`.
const failureResetPeriod = 24 * time.Hour

// Status values returned by Status.
const (
	StatusRunning      = "running"
	StatusStopped      = "stopped"
	StatusNotInstalled = "not installed"
	StatusUnknown      = "unknown"
)

// Actions accepted by Control.
var Actions = []string{"install", "uninstall", "start", "stop", "restart"}

var (
	// ErrUnknownAction is returned by Control for an action not in Actions.
	ErrUnknownAction = errors.New("unknown service action")
	// ErrNotInstalled is returned by Control when the action needs an
	// installed service and there is none.
	ErrNotInstalled = errors.New("service is not installed")
	// ErrAlreadyInstalled is returned by Control("install") when the
	// service is installed already.
	ErrAlreadyInstalled = errors.New("service is already installed")
)

// executable returns the path of the running program. Tests replace it to
// install another binary than the test itself.
var executable = os.Executable

// Config returns the service definition for the agent reading configPath
// (config.DefaultPath() when empty). configPath is made absolute against the
// current directory, the one the user typed it in: the service itself runs
// elsewhere. The executable is the running program with symlinks resolved,
// and the working directory is the executable's directory.
func Config(configPath string) (*service.Config, error) {
	if configPath == "" {
		configPath = config.DefaultPath()
	}
	cfgPath, err := filepath.Abs(configPath)
	if err != nil {
		return nil, fmt.Errorf("absolute config path: %w", err)
	}
	exe, err := executablePath()
	if err != nil {
		return nil, err
	}
	return &service.Config{
		Name:             Name,
		DisplayName:      displayName,
		Description:      description,
		Executable:       exe,
		Arguments:        []string{"run", "--config", cfgPath},
		WorkingDirectory: filepath.Dir(exe),
		Dependencies:     dependencies(runtime.GOOS),
		Option:           options(runtime.GOOS),
	}, nil
}

// executablePath is the absolute path of the running program with symlinks
// resolved. Linux's os.Executable resolves them already (/proc/self/exe);
// resolving everywhere gives the same answer on every OS and makes the
// working directory the real file's directory. An installer that switches
// versions by repointing a symlink must therefore run install again.
func executablePath() (string, error) {
	exe, err := executable()
	if err != nil {
		return "", fmt.Errorf("locate executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	exe, err = filepath.Abs(exe)
	if err != nil {
		return "", fmt.Errorf("locate executable: %w", err)
	}
	return exe, nil
}

// dependencies lists what the service starts after. On Linux: the network
// being up (systemd; the line goes into [Unit] as is). On Windows nothing:
// the agent retries its connections itself, and a dependency on a service
// that is missing or disabled would stop ours from starting at all.
func dependencies(goos string) []string {
	if goos == "linux" {
		return []string{"After=network-online.target", "Wants=network-online.target"}
	}
	return nil
}

// options returns the kardianos options for goos. kardianos reads them with
// typed getters that silently fall back to the default on a wrong type, so
// the types below are the ones service_windows.go and
// service_systemd_linux.go read (string, bool, int).
func options(goos string) service.KeyValue {
	switch goos {
	case "windows":
		return service.KeyValue{
			"StartType": "automatic",
			// "Automatic (Delayed Start)": started about two minutes after
			// the boot-critical services. Agents that started with the
			// system were found stopped after reboots (elastic-agent #5710,
			// datadog-agent #1299, Graylog sidecar #425, netdata #19063);
			// delayed start is the fix they shipped. The price: after a
			// boot the tray and the tablets' checkout gateway wait up to
			// about two minutes for the agent, which a back-office PC
			// switched on before opening can afford.
			"DelayedAutoStart": true,
			// Without OnFailure kardianos sets no recovery action at all
			// (kardianos #401).
			"OnFailure":              "restart",
			"OnFailureDelayDuration": restartDelay.String(),
			"OnFailureResetPeriod":   int(failureResetPeriod / time.Second),
		}
	case "linux":
		return service.KeyValue{
			"Restart": "on-failure",
			// Our own unit template: kardianos's fixes RestartSec=120.
			"SystemdScript": systemdScript,
		}
	default:
		return service.KeyValue{}
	}
}

// systemdScript is the unit `pwbi-agent install` writes when systemd is the
// init system, rendered by kardianos's template engine (the keys are those
// its systemd Install passes). It is kardianos's built-in unit with:
// ConditionFileIsExecutable and WorkingDirectory written as is (systemd
// does not undo kardianos's \x20 escaping there, so a path with a space
// made the condition fail and the unit never start; ExecStart keeps it);
// RestartSec equal to the Windows restart delay instead of 120 s; no
// StartLimitInterval=5/StartLimitBurst=10 in [Service] (systemd's defaults,
// 5 starts in 10 s, are never reached with a 5 s delay, so it never gives
// up); and TimeoutStopSec a little above StopTimeout so that the agent's own
// deadline fires first and is logged. The .deb ships its own, hardened unit
// (installer/linux/pwbi-agent.service); this one is for tarball installs.
var systemdScript = `[Unit]
Description={{Description}}
ConditionFileIsExecutable={{Path}}
{{range Dependencies}}{{.}}
{{end}}
[Service]
Type=simple
ExecStart={{Path | cmdEscape}}{{range Arguments}} {{. | cmd}}{{end}}
{{if WorkingDirectory}}WorkingDirectory={{WorkingDirectory}}
{{end}}{{if UserName}}User={{UserName}}
{{end}}{{if LimitNOFILE}}LimitNOFILE={{LimitNOFILE}}
{{end}}{{if Restart}}Restart={{Restart}}
{{end}}{{if SuccessExitStatus}}SuccessExitStatus={{SuccessExitStatus}}
{{end}}RestartSec=` + restartDelay.String() + `
TimeoutStopSec=` + (defaultStopTimeout + 5*time.Second).String() + `
EnvironmentFile=-/etc/sysconfig/{{Name}}
{{range EnvVars}}{{.}}
{{end}}
[Install]
WantedBy=multi-user.target
`

// Interactive reports whether the program runs outside a service manager
// (from a console, a terminal or a test).
func Interactive() bool { return service.Interactive() }

// Error is a failed Control action. Hint, when set, tells a person what to
// do about it.
type Error struct {
	Action string
	Err    error
	Hint   string
}

func (e *Error) Error() string {
	msg := e.Action + " service " + Name + ": " + e.Err.Error()
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Control performs action (one of Actions) on the service defined by
// Config(configPath). start and stop succeed when the service already is
// in that state; uninstall stops a running service first. Errors are *Error
// with a hint, wrapping ErrUnknownAction, ErrNotInstalled,
// ErrAlreadyInstalled or the service manager's error.
func Control(action, configPath string) error {
	if !validAction(action) {
		return &Error{Action: action, Err: ErrUnknownAction, Hint: "use one of " + strings.Join(Actions, ", ")}
	}
	cfg, err := Config(configPath)
	if err != nil {
		return &Error{Action: action, Err: err}
	}
	s, err := newService(cfg, nopProgram{})
	if err != nil {
		return &Error{Action: action, Err: err}
	}
	err = control(s, action, sysvRoot)
	if action == "install" && delayedStartUnsupported(err) {
		// Wine: install as plain automatic rather than not at all.
		cfg.Option["DelayedAutoStart"] = false
		if s, err = newService(cfg, nopProgram{}); err != nil {
			return &Error{Action: action, Err: err}
		}
		err = control(s, action, sysvRoot)
	}
	return err
}

func validAction(action string) bool {
	for _, a := range Actions {
		if a == action {
			return true
		}
	}
	return false
}

func newService(cfg *service.Config, i service.Interface) (service.Service, error) {
	s, err := service.New(i, cfg)
	if err != nil {
		return nil, fmt.Errorf("service manager: %w", err)
	}
	return withStatus(s), nil
}

// control does action on s. root is where the SysV files live ("/etc").
func control(s service.Service, action, root string) error {
	fail := func(err error) error {
		hint := privilegeHint(err)
		if hint == "" && (action == "start" || action == "restart") {
			hint = "check the configuration with `pwbi-agent config check` and the service log: " + logHint(s.Platform())
		}
		return &Error{Action: action, Err: err, Hint: hint}
	}
	// A status that cannot be read does not prevent the action: the action
	// then reports its own error.
	st, _ := status(s, root)
	if action != "install" && st == StatusNotInstalled {
		return &Error{Action: action, Err: ErrNotInstalled, Hint: "install it first: pwbi-agent install"}
	}
	var err error
	switch action {
	case "install":
		if st == StatusRunning || st == StatusStopped {
			return &Error{Action: action, Err: ErrAlreadyInstalled, Hint: "to change it, uninstall it first: pwbi-agent uninstall"}
		}
		err = s.Install()
	case "uninstall":
		if st == StatusRunning {
			if err := s.Stop(); err != nil {
				return fail(fmt.Errorf("stop before uninstall: %w", err))
			}
		}
		err = s.Uninstall()
		if err == nil && s.Platform() == platformSysV {
			err = removeSysVLinks(root)
		}
	case "start":
		if st != StatusRunning {
			err = s.Start()
		}
	case "stop":
		if st != StatusStopped {
			err = s.Stop()
		}
	case "restart":
		if st == StatusStopped {
			// The Windows restart stops first and fails on a stopped
			// service (ERROR_SERVICE_NOT_ACTIVE).
			err = s.Start()
		} else {
			err = s.Restart()
		}
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// privilegeHint suggests elevation when err looks like missing rights.
// Service managers refuse most changes to unprivileged users; systemctl and
// the SysV script only report an exit status, so on Unix any failure by a
// non-root user gets the hint.
func privilegeHint(err error) string {
	if runtime.GOOS == "windows" {
		if errors.Is(err, os.ErrPermission) {
			return `run it from a command prompt opened with "Run as administrator"`
		}
		return ""
	}
	if errors.Is(err, os.ErrPermission) || os.Geteuid() != 0 {
		return "run it as root, e.g. with sudo"
	}
	return ""
}

// logHint says where the service's own log is on platform.
func logHint(platform string) string {
	switch platform {
	case "windows-service":
		return "Event Viewer, Windows Logs > Application, source " + Name
	case "linux-systemd":
		return "journalctl -u " + Name
	case platformSysV:
		return "/var/log/" + Name + ".err"
	}
	return "the system log"
}

// Status reports the service's state: StatusRunning, StatusStopped,
// StatusNotInstalled, or StatusUnknown with the reason.
func Status(configPath string) (string, error) {
	cfg, err := Config(configPath)
	if err != nil {
		return StatusUnknown, err
	}
	s, err := newService(cfg, nopProgram{})
	if err != nil {
		return StatusUnknown, err
	}
	return status(s, sysvRoot)
}

// platformSysV is kardianos's name for SysV init, the fallback it picks
// when no other init system is detected.
const platformSysV = "unix-systemv"

// sysvRoot is where SysV init keeps init.d and rc?.d.
var sysvRoot = "/etc"

func status(s service.Service, root string) (string, error) {
	sysv := s.Platform() == platformSysV
	if sysv {
		// kardianos asks `service NAME status`, which fails the same way
		// for "stopped" (the script exits 1) and "no such script".
		if _, err := os.Stat(filepath.Join(root, "init.d", Name)); errors.Is(err, os.ErrNotExist) {
			return StatusNotInstalled, nil
		}
	}
	st, err := s.Status()
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		return StatusNotInstalled, nil
	case err != nil && sysv:
		return StatusStopped, nil
	case err != nil && strings.Contains(err.Error(), "failed state"):
		// systemd: the unit is installed and not running because it
		// failed; `start` is the remedy, as for any stopped service.
		return StatusStopped, nil
	case err != nil:
		return StatusUnknown, fmt.Errorf("service status: %w", err)
	}
	switch st {
	case service.StatusRunning:
		return StatusRunning, nil
	case service.StatusStopped:
		return StatusStopped, nil
	}
	return StatusUnknown, nil
}

// removeSysVLinks removes the rc?.d links kardianos's SysV Install made;
// its Uninstall removes only the script (toolchain.md §3).
func removeSysVLinks(root string) error {
	var errs []error
	for _, link := range []string{"rc0.d/K02", "rc1.d/K02", "rc6.d/K02", "rc2.d/S50", "rc3.d/S50", "rc4.d/S50", "rc5.d/S50"} {
		p := filepath.Join(root, link+Name)
		if target, err := os.Readlink(p); err != nil || filepath.Base(target) != Name {
			continue // absent, or not ours
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// nopProgram is the program for Control and Status, which never run it.
type nopProgram struct{}

func (nopProgram) Start(service.Service) error { return nil }
func (nopProgram) Stop(service.Service) error  { return nil }
