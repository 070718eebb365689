package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// These tests build the real binary and run it as a technician would.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func agentBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pwbi-agent-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "pwbi-agent")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			// The binary under test runs with the race detector too.
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	// The tests read the English texts: the binary's agent.language is
	// "auto" (the locale) unless a test's config says otherwise.
	os.Setenv("LC_ALL", "C.UTF-8")
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type testEnv struct {
	dir, cfgPath, dataDir, apiAddr string
	up                             *upstreamfake.Server
}

const upstreamToken = "tok-e2e-secret-value"

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	return newEnvWith(t, "[moka]\nenabled = false\n")
}

// newEnvWith writes a config with the given extra sections (a [moka]
// section is required; [checkout] and others may follow it). The [agent],
// [upstream] and [local_api] sections are the harness's.
func newEnvWith(t testing.TB, sections string) *testEnv {
	t.Helper()
	e := &testEnv{dir: t.TempDir()}
	e.dataDir = filepath.Join(e.dir, "data")
	e.apiAddr = testutil.FreeAddr(t)
	e.up = upstreamfake.NewServer(t, upstreamfake.Options{Token: upstreamToken})
	e.cfgPath = filepath.Join(e.dir, "config.toml")
	cfg := fmt.Sprintf(`version = 1
[agent]
id = "e2e-pc"
data_dir = "data"
log_level = "debug"
%s
[upstream]
url = %q
token_file = "upstream.token"
batch_size = 200
flush_interval = "200ms"
timeout = "5s"
[local_api]
listen = %q
`, sections, e.up.URL(), e.apiAddr)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "upstream.token"), []byte(upstreamToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// seed puts n records into the agent's database before it starts.
func (e *testEnv) seed(t testing.TB, n int) {
	t.Helper()
	if err := os.MkdirAll(e.dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Path: filepath.Join(e.dataDir, "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := 0; i < n; i += 500 {
		var in []store.Input
		for j := i; j < i+500 && j < n; j++ {
			// About 800 bytes, the size of a real unified transaction.
			data := fmt.Sprintf(`{"external_id":"T%06d","source_system":"moka","business_id":"b1","outlet_id":"o1",`+
				`"receipt_no":"INV%06d","status":"completed","currency":"IDR","amount":"%d.50","subtotal":"136364",`+
				`"tax_amount":"13636","service_charge_amount":"0","discount_amount":"0","refund_amount":"0",`+
				`"payment_method":"cash","timestamp":"2025-12-26T10:30:00+07:00","business_date":"2025-12-26","items":[`+
				`{"name":"Es Kopi Susu Gula Aren","variant":"Large","sku":"","quantity":"2","unit_price":"25000","total":"50000","discount_amount":"0","modifiers":[{"name":"Extra shot","price":"5000"}]},`+
				`{"name":"Nasi Goreng Spésial","variant":"","sku":"NG-01","quantity":"1","unit_price":"45000","total":"45000","discount_amount":"0","modifiers":[]},`+
				`{"name":"Teh Tarik","variant":"Regular","sku":"","quantity":"3","unit_price":"18000","total":"54000","discount_amount":"0","modifiers":[]}]}`, j, j, 150000+j)
			in = append(in, store.Input{Kind: store.KindTransaction, Key: fmt.Sprintf("moka/b1/o1/T%06d", j), Data: json.RawMessage(data)})
		}
		if _, err := st.Append(in, nil); err != nil {
			t.Fatal(err)
		}
	}
}

type proc struct {
	cmd    *exec.Cmd
	stderr *testutil.SyncBuffer
	done   chan error
}

func (e *testEnv) start(t testing.TB) *proc {
	t.Helper()
	p := &proc{stderr: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(agentBinary(t), "run", "--config", e.cfgPath)
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", p.stderr.String())
		}
	})
	return p
}

// stop stops the agent as the service manager does (SIGTERM) and checks
// that it stops cleanly: exit status 0 within 30 s, and "Agent stopped"
// in its log.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not stop within 30 s of SIGTERM")
	}
	if out := p.stderr.String(); !strings.Contains(out, "Agent stopped") {
		t.Fatalf("no clean stop in the log:\n%s", out)
	}
}

// client is a local API client of the agent with a generous timeout (the
// client's default is 10 s): many callers take one snapshot and judge it,
// and a loaded CI machine running the -race binary can take seconds to
// answer. An agent that is not listening is refused at once anyway.
func (e *testEnv) client() *localapi.Client {
	return localapi.NewClient(e.apiAddr, &http.Client{Timeout: 30 * time.Second})
}

func (e *testEnv) status(t testing.TB) (localapi.Status, error) {
	return e.client().Status(context.Background())
}

func TestRunStatusAndCleanStop(t *testing.T) {
	e := newEnv(t)
	e.seed(t, 1000)
	p := e.start(t)

	var st localapi.Status
	testutil.WaitFor(t, "status", 60*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil
	})
	if st.Version == "" || st.AgentID != "e2e-pc" || st.Config.Generation != 1 || st.Config.Error != "" {
		t.Fatalf("status: %+v", st)
	}
	if !strings.HasSuffix(st.Config.Path, "config.toml") || !filepath.IsAbs(st.Config.Path) {
		t.Errorf("config path %q", st.Config.Path)
	}
	if st.Moka.Enabled || st.Checkout.Enabled || !st.Upstream.Configured {
		t.Errorf("feature flags: %+v", st)
	}

	// The seeded backlog drains to the upstream, in order.
	testutil.WaitFor(t, "backlog delivered", 60*time.Second, func() bool { return len(e.up.Records()) >= 1000 })
	recs := e.up.Records()
	for i, r := range recs {
		if want := fmt.Sprintf("moka/b1/o1/T%06d", i); r.Key != want || (i > 0 && r.Seq <= recs[i-1].Seq) {
			t.Fatalf("record %d is %s seq %d: not in order", i, r.Key, r.Seq)
		}
	}
	if e.up.OrderViolations() != 0 {
		t.Fatal("order violations")
	}
	testutil.WaitFor(t, "queue empty and online", 60*time.Second, func() bool {
		st, _ = e.status(t)
		return st.Queue.Pending == 0 && st.Upstream.Online && st.State == localapi.StateOK
	})
	raw := mustGet(t, "http://"+e.apiAddr+"/v1/status")
	if strings.Contains(raw, upstreamToken) {
		t.Fatal("status leaks the upstream token")
	}

	// Sync now through the API works against the real binary.
	if err := localapi.NewClient(e.apiAddr, nil).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}

	p.stop(t)
	out := p.stderr.String()
	if strings.Contains(out, upstreamToken) {
		t.Error("log leaks the upstream token")
	}
	logFile, err := os.ReadFile(filepath.Join(e.dataDir, "logs", "agent.log"))
	if err != nil {
		t.Fatalf("log file: %v", err)
	}
	if !bytes.Contains(logFile, []byte(`"msg":"Agent started"`)) || bytes.Contains(logFile, []byte(upstreamToken)) {
		t.Errorf("log file content unexpected:\n%s", logFile)
	}
}

// TestKill9WhileForwarding kills the agent hard, repeatedly, while it sends a
// backlog to a slow upstream; after the last restart every record must have
// arrived, in order, at least once.
func TestKill9WhileForwarding(t *testing.T) {
	const n = 5000
	e := newEnv(t)
	e.seed(t, n)
	e.up.SetDelay(30 * time.Millisecond)

	for round := 0; round < 4; round++ {
		p := e.start(t)
		before := len(e.up.Records())
		testutil.WaitFor(t, "some progress", 60*time.Second, func() bool {
			return len(e.up.Records()) > before || len(e.up.Records()) >= n
		})
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
	}
	e.up.SetDelay(0)
	e.start(t)
	testutil.WaitFor(t, "all records delivered", 120*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && st.Queue.Pending == 0
	})
	seen := map[string]bool{}
	var last uint64
	for _, r := range e.up.Records() {
		if r.Seq < last {
			// A retry after a crash may resend a batch (at least once), but
			// never an older record after a newer one within the new stream.
			if !seen[r.Key] {
				t.Fatalf("record %s (seq %d) arrived after seq %d and was never sent before", r.Key, r.Seq, last)
			}
		}
		if r.Seq > last {
			last = r.Seq
		}
		seen[r.Key] = true
	}
	for i := 0; i < n; i++ {
		if k := fmt.Sprintf("moka/b1/o1/T%06d", i); !seen[k] {
			t.Fatalf("record %s lost", k)
		}
	}
	t.Logf("%d records accepted for %d distinct (duplicates from crashes: %d)", len(e.up.Records()), n, len(e.up.Records())-n)
}

func TestConfigCheck(t *testing.T) {
	e := newEnv(t)
	out, err := exec.Command(agentBinary(t), "config", "check", "--config", e.cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("config check of a good file: %v\n%s", err, out)
	}
	bad := filepath.Join(e.dir, "bad.toml")
	os.WriteFile(bad, []byte("version = 1\n[local_api]\nlisten = \"0.0.0.0:8687\"\n[moka]\npoll_intervall = \"5m\"\n"), 0o600)
	out, err = exec.Command(agentBinary(t), "config", "check", "--config", bad).CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit code %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"bad.toml:3", "local_api.listen", "bad.toml:5", "moka.poll_intervall"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestExample(t *testing.T) {
	// The shipped example must pass `config check` as it is.
	out, err := exec.Command(agentBinary(t), "config", "check", "--config", "../../config.example.toml").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err = exec.Command(agentBinary(t), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "pwbi-agent ") {
		t.Fatalf("version: %v %s", err, out)
	}
	out, err = exec.Command(agentBinary(t), "no-such-command").CombinedOutput()
	if exitCode(err) != 2 || !strings.Contains(string(out), "Usage") {
		t.Fatalf("unknown command: %v %s", err, out)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func mustGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// An error page is no page: a caller checking what a body lacks (no
	// secret in it) would pass on one.
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

func runCLI(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	return exec.Command(agentBinary(t), args...).CombinedOutput()
}
