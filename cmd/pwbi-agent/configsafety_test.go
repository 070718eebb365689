//go:build unix

package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// Issue 10, through the real binary: what an unsafe config path (a FIFO, a
// symlink to /dev/zero, a file over 1 MiB) does at start and while the
// agent runs, and a config file written in two steps with a pause.

// unsafeConfigs are the things the config path may be replaced by, with
// the words the agent must use for each.
var unsafeConfigs = []struct {
	name   string
	create func(path string) error
	want   string
}{
	{"FIFO", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "is not a regular file (named pipe)"},
	{"symlink to /dev/zero", func(p string) error { return os.Symlink("/dev/zero", p) }, "is not a regular file (character device /dev/zero)"},
	{"file over 1 MiB", func(p string) error {
		return os.WriteFile(p, []byte("version = 1\n"+strings.Repeat("# padding\n", config.MaxFileSize/10)), 0o600)
	}, "is larger than 1 MiB"},
}

func needDevZero(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skipf("no /dev/zero: %v", err)
	}
}

// replaceConfig puts what create makes at path in one rename, as an
// administrator's tool (or mistake) would.
func replaceConfig(t *testing.T, path string, create func(string) error) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".config.toml.new")
	if err := create(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// (a) At start the agent refuses an unsafe config path at once: it exits
// non-zero with the reason on stderr, neither hanging (FIFO) nor running
// out of memory (/dev/zero); `config check` says the same.
func TestUnsafeConfigAtStart(t *testing.T) {
	needDevZero(t)
	for _, tc := range unsafeConfigs {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if err := os.Remove(e.cfgPath); err != nil {
				t.Fatal(err)
			}
			if err := tc.create(e.cfgPath); err != nil {
				t.Fatal(err)
			}
			p := e.start(t)
			select {
			case err := <-p.done:
				if code := exitCode(err); code <= 0 {
					t.Fatalf("exit code %d (%v), want non-zero", code, err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the agent did not exit: it blocks on the config file")
			}
			out := p.stderr.String()
			if want := "config file " + e.cfgPath + " " + tc.want; !strings.Contains(out, want) {
				t.Errorf("stderr lacks %q:\n%s", want, out)
			}
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
				t.Errorf("the agent panicked:\n%s", out)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			check, err := exec.CommandContext(ctx, agentBinary(t), "config", "check", "--config", e.cfgPath).CombinedOutput()
			if ctx.Err() != nil {
				t.Fatal("config check did not return")
			}
			if code := exitCode(err); code != 1 || !strings.Contains(string(check), tc.want) {
				t.Errorf("config check: exit %d, output:\n%s", code, check)
			}
		})
	}
}

// (b) A running agent whose config file is replaced by a FIFO, then by a
// symlink to /dev/zero, then by a file over 1 MiB keeps running on its
// settings, says what is wrong in /v1/status (config.error) and in the
// answer to POST /v1/reload, and still stops promptly on SIGTERM.
func TestUnsafeConfigWhileRunning(t *testing.T) {
	needDevZero(t)
	e := newEnv(t)
	p := e.start(t)
	testutil.WaitFor(t, "status", 60*time.Second, func() bool { _, err := e.status(t); return err == nil })

	for _, tc := range unsafeConfigs {
		replaceConfig(t, e.cfgPath, tc.create)
		var st localapi.Status
		testutil.WaitFor(t, "config.error for a "+tc.name, 30*time.Second, func() bool {
			var err error
			st, err = e.status(t)
			return err == nil && strings.Contains(st.Config.Error, tc.want)
		})
		if !strings.Contains(st.Config.Error, e.cfgPath) {
			t.Errorf("config.error does not name the file: %q", st.Config.Error)
		}
		if st.Config.Generation != 1 || st.AgentID != "e2e-pc" || !st.Upstream.Configured {
			t.Fatalf("the running settings changed after a %s: %+v", tc.name, st)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := localapi.NewClient(e.apiAddr, nil).Reload(ctx)
		cancel()
		if !errors.Is(err, localapi.ErrConfigRejected) || !strings.Contains(res.Error, tc.want) {
			t.Errorf("POST /v1/reload with a %s: %+v %v", tc.name, res, err)
		}
	}

	// Stop while the path is a FIFO: nothing may be stuck reading it.
	replaceConfig(t, e.cfgPath, unsafeConfigs[0].create)
	testutil.WaitFor(t, "config.error for the FIFO again", 30*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && strings.Contains(st.Config.Error, unsafeConfigs[0].want)
	})
	p.stop(t)
}

// (c) Issue 10: a tool writes the config file in two steps — the first
// half (a valid config without [checkout]), a 1.5 s pause, the rest — each
// with its own open/write/close. The half must never be applied: the
// checkout listener stays up and the tablet's token keeps working through
// the pause, and the generation moves exactly once, to the whole file.
func TestTwoStepConfigWrite(t *testing.T) {
	c := newCheckoutEnv(t)
	c.start(t)
	probeClient := &http.Client{Timeout: 5 * time.Second}
	// probe answers 404 for an unknown order while the gateway serves the
	// tablet; 401 if the tablet was removed; 0 if the listener is closed.
	probe := func() int {
		req, err := http.NewRequest(http.MethodGet, "http://"+c.addr+"/mokka/orders/none", nil)
		if err != nil {
			t.Error(err)
			return 0
		}
		req.Header.Set("Authorization", "Bearer "+firstTabletToken)
		resp, err := probeClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testutil.WaitFor(t, "checkout gateway up", 60*time.Second, func() bool { return probe() == 404 })
	if g := c.gen(t); g != 1 {
		t.Fatalf("initial generation %d", g)
	}

	// The whole file: the harness's config with [checkout] moved to the
	// end. The first half: everything before it.
	orig, err := os.ReadFile(c.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(orig)
	from, to := strings.Index(text, "[checkout]\n"), strings.Index(text, "[upstream]\n")
	if from < 0 || to < from {
		t.Fatalf("unexpected harness config:\n%s", text)
	}
	half := text[:from] + text[to:] + "# written by a two-step tool\n"
	rest := text[from:to]
	if cfg, err := config.Parse(c.cfgPath, []byte(half)); err != nil || cfg.Checkout.Enabled {
		t.Fatalf("the half must be a valid config without checkout for this test: %v", err)
	}

	var (
		mu       sync.Mutex
		probes   int
		failures []string
	)
	stop := make(chan struct{})
	probing := make(chan struct{})
	go func() {
		defer close(probing)
		for {
			select {
			case <-stop:
				return
			default:
			}
			code := probe()
			mu.Lock()
			probes++
			if code != 404 {
				what := "HTTP " + strconv.Itoa(code)
				if code == 0 {
					what = "no connection"
				}
				failures = append(failures, time.Now().Format("15:04:05.000")+": "+what)
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond) // probe pacing, not a wait for a condition
		}
	}()

	if err := os.WriteFile(c.cfgPath, []byte(half), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the tool's pause between its two writes
	f, err := os.OpenFile(c.cfgPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(rest); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	testutil.WaitFor(t, "the whole file applied", 30*time.Second, func() bool {
		st, err := c.status(t)
		return err == nil && st.Config.Generation >= 2
	})
	// Any reload still pending would come within the watcher's debounce
	// and settle time (2.5 s); asserting that none comes needs the wait.
	time.Sleep(4 * time.Second)
	close(stop)
	<-probing

	st, err := c.status(t)
	if err != nil {
		t.Fatal(err)
	}
	if st.Config.Generation != 2 || st.Config.Error != "" {
		t.Errorf("after the two-step write: generation %d (want exactly 2), error %q", st.Config.Generation, st.Config.Error)
	}
	if !st.Checkout.Enabled {
		t.Error("checkout disabled after the two-step write")
	}
	mu.Lock()
	defer mu.Unlock()
	if probes < 10 {
		t.Errorf("only %d probes: the listener was not watched", probes)
	}
	if len(failures) > 0 {
		t.Errorf("the checkout listener or the tablet went away %d times during the write: %v", len(failures), failures)
	}
}
