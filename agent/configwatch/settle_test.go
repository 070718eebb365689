package configwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/config"
)

// The tests of settling run on the fake clock, so that "the writer pauses
// 1.5 s" is exact whatever the load of the machine; the fsnotify events are
// real.

// step advances the fake clock by d and waits until the watcher has handled
// what that fired: it has armed its next timer (while content waits to
// settle it always has one) or reported a change. A watcher with no timer
// (it reported already) has nothing to handle: then step only advances. It
// returns the changes reported so far.
func (e *env) step(clock *clockwork.FakeClock, d time.Duration) []Change {
	e.t.Helper()
	done, cancelDone := context.WithCancel(e.t.Context())
	cancelDone()
	idle := clock.BlockUntilContext(done, 1) != nil // no timer armed
	clock.Advance(d)
	var got []Change
	if !idle {
		ctx, cancel := context.WithTimeout(e.t.Context(), waitTimeout)
		defer cancel()
		armed := make(chan error, 1)
		go func() { armed <- clock.BlockUntilContext(ctx, 1) }()
		select {
		case err := <-armed:
			if err != nil {
				e.t.Fatalf("the watcher neither armed a timer nor reported a change")
			}
		case c := <-e.changes:
			got = append(got, c)
		}
	}
	for {
		select {
		case c := <-e.changes:
			got = append(got, c)
		default:
			return got
		}
	}
}

// stepUntil steps the fake clock by 100 ms until a change with want
// arrives, and returns every change reported meanwhile.
func (e *env) stepUntil(clock *clockwork.FakeClock, want []byte) []Change {
	e.t.Helper()
	var got []Change
	for range 200 { // 20 s of fake time
		got = append(got, e.step(clock, 100*time.Millisecond)...)
		for _, c := range got {
			if bytes.Equal(c.Data, want) {
				return got
			}
		}
	}
	e.t.Fatalf("%q not reported within 20 s (fake); got %d changes", want, len(got))
	return nil
}

// onlyChange steps the fake clock until a change with want arrives, lets
// every pending read fire (settled), and fails unless that change was the
// only one; what says which change it is, for the message.
func (e *env) onlyChange(clock *clockwork.FakeClock, want []byte, what string) {
	e.t.Helper()
	got := e.stepUntil(clock, want)
	got = append(got, e.settled(clock)...)
	if len(got) != 1 {
		e.t.Fatalf("%d changes %q, want only %s", len(got), contents(got), what)
	}
	wantData(e.t, got[0], want)
}

// armedHandler records, for each "Config file event" line, whether the
// watcher's fake clock had a timer armed when it was logged.
type armedHandler struct {
	clock *clockwork.FakeClock
	armed []bool
}

func (h *armedHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *armedHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *armedHandler) WithGroup(string) slog.Handler            { return h }

func (h *armedHandler) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message == msgEvent {
		done, cancel := context.WithCancel(context.Background())
		cancel()
		h.armed = append(h.armed, h.clock.BlockUntilContext(done, 1) == nil)
	}
	return nil
}

// The tests that step the fake clock wait for the event line and then
// count on the read being scheduled (see step). Regression: the line came
// before the debounce timer was armed, so a test could advance the clock
// past the event unseen by the watcher, and the read came late in fake
// time (TestTwoStepWriteNeverReportsTheHalf could then wait in vain for
// it).
func TestEventLoggedAfterArming(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	h := &armedHandler{clock: clock}
	w := New(filepath.Join(t.TempDir(), "config.toml"), "", Options{Clock: clock, Logger: slog.New(h)})
	l := newLoop(w, func(Change) {})
	defer l.close()
	l.event(fsnotify.Event{Name: w.path, Op: fsnotify.Write})
	if len(h.armed) != 1 || !h.armed[0] {
		t.Fatalf("event lines logged with a timer armed: %v, want [true]", h.armed)
	}
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// Issue 10: a tool writes half of the config file, pauses 1.5 s and writes
// the rest, each half with its own open/write/close. The half is a valid
// configuration on its own, so only the watcher can keep it out: it must
// never be reported, and the whole file must be, once. This runs with the
// production Debounce and Settle: the guarantee is theirs.
func TestTwoStepWriteNeverReportsTheHalf(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, contentA, Options{Poll: -1, Clock: clock, Debounce: DefaultDebounce, Settle: DefaultSettle})
	e.start()
	half := []byte("version = 1\n[agent]\nid = \"two-step\"\n")
	rest := []byte("[checkout]\nenabled = true\nlisten = \"127.0.0.1:8686\"\n")
	full := append(bytes.Clone(half), rest...)
	if _, err := config.Parse(e.path, half); err != nil {
		t.Fatalf("the half must be a valid config for this test: %v", err)
	}

	events := e.logs.count(msgEvent)
	writeFile(t, e.path, half)
	e.logs.wait(t, msgEvent, events+1)
	var got []Change
	for range 15 { // the writer's pause: 1.5 s
		got = append(got, e.step(clock, 100*time.Millisecond)...)
	}
	// The half must have been read during the pause, or the test proves
	// nothing. The watcher logs right after arming the timer step waits
	// for, so wait for the line (fake time stands still meanwhile).
	e.logs.wait(t, msgSettling, 1)
	if len(got) > 0 {
		t.Fatalf("reported %q during the writer's pause", got[0].Data)
	}
	events = e.logs.count(msgEvent)
	appendFile(t, e.path, rest)
	e.logs.wait(t, msgEvent, events+1)
	got = append(got, e.stepUntil(clock, full)...)

	// Anything still pending fires; nothing more may come.
	clock.Advance(DefaultDebounce + DefaultSettle)
	got = append(got, e.drain()...)
	for _, c := range got {
		if bytes.Equal(c.Data, half) {
			t.Fatal("the half-written file was reported")
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d changes, want exactly one (the whole file)", len(got))
	}
	wantData(t, got[0], full)
}

// A file that keeps changing every 300 ms for 3 s is reported only once it
// stops changing, with its final content. The debounce is shorter than the
// interval here, so the file is read between the writes: it is the settle
// time that holds every intermediate version back.
func TestChangingFileReportedOnceSettled(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, contentA, Options{Poll: -1, Clock: clock, Debounce: 100 * time.Millisecond, Settle: DefaultSettle})
	e.start()
	version := func(i int) []byte { return fmt.Appendf(nil, "version = 1\n[agent]\nid = \"v%d\"\n", i) }

	var got []Change
	const writes = 11 // at 0, 0.3, ..., 3.0 s
	for i := range writes {
		events := e.logs.count(msgEvent)
		writeFile(t, e.path, version(i))
		e.logs.wait(t, msgEvent, events+1)
		if i < writes-1 {
			for range 3 {
				got = append(got, e.step(clock, 100*time.Millisecond)...)
			}
		}
	}
	// Read at least twice while changing, or the test proves nothing (see
	// above for why this waits).
	e.logs.wait(t, msgSettling, 2)
	if len(got) != 0 {
		t.Fatalf("reported %q while the file was still changing", got[0].Data)
	}
	final := version(writes - 1)
	got = e.stepUntil(clock, final)
	clock.Advance(DefaultSettle)
	got = append(got, e.drain()...)
	if len(got) != 1 {
		t.Fatalf("%d changes after the writes stopped, want 1", len(got))
	}
	wantData(t, got[0], final)
}

// A problem shown (the file went missing) is cleared even when the file
// comes back with new content that does not settle but returns to the
// content in force: that content is reported, so the agent can clear it.
func TestProblemClearedWhenContentReturnsBeforeSettling(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	problems := make(chan error, 16)
	e := newEnv(t, contentA, Options{Poll: -1, Clock: clock, Debounce: DefaultDebounce, Settle: DefaultSettle,
		OnProblem: func(err error) { problems <- err }})
	e.start()

	events := e.logs.count(msgEvent)
	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	e.logs.wait(t, msgEvent, events+1)
	// The read after the debounce finds the file missing, and the watcher
	// then has nothing to wait for (step would wait for a timer).
	if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(DefaultDebounce)
	e.logs.wait(t, msgMissing, 1)
	if err := <-problems; !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("problem %v, want a missing file", err)
	}

	events = e.logs.count(msgEvent)
	writeFile(t, e.path, contentB)
	e.logs.wait(t, msgEvent, events+1)
	for i := 0; e.logs.count(msgSettling) == 0; i++ {
		if i == 200 {
			t.Fatal("the new content was not read within 20 s (fake)")
		}
		if got := e.step(clock, 100*time.Millisecond); len(got) > 0 {
			t.Fatalf("reported %q before it settled", got[0].Data)
		}
	}
	events = e.logs.count(msgEvent)
	writeFile(t, e.path, contentA)
	e.logs.wait(t, msgEvent, events+1)
	got := e.stepUntil(clock, contentA)
	if len(got) != 1 {
		t.Fatalf("%d changes, want only the content in force", len(got))
	}
}
