//go:build windows

package service

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/testutil"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc/mgr"
)

// TestServiceLifecycle installs the real pwbi-agent service in the Windows
// SCM, checks what the SCM recorded (command line, start type, delayed
// start, recovery actions, Event Log source), then starts it, checks the
// local API, stops and uninstalls it. It changes the system, so it is opt-in
// and needs an Administrator prompt:
//
//	set PWBI_SERVICE_TEST=1
//	go test -run TestServiceLifecycle -v ./agent/service/
//
// Under Wine the start is skipped: Wine's services.exe runs services in
// session 1, so kardianos takes them for console programs and the start
// times out (toolchain.md §4).
func TestServiceLifecycle(t *testing.T) {
	if os.Getenv("PWBI_SERVICE_TEST") != "1" {
		t.Skip("set PWBI_SERVICE_TEST=1 (as Administrator) to install and run the real pwbi-agent service")
	}
	if st, err := Status(""); st != StatusNotInstalled {
		t.Fatalf("a pwbi-agent service exists already (status %q, %v); not touching it", st, err)
	}
	dir, err := os.MkdirTemp("", "pwbi-service-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "Program Files", "PWBI", "pwbi-agent.exe") // a space, as in the real path
	if exe := os.Getenv("PWBI_SERVICE_TEST_BIN"); exe != "" {
		// Prebuilt svcmain.exe (Wine has no Go toolchain).
		mustMkdir(t, filepath.Dir(bin))
		data, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	} else if out, err := exec.Command("go", "build", "-o", bin, "./testdata/svcmain").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := testutil.FreeAddr(t)
	cfgPath := filepath.Join(dir, "ProgramData", "config.toml")
	mustMkdir(t, filepath.Dir(cfgPath))
	cfgText := fmt.Sprintf("version = 1\n[agent]\nid = \"service-test\"\ndata_dir = %q\n[moka]\nenabled = false\n[local_api]\nlisten = %q\n",
		filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	setExecutable(t, bin)
	t.Cleanup(func() {
		if err := Control("uninstall", cfgPath); err != nil && !errors.Is(err, ErrNotInstalled) {
			t.Errorf("cleanup: %v", err)
		}
	})

	if err := Control("install", cfgPath); err != nil {
		t.Fatal(err)
	}
	if st, err := Status(cfgPath); st != StatusStopped {
		t.Fatalf("status after install %q (%v)", st, err)
	}
	checkSCMConfig(t, bin, cfgPath)

	if underWine() {
		t.Log("Wine: start not attempted (services run in session 1 there)")
	} else {
		start := time.Now()
		if err := Control("start", cfgPath); err != nil {
			t.Fatal(err)
		}
		t.Logf("start returned after %v", time.Since(start).Round(time.Millisecond))
		if st, err := Status(cfgPath); st != StatusRunning {
			t.Fatalf("status after start %q (%v)", st, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/v1/status")
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("local API: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // polling the agent
		}
		start = time.Now()
		if err := Control("stop", cfgPath); err != nil {
			t.Fatal(err)
		}
		t.Logf("stop returned after %v", time.Since(start).Round(time.Millisecond))
		if st, err := Status(cfgPath); st != StatusStopped {
			t.Fatalf("status after stop %q (%v)", st, err)
		}
	}

	if err := Control("uninstall", cfgPath); err != nil {
		t.Fatal(err)
	}
	if st, err := Status(cfgPath); st != StatusNotInstalled {
		t.Errorf("status after uninstall %q (%v)", st, err)
	}
}

func checkSCMConfig(t *testing.T, bin, cfgPath string) {
	t.Helper()
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(Name)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if underWine() {
		// Wine 8 knows no SERVICE_CONFIG_DELAYED_AUTO_START_INFO ("Invalid
		// level"), which mgr's Config queries; read what the SCM stored.
		k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Services\`+Name, registry.QUERY_VALUE)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		image, _, err := k.GetStringValue("ImagePath")
		if err != nil {
			t.Fatal(err)
		}
		start, _, err := k.GetIntegerValue("Start")
		if err != nil {
			t.Fatal(err)
		}
		delayed, _, _ := k.GetIntegerValue("DelayedAutostart")
		t.Logf("registry: ImagePath %s, Start %d, DelayedAutostart %d (Wine cannot set it)", image, start, delayed)
		if want := syscall.EscapeArg(bin) + " run --config " + syscall.EscapeArg(cfgPath); image != want {
			t.Errorf("ImagePath %s, want %s", image, want)
		}
		if start != mgr.StartAutomatic {
			t.Errorf("Start %d, want %d (automatic)", start, mgr.StartAutomatic)
		}
	} else {
		c, err := s.Config()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("SCM: ImagePath %s, StartType %d, DelayedAutoStart %v, account %q", c.BinaryPathName, c.StartType, c.DelayedAutoStart, c.ServiceStartName)
		if want := syscall.EscapeArg(bin) + " run --config " + syscall.EscapeArg(cfgPath); c.BinaryPathName != want {
			t.Errorf("ImagePath %s, want %s", c.BinaryPathName, want)
		}
		if c.StartType != mgr.StartAutomatic || !c.DelayedAutoStart {
			t.Errorf("start type %d, delayed %v; want automatic (delayed)", c.StartType, c.DelayedAutoStart)
		}
		if c.DisplayName != displayName || c.Description != description {
			t.Errorf("names %q %q", c.DisplayName, c.Description)
		}
	}
	if underWine() {
		// Wine 8 accepts the failure actions without storing them and
		// cannot query them ("Invalid level").
		t.Log("Wine: recovery actions not checked")
	} else {
		checkRecovery(t, s)
	}
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Services\EventLog\Application\`+Name, registry.QUERY_VALUE)
	if err != nil {
		t.Errorf("no Event Log source: %v", err)
	} else {
		k.Close()
	}
}

func checkRecovery(t *testing.T, s *mgr.Service) {
	t.Helper()
	actions, err := s.RecoveryActions()
	if err != nil {
		t.Fatal(err)
	}
	reset, err := s.ResetPeriod()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SCM: recovery actions %+v, reset period %d s", actions, reset)
	if len(actions) != 1 || actions[0].Type != mgr.ServiceRestart || actions[0].Delay != restartDelay {
		t.Errorf("recovery actions %+v, want one restart after %v", actions, restartDelay)
	}
	if reset != 86400 {
		t.Errorf("reset period %d, want 86400", reset)
	}
}

func underWine() bool {
	k, err := registry.OpenKey(registry.CURRENT_USER, `Software\Wine`, registry.QUERY_VALUE)
	if err != nil {
		return false
	}
	k.Close()
	return true
}
