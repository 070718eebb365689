//go:build linux

package service

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kardianos/service"

	"github.com/pwbi/edge-agent/internal/testutil"
)

// TestServiceLifecycle installs, starts, restarts, stops and uninstalls the
// real pwbi-agent service through this machine's service manager (SysV or
// systemd, whichever kardianos detects), running the agent as
// testdata/svcmain wires it: agent.Run under RunService. It changes the
// system (/etc/init.d or /etc/systemd/system), so it is opt-in and needs
// root:
//
//	sudo PWBI_SERVICE_TEST=1 go test -run TestServiceLifecycle -v ./agent/service/
//
// PWBI_SERVICE_TEST_BIN may name a prebuilt svcmain (for a machine without
// Go, e.g. a systemd-nspawn container). Under systemd the test also kills
// the agent with SIGKILL and checks that Restart=on-failure brings it back.
// It refuses to run when a pwbi-agent service is installed already.
func TestServiceLifecycle(t *testing.T) {
	if os.Getenv("PWBI_SERVICE_TEST") != "1" {
		t.Skip("set PWBI_SERVICE_TEST=1 (as root) to install and run the real pwbi-agent service")
	}
	if os.Geteuid() != 0 {
		t.Skip("installing a service needs root")
	}
	if st, err := Status(""); st != StatusNotInstalled {
		t.Fatalf("a pwbi-agent service exists already (status %q, %v); not touching it", st, err)
	}
	t.Logf("service manager: %s", service.Platform())

	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "pwbi-agent")
	if pre := os.Getenv("PWBI_SERVICE_TEST_BIN"); pre != "" {
		data, err := os.ReadFile(pre)
		if err != nil {
			t.Fatal(err)
		}
		mustMkdir(t, filepath.Dir(bin))
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	} else if out, err := exec.Command("go", "build", "-o", bin, "./testdata/svcmain").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := testutil.FreeAddr(t)
	cfgPath := filepath.Join(dir, "etc", "config.toml")
	mustMkdir(t, filepath.Dir(cfgPath))
	cfgText := fmt.Sprintf(`version = 1
[agent]
id = "service-test"
data_dir = %q
[moka]
enabled = false
[local_api]
listen = %q
`, filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	setExecutable(t, bin)
	systemd := service.Platform() == "linux-systemd"
	errLog := newServiceLog(t, systemd)
	if _, err := os.Stat("/var/run/" + Name + ".pid"); errors.Is(err, os.ErrNotExist) {
		// SysV: the script leaves it behind when the agent ends by itself.
		t.Cleanup(func() { os.Remove("/var/run/" + Name + ".pid") })
	}
	t.Cleanup(func() {
		if err := Control("uninstall", cfgPath); err != nil && !errors.Is(err, ErrNotInstalled) {
			t.Errorf("cleanup: %v", err)
		}
	})

	// install
	must(t, Control("install", cfgPath))
	wantStatus(t, cfgPath, StatusStopped)
	if err := Control("install", cfgPath); !errors.Is(err, ErrAlreadyInstalled) {
		t.Errorf("second install: %v, want ErrAlreadyInstalled", err)
	}

	// start: running, the local API answers, the command line and the
	// working directory are the ones Config promises.
	must(t, Control("start", cfgPath))
	waitStatus(t, cfgPath, StatusRunning)
	waitAPI(t, addr)
	pid := agentPID(t, bin)
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if got, want := string(cmdline), strings.Join([]string{bin, "run", "--config", cfgPath}, "\x00")+"\x00"; got != want {
		t.Errorf("command line %q, want %q", got, want)
	}
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != filepath.Dir(bin) {
		t.Errorf("working directory %q, want %q", cwd, filepath.Dir(bin))
	}
	must(t, Control("start", cfgPath)) // already running: no-op
	if p := agentPID(t, bin); p != pid {
		t.Errorf("start of a running service started another process (%d, was %d)", p, pid)
	}

	// restart: a new process that answers again.
	must(t, Control("restart", cfgPath))
	waitStatus(t, cfgPath, StatusRunning)
	waitAPI(t, addr)
	if p := agentPID(t, bin); p == pid {
		t.Error("restart kept the same process")
	}

	// stop: clean, within the SysV script's 10 s.
	start := time.Now()
	must(t, Control("stop", cfgPath))
	t.Logf("stop took %v", time.Since(start).Round(time.Millisecond))
	wantStatus(t, cfgPath, StatusStopped)
	if _, err := http.Get("http://" + addr + "/v1/status"); err == nil {
		t.Error("local API still answers after stop")
	}
	must(t, Control("stop", cfgPath)) // already stopped: no-op
	if log := errLog.read(); log != "" {
		for _, want := range []string{`msg="Service starting"`, `msg="Service started"`, `msg="Agent started"`, `msg="Service stopping"`, `msg="Agent stopped"`, `msg="Service stopped"`} {
			if !strings.Contains(log, want) {
				t.Errorf("service log lacks %s", want)
			}
		}
		t.Logf("service log:\n%s", log)
	}

	if systemd {
		// Restart=on-failure: a crash brings the agent back after
		// RestartSec, without anyone running start.
		must(t, Control("start", cfgPath))
		waitAPI(t, addr)
		pid := agentPID(t, bin)
		killed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, "a new agent process after SIGKILL", 30*time.Second, func() bool {
			p, ok := findPID(bin)
			return ok && p != pid
		})
		waitAPI(t, addr)
		t.Logf("SIGKILL: agent back after %v", time.Since(killed).Round(100*time.Millisecond))
		out, _ := exec.Command("systemctl", "show", Name, "-p", "Restart", "-p", "RestartUSec", "-p", "NRestarts", "-p", "TimeoutStopUSec").CombinedOutput()
		t.Logf("systemctl show:\n%s", out)
		must(t, Control("stop", cfgPath))
		errLog.read()
	}

	// An agent that fails by itself ends the process with an error (here:
	// its local API port is taken).
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	must(t, Control("start", cfgPath))
	if systemd {
		// The non-zero exit makes systemd restart it until it works.
		failures := 0
		testutil.WaitFor(t, "two failed starts", 60*time.Second, func() bool {
			failures += strings.Count(errLog.read(), `msg="Service failed"`)
			return failures >= 2
		})
		ln.Close()
		waitAPI(t, addr)
		t.Logf("failed %d times, then recovered by itself once the port was free", failures)
		must(t, Control("stop", cfgPath))
	} else {
		// SysV does not restart anything: the service is just stopped.
		waitStatus(t, cfgPath, StatusStopped)
		ln.Close()
	}
	if log := errLog.read(); log != "" && !systemd {
		if !strings.Contains(log, `msg="Service failed"`) || !strings.Contains(log, "svcmain: ") {
			t.Errorf("no failure in the service log:\n%s", log)
		}
		t.Logf("service log after the failure:\n%s", log)
	}

	// uninstall: gone, with no SysV leftovers.
	must(t, Control("uninstall", cfgPath))
	wantStatus(t, cfgPath, StatusNotInstalled)
	if service.Platform() == platformSysV {
		links, _ := filepath.Glob("/etc/rc?.d/[SK][0-9][0-9]" + Name)
		if len(links) > 0 {
			t.Errorf("links left behind: %q", links)
		}
	}
	if err := Control("uninstall", cfgPath); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("second uninstall: %v, want ErrNotInstalled", err)
	}
}

func wantStatus(t *testing.T, cfgPath, want string) {
	t.Helper()
	if st, err := Status(cfgPath); st != want {
		t.Fatalf("status %q (%v), want %q", st, err, want)
	}
}

func waitStatus(t *testing.T, cfgPath, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := Status(cfgPath)
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %q (%v), want %q", st, err, want)
		}
		time.Sleep(100 * time.Millisecond) // polling the service manager
	}
}

func waitAPI(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v1/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/status: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // polling the agent
	}
}

// agentPID finds the process running bin.
func agentPID(t *testing.T, bin string) int {
	t.Helper()
	pid, ok := findPID(bin)
	if !ok {
		t.Fatalf("no process runs %s", bin)
	}
	return pid
}

func findPID(bin string) (int, bool) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe == bin {
			return pid, true
		}
	}
	return 0, false
}

// serviceLog reads the service's output: the journal under systemd, the
// SysV script's /var/log/pwbi-agent.err otherwise.
type serviceLog struct {
	systemd bool
	tail    *logTail
	seen    int
}

func newServiceLog(t *testing.T, systemd bool) *serviceLog {
	l := &serviceLog{systemd: systemd}
	if systemd {
		l.seen = len(l.journal())
	} else {
		l.tail = newLogTail(t, "/var/log/"+Name+".err")
	}
	return l
}

func (l *serviceLog) journal() string {
	out, _ := exec.Command("journalctl", "-u", Name, "-o", "cat", "--no-pager").Output()
	return string(out)
}

// read returns what was logged since the last read.
func (l *serviceLog) read() string {
	if !l.systemd {
		return l.tail.read()
	}
	j := l.journal()
	if len(j) < l.seen {
		return ""
	}
	s := strings.TrimSpace(j[l.seen:])
	l.seen = len(j)
	return s
}

// logTail reads what is appended to a file during the test, and
// removes the file at the end if the test created it.
type logTail struct {
	path   string
	offset int64
}

func newLogTail(t *testing.T, path string) *logTail {
	l := &logTail{path: path}
	if fi, err := os.Stat(path); err == nil {
		l.offset = fi.Size()
	} else {
		t.Cleanup(func() { os.Remove(path) })
		if strings.HasSuffix(path, ".err") {
			t.Cleanup(func() { os.Remove(strings.TrimSuffix(path, ".err") + ".log") })
		}
	}
	return l
}

// read returns what was appended since the last read.
func (l *logTail) read() string {
	b, err := os.ReadFile(l.path)
	if err != nil || int64(len(b)) < l.offset {
		return ""
	}
	s := string(bytes.TrimSpace(b[l.offset:]))
	l.offset = int64(len(b))
	return s
}
