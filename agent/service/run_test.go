package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/testutil"
)

// fakeOSLog is a service.Logger recording its lines.
type fakeOSLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *fakeOSLog) add(level string, v ...any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprint(v...))
	return nil
}
func (l *fakeOSLog) Error(v ...any) error              { return l.add("E", v...) }
func (l *fakeOSLog) Warning(v ...any) error            { return l.add("W", v...) }
func (l *fakeOSLog) Info(v ...any) error               { return l.add("I", v...) }
func (l *fakeOSLog) Errorf(f string, a ...any) error   { return l.add("E", fmt.Sprintf(f, a...)) }
func (l *fakeOSLog) Warningf(f string, a ...any) error { return l.add("W", fmt.Sprintf(f, a...)) }
func (l *fakeOSLog) Infof(f string, a ...any) error    { return l.add("I", fmt.Sprintf(f, a...)) }

func (l *fakeOSLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

type harness struct {
	p     *program
	logs  *testutil.SyncBuffer
	osLog *fakeOSLog
}

func newHarness(t *testing.T, stopTimeout time.Duration, fn func(ctx context.Context) error) *harness {
	t.Helper()
	h := &harness{logs: &testutil.SyncBuffer{}, osLog: &fakeOSLog{}}
	h.p = newProgram(fn, slog.New(slog.NewTextHandler(h.logs, nil)))
	h.p.stopTimeout = stopTimeout
	h.p.osLog = h.osLog
	h.p.exit = func(code int) { t.Errorf("unexpected exit(%d)", code) }
	return h
}

// wantLogged checks that each message is in both the slog output and the
// system log.
func (h *harness) wantLogged(t *testing.T, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if !strings.Contains(h.logs.String(), `msg="`+m+`"`) {
			t.Errorf("slog lacks %q:\n%s", m, h.logs)
		}
		if !strings.Contains(h.osLog.text(), "pwbi-agent: "+m) {
			t.Errorf("system log lacks %q:\n%s", m, h.osLog.text())
		}
	}
}

// TestStartReturnsAtOnce: Start must not wait for the agent, which may
// spend a long time opening its database.
func TestStartReturnsAtOnce(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	h := newHarness(t, 5*time.Second, func(ctx context.Context) error {
		close(entered)
		<-release // "opening the database"
		<-ctx.Done()
		return ctx.Err()
	})
	if err := h.p.Start(nil); err != nil {
		t.Fatal(err)
	}
	// Start has returned although fn is blocked.
	<-entered
	h.wantLogged(t, "Service started")
	close(release)
	if err := h.p.Stop(nil); err != nil {
		t.Fatal(err)
	}
	if err := h.p.result(); err != nil {
		t.Errorf("result after a clean stop: %v", err)
	}
	h.wantLogged(t, "Service stopping", "Service stopped")
}

func TestStopCancelsAndWaits(t *testing.T) {
	var returned bool
	h := newHarness(t, 10*time.Second, func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // a short drain: Stop must wait for it
		returned = true
		return nil
	})
	h.p.Start(nil)
	if err := h.p.Stop(nil); err != nil {
		t.Fatal(err)
	}
	if !returned { // written before done is closed, read after Stop saw it
		t.Fatal("Stop returned before the agent")
	}
	if err := h.p.result(); err != nil {
		t.Errorf("result: %v", err)
	}
}

// TestStopTimeout: an agent that ignores cancellation holds Stop for
// stopTimeout and no longer.
func TestStopTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	h := newHarness(t, timeout, func(ctx context.Context) error {
		<-release // ignores ctx
		return nil
	})
	h.p.Start(nil)
	start := time.Now()
	if err := h.p.Stop(nil); err != nil {
		t.Fatalf("Stop must not fail (Windows would report a failed stop): %v", err)
	}
	if d := time.Since(start); d < timeout || d > timeout+5*time.Second {
		t.Errorf("Stop took %v, want about %v", d, timeout)
	}
	err := h.p.result()
	if !errors.Is(err, ErrStopTimeout) {
		t.Errorf("result = %v, want ErrStopTimeout", err)
	}
	h.wantLogged(t, "Service stopping", "Service stop timed out")
}

// TestFailureExits: under the Windows SCM an agent that fails by itself
// makes the process exit(1) without reporting STOPPED, so the recovery
// action applies.
func TestFailureExits(t *testing.T) {
	boom := errors.New("open store: disk full")
	h := newHarness(t, time.Second, func(ctx context.Context) error { return boom })
	exited := make(chan int, 1)
	h.p.exitOnFailure = true
	h.p.exit = func(code int) { exited <- code }
	h.p.Start(nil)
	select {
	case code := <-exited:
		if code == 0 {
			t.Error("exit status 0 after a failure")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after the agent failed")
	}
	h.wantLogged(t, "Service failed")
	if !strings.Contains(h.osLog.text(), "disk full") || !strings.Contains(h.logs.String(), "disk full") {
		t.Errorf("the error itself is not logged:\n%s\n%s", h.logs, h.osLog.text())
	}
}

// TestFailureReturns: elsewhere the failure ends the wait (kardianos's
// RunWait, or the foreground loop) and RunService returns the error.
func TestFailureReturns(t *testing.T) {
	boom := errors.New("load config: no such file")
	h := newHarness(t, time.Second, func(ctx context.Context) error { return boom })
	err := runForeground(h.p, make(chan os.Signal))
	if !errors.Is(err, boom) {
		t.Fatalf("runForeground = %v, want %v", err, boom)
	}
	h.wantLogged(t, "Service started", "Service failed")
	if strings.Contains(h.logs.String(), "Service stopping") {
		t.Error("a failed agent is not stopped again")
	}
}

func TestUnexpectedNilIsFailure(t *testing.T) {
	h := newHarness(t, time.Second, func(ctx context.Context) error { return nil })
	err := runForeground(h.p, make(chan os.Signal))
	if !errors.Is(err, ErrExitedUnexpectedly) {
		t.Fatalf("runForeground = %v, want ErrExitedUnexpectedly", err)
	}
}

func TestForegroundSignal(t *testing.T) {
	h := newHarness(t, 5*time.Second, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err() // context.Canceled is a clean stop
	})
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	if err := runForeground(h.p, sigs); err != nil {
		t.Fatalf("runForeground = %v", err)
	}
	h.wantLogged(t, "Service started", "Service stopping", "Service stopped")
}

func TestStopReportsShutdownError(t *testing.T) {
	closeErr := errors.New("close store: input/output error")
	h := newHarness(t, 5*time.Second, func(ctx context.Context) error {
		<-ctx.Done()
		return closeErr
	})
	h.p.Start(nil)
	h.p.Stop(nil)
	if err := h.p.result(); !errors.Is(err, closeErr) {
		t.Errorf("result = %v, want %v", err, closeErr)
	}
	h.wantLogged(t, "Service stopped with an error")
}

// TestRunServiceForeground runs the public entry point the way a console
// run does (the test process is interactive).
func TestRunServiceForeground(t *testing.T) {
	if !Interactive() {
		t.Skip("the test process runs under a service manager")
	}
	boom := errors.New("boom")
	var logs testutil.SyncBuffer
	err := RunService("c.toml", slog.New(slog.NewTextHandler(&logs, nil)), func(ctx context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("RunService = %v", err)
	}
	if !strings.Contains(logs.String(), "Service failed") {
		t.Errorf("log:\n%s", logs.String())
	}
}

func TestOSLine(t *testing.T) {
	got := osLine("Service starting", []any{"platform", "windows-service", "config", `C:\ProgramData\PWBI\Agent\config.toml`})
	want := `pwbi-agent: Service starting (platform=windows-service, config=C:\ProgramData\PWBI\Agent\config.toml)`
	if got != want {
		t.Errorf("osLine = %q\nwant %q", got, want)
	}
}
