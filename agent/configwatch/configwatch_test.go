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
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/jonboulle/clockwork"
)

// The fsnotify events in these tests are real: each test writes a real file
// and the watcher sees the kernel's events. Time, though, is mostly the fake
// clock's: a test writes the file, waits for the watcher to see the event
// and then steps the clock itself (see step and stepRead). With the real
// clock a test goroutine stalled for a few hundred milliseconds in the
// middle of a save (between os.WriteFile's truncate and its write, as
// happens on a loaded CI machine) let the half-written file settle and be
// reported, and the test failed; on the fake clock nothing is read, let
// alone settles, while the test is mid-save unless the test says so. The
// few tests left on the real clock never show the watcher a half-written
// config file whose content they assert (they replace it by rename or do
// not change it), so no stall can change what they see; they await
// deliveries with a generous timeout and assert what, never how fast.
const (
	testDebounce = 100 * time.Millisecond
	testSettle   = 100 * time.Millisecond
	// quietPeriod is how long a test waits to assert that no further call
	// comes: 3× debounce plus settle, so a pending read has long fired.
	quietPeriod = 3 * (testDebounce + testSettle)
	// waitTimeout bounds waits for real work (events, reads, goroutines
	// ending) on a loaded CI machine under -race; a passing test never
	// reaches it.
	waitTimeout = 30 * time.Second
)

const (
	msgReady      = "Watching config file"
	msgChanged    = "Config file changed"
	msgReadable   = "Config file readable again"
	msgMissing    = "Config file missing; keeping the running configuration"
	msgUnchanged  = "Config file unchanged"
	msgReadFail   = "Reading config file failed; keeping the running configuration"
	msgLost       = "Config directory watch lost; polling instead"
	msgRestored   = "Config directory watch restored"
	msgWatchErr   = "File watcher error"
	msgEvent      = "Config file event"
	msgSettling   = "Config file changed; waiting for it to settle"
	msgNotSettled = "Config file not settled yet"
)

var (
	contentA = []byte("version = 1\n[agent]\nname = \"A\"\n")
	contentB = []byte("version = 1\n[agent]\nname = \"B\"\n# a longer file than A, so a partial read differs from B\n")
	contentC = []byte("version = 1\n[agent]\nname = \"C\"\n")
)

// recorder is a slog.Handler that keeps every record and lets a test wait
// for a message.
type recorder struct {
	mu      sync.Mutex
	recs    []slog.Record
	changed chan struct{} // closed and replaced on every record
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

func (r *recorder) find(msg string) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Record
	for _, rec := range r.recs {
		if rec.Message == msg {
			out = append(out, rec)
		}
	}
	return out
}

func (r *recorder) count(msg string) int { return len(r.find(msg)) }

// waitUntil blocks until cond, evaluated again after every record, holds.
func (r *recorder) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		r.mu.Lock()
		ch := r.changed // before cond, so that no record goes unnoticed
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("no %s within %v", what, waitTimeout)
		}
	}
}

// wait blocks until msg has been logged at least n times.
func (r *recorder) wait(t *testing.T, msg string, n int) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		r.mu.Lock()
		c := 0
		for _, rec := range r.recs {
			if rec.Message == msg {
				c++
			}
		}
		ch := r.changed
		r.mu.Unlock()
		if c >= n {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("log %q seen %d times, want %d", msg, c, n)
		}
	}
}

func attr(rec slog.Record, key string) slog.Value {
	var v slog.Value
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

type env struct {
	t       *testing.T
	dir     string
	path    string
	w       *Watcher
	logs    *recorder
	changes chan Change
}

// newEnv creates dir/config.toml with content (none if nil) and a watcher
// whose initial hash is that content's. opts gets the test debounce and
// settle time unless set, and a recording logger.
func newEnv(t *testing.T, content []byte, opts Options) *env {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	initial := ""
	if content != nil {
		writeFile(t, path, content)
		initial = Hash(content)
	}
	logs := newRecorder()
	if opts.Debounce == 0 {
		opts.Debounce = testDebounce
	}
	if opts.Settle == 0 {
		opts.Settle = testSettle
	}
	opts.Logger = slog.New(logs)
	return &env{
		t:       t,
		dir:     dir,
		path:    path,
		w:       New(path, initial, opts),
		logs:    logs,
		changes: make(chan Change, 256),
	}
}

// start runs the watcher until the test ends and waits until it watches.
func (e *env) start() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- e.w.Run(ctx, func(c Change) { e.changes <- c })
	}()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(waitTimeout):
			e.t.Errorf("Run did not return after cancel")
		}
	})
	e.logs.wait(e.t, msgReady, 1)
}

// next waits for the next change.
func (e *env) next() Change {
	e.t.Helper()
	select {
	case c := <-e.changes:
		if c.Hash != Hash(c.Data) {
			e.t.Errorf("Change.Hash = %s, want Hash(Data) = %s", c.Hash, Hash(c.Data))
		}
		return c
	case <-time.After(waitTimeout):
		e.t.Fatalf("no change within %v", waitTimeout)
		return Change{}
	}
}

// quiet asserts that no change arrives during the quiet period. It sleeps:
// asserting the absence of a call needs a wait.
func (e *env) quiet() {
	e.t.Helper()
	time.Sleep(quietPeriod)
	select {
	case c := <-e.changes:
		e.t.Errorf("unexpected change %q", c.Data)
	default:
	}
}

// drain collects changes until none arrives for the quiet period.
func (e *env) drain() []Change {
	var out []Change
	for {
		select {
		case c := <-e.changes:
			out = append(out, c)
		case <-time.After(quietPeriod): // see quiet
			return out
		}
	}
}

// reads counts the log lines that end a read of the config file (a missing
// file is logged once per episode only).
func (e *env) reads() int {
	n := 0
	for _, msg := range []string{msgSettling, msgNotSettled, msgUnchanged, msgChanged, msgReadable, msgMissing, msgReadFail} {
		n += e.logs.count(msg)
	}
	return n
}

// stepRead steps the fake clock by 100 ms until the watcher has read the
// file once more. Unlike step it does not need a timer armed after the read,
// so it also serves reads that find the file missing or unchanged. The
// watcher must have a read scheduled within 100 ms (the caller saw an event
// line, which is logged after arming): after each step it waits until the
// read is logged, or until another event of the config file is (a late
// event of the same save puts the read off by a debounce: step again).
func (e *env) stepRead(clock *clockwork.FakeClock) {
	e.t.Helper()
	before := e.reads()
	for range 10 {
		events := e.logs.count(msgEvent)
		clock.Advance(100 * time.Millisecond)
		e.logs.waitUntil(e.t, "read or event after a step of the clock", func() bool {
			return e.reads() > before || e.logs.count(msgEvent) > events
		})
		if e.reads() > before {
			return
		}
	}
	e.t.Fatal("the file was not read within 1 s (fake) of its event")
}

// settled lets every pending read fire and returns the changes that still
// come: Debounce and then Settle pass on the fake clock.
func (e *env) settled(clock *clockwork.FakeClock) []Change {
	e.t.Helper()
	clock.Advance(e.w.debounce + e.w.settle)
	return e.drain()
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantData(t *testing.T, c Change, want []byte) {
	t.Helper()
	if !bytes.Equal(c.Data, want) {
		t.Fatalf("change data = %q, want %q", c.Data, want)
	}
	if c.Hash != Hash(want) {
		t.Fatalf("change hash = %s, want %s", c.Hash, Hash(want))
	}
}

// writeInSteps writes data to path as os.WriteFile does, the file opened
// with flag (which creates or truncates it), and calls pause between the
// open and the write, while the file is empty.
func writeInSteps(t *testing.T, path string, flag int, data []byte, pause func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|flag, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pause()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// contents lists the data of changes, for messages.
func contents(changes []Change) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = string(c.Data)
	}
	return out
}

// TestSaveStyles: however an editor saves, the result is exactly one
// change with the final content. Each save pauses wherever it leaves the
// file missing, empty or half-written, long enough for the watcher to read
// it there (an editor may be that slow, and so is this test on a loaded
// machine) but shorter than Settle: what it read then must not be reported.
func TestSaveStyles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// save saves data to path and calls pause wherever the file is
		// not in its old nor its new state.
		save func(t *testing.T, path string, data []byte, pause func())
	}{
		{"atomic rename (VS Code, os.Rename)", func(t *testing.T, path string, data []byte, _ func()) {
			// The config file goes from old to new in one step: there is
			// no state in between to pause in.
			tmp := filepath.Join(filepath.Dir(path), ".config.toml.tmp123")
			writeFile(t, tmp, data)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"vim backup rename", func(t *testing.T, path string, data []byte, pause func()) {
			// vim's default on Unix: move the original aside, write a new
			// file, delete the backup.
			if err := os.Rename(path, path+"~"); err != nil {
				t.Fatal(err)
			}
			pause() // missing
			writeInSteps(t, path, os.O_CREATE|os.O_EXCL, data, pause)
			if err := os.Remove(path + "~"); err != nil {
				t.Fatal(err)
			}
		}},
		{"in-place double write (Notepad)", func(t *testing.T, path string, data []byte, pause func()) {
			writeInSteps(t, path, os.O_TRUNC, data, pause)
			pause() // complete, until the second write truncates it again
			writeInSteps(t, path, os.O_TRUNC, data, pause)
		}},
		{"in-place chunked write", func(t *testing.T, path string, data []byte, pause func()) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			half := len(data) / 2
			for i, chunk := range [][]byte{data[:half], data[half:]} {
				if i > 0 {
					pause() // half-written
				}
				if _, err := f.Write(chunk); err != nil {
					t.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"delete and recreate", func(t *testing.T, path string, data []byte, pause func()) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			pause() // missing
			writeInSteps(t, path, os.O_CREATE|os.O_EXCL, data, pause)
		}},
		{"truncate then write", func(t *testing.T, path string, data []byte, pause func()) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			pause() // empty
			writeInSteps(t, path, 0, data, func() {})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := clockwork.NewFakeClock()
			e := newEnv(t, contentA, Options{Poll: -1, Clock: clock, Settle: DefaultSettle})
			e.start()
			events := e.logs.count(msgEvent)
			pause := func() {
				t.Helper()
				// Once the watcher has seen the step just made, it reads
				// the file as it is now. A pause lasts at most 1 s (fake),
				// less than Settle, and the next step's event drops what
				// it read: nothing read in a pause can settle.
				e.logs.wait(t, msgEvent, events+1)
				e.stepRead(clock)
				events = e.logs.count(msgEvent)
			}
			tt.save(t, e.path, contentB, pause)
			e.logs.wait(t, msgEvent, events+1)
			e.onlyChange(clock, contentB, "the saved content")
		})
	}
}

// TestRapidSaves: 50 saves in a row, in place and by rename, 30 ms apart
// (faster than the debounce), are reported once, with the last content.
// The burst (1.5 s, fake) is shorter than Settle, so whatever the watcher
// reads during it cannot settle before the burst is over, and the last
// save is then the file's content.
func TestRapidSaves(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, contentA, Options{Poll: -1, Clock: clock, Settle: DefaultSettle})
	e.start()
	events := e.logs.count(msgEvent)
	var final []byte
	for i := range 50 {
		final = fmt.Appendf(nil, "version = 1\n# save %d\n", i)
		if i%2 == 0 {
			writeFile(t, e.path, final)
		} else {
			tmp := e.path + ".tmp"
			writeFile(t, tmp, final)
			if err := os.Rename(tmp, e.path); err != nil {
				t.Fatal(err)
			}
		}
		// The watcher sees the saves as they come, each one putting its
		// read off again.
		e.logs.wait(t, msgEvent, events+1)
		events = e.logs.count(msgEvent)
		clock.Advance(30 * time.Millisecond)
	}
	// That step may have fired the read the saves put off: wait for the
	// watcher to arm its next timer (until it reports the last save it
	// always has one), or step would find it without one and only advance
	// the clock, past everything, while it is still reading.
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal("no read scheduled after the saves")
	}
	e.onlyChange(clock, final, "the last of 50 rapid saves")
}

// TestNoopSave: touch and saving the same bytes read the file but report
// nothing.
func TestNoopSave(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, contentA, Options{Poll: -1, Clock: clock})
	e.start()
	base := e.logs.count(msgUnchanged) // the read at start

	events := e.logs.count(msgEvent)
	now := time.Now().Add(time.Minute)
	if err := os.Chtimes(e.path, now, now); err != nil {
		t.Fatal(err)
	}
	e.logs.wait(t, msgEvent, events+1)
	e.stepRead(clock)
	e.logs.wait(t, msgUnchanged, base+1)

	events = e.logs.count(msgEvent)
	writeFile(t, e.path, contentA)
	e.logs.wait(t, msgEvent, events+1)
	e.stepRead(clock)
	e.logs.wait(t, msgUnchanged, base+2)

	// Changes are delivered in order, so if the no-op saves had been
	// reported, they would come before this one.
	events = e.logs.count(msgEvent)
	writeFile(t, e.path, contentC)
	e.logs.wait(t, msgEvent, events+1)
	got := e.stepUntil(clock, contentC)
	wantData(t, got[0], contentC)
}

func TestMissingThenRecreated(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, contentA, Options{Poll: -1, Clock: clock})
	e.start()

	events := e.logs.count(msgEvent)
	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	e.logs.wait(t, msgEvent, events+1)
	e.stepRead(clock)
	e.logs.wait(t, msgMissing, 1)
	if rec := e.logs.find(msgMissing)[0]; rec.Level != slog.LevelInfo {
		t.Errorf("missing file logged at %v, want INFO", rec.Level)
	}

	events = e.logs.count(msgEvent)
	writeFile(t, e.path, contentB)
	e.logs.wait(t, msgEvent, events+1)
	// The only change is the recreated file: the deletion reported nothing.
	e.onlyChange(clock, contentB, "the recreated file")
	if n := e.logs.count(msgMissing); n != 1 {
		t.Errorf("missing file logged %d times, want 1", n)
	}
}

// TestMissingAtStart: a watcher started without a file reports it once it
// appears.
func TestMissingAtStart(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, nil, Options{Poll: -1, Clock: clock})
	e.start()
	e.logs.wait(t, msgMissing, 1)
	events := e.logs.count(msgEvent)
	writeFile(t, e.path, contentB)
	e.logs.wait(t, msgEvent, events+1)
	got := e.stepUntil(clock, contentB)
	wantData(t, got[0], contentB)
}

func TestOtherFilesIgnored(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, contentA, Options{Poll: -1, Clock: clock})
	e.start()
	events := e.logs.count(msgEvent)

	for _, name := range []string{"other.toml", "config.toml~", "config.toml.bak", "xconfig.toml", ".config.toml.swp"} {
		writeFile(t, filepath.Join(e.dir, name), contentB)
		if err := os.Remove(filepath.Join(e.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(e.dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.dir, "sub", "config.toml"), contentB)

	// fsnotify delivers the directory's events in order and the watcher
	// handles them one by one, so the first one it takes for the config
	// file's must be this write's (a WRITE: the file exists). Had another
	// file's event got through, the first would be its CREATE.
	writeFile(t, e.path, contentC)
	e.logs.wait(t, msgEvent, events+1)
	if op := attr(e.logs.find(msgEvent)[events], "op").String(); op != fsnotify.Write.String() {
		t.Fatalf("first config file event %s, want %s: another file's event was taken for the config file's", op, fsnotify.Write)
	}
	got := e.stepUntil(clock, contentC)
	wantData(t, got[0], contentC)
}

// TestPollFallback: with every fsnotify event lost, the periodic re-read
// still finds the change. The fake clock drives the poll.
func TestPollFallback(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, contentA, Options{Poll: time.Minute, Clock: clock})
	e.w.dropEvents = true
	e.start()

	// Each change is read by a poll and confirmed a settle time later.
	writeFile(t, e.path, contentB)
	clock.Advance(time.Minute)
	e.logs.wait(t, msgSettling, 1)
	clock.Advance(testSettle)
	wantData(t, e.next(), contentB)

	writeFile(t, e.path, contentC)
	clock.Advance(time.Minute)
	e.logs.wait(t, msgSettling, 2)
	clock.Advance(testSettle)
	wantData(t, e.next(), contentC)

	// A poll with nothing new reports nothing; the next change proves it.
	before := e.logs.count(msgUnchanged)
	clock.Advance(time.Minute)
	e.logs.wait(t, msgUnchanged, before+1)
	writeFile(t, e.path, contentA)
	clock.Advance(time.Minute)
	e.logs.wait(t, msgSettling, 3)
	clock.Advance(testSettle)
	wantData(t, e.next(), contentA)
}

func TestCheck(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, contentA, Options{Poll: -1, Clock: clock})
	e.w.dropEvents = true
	e.start()
	writeFile(t, e.path, contentB)
	e.w.Check()
	e.logs.wait(t, msgSettling, 1)
	// Another Check before the settle time is up reads the same content
	// but does not report it early.
	e.w.Check()
	e.logs.wait(t, msgNotSettled, 1)
	select {
	case c := <-e.changes:
		t.Fatalf("reported %q before it settled", c.Data)
	default:
	}
	clock.Advance(testSettle)
	wantData(t, e.next(), contentB)
}

// TestInitialHashEmpty: without a known hash, Run reports the file at start.
func TestInitialHashEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t, contentA, Options{Poll: -1})
	e.w.SetHash("")
	e.start()
	wantData(t, e.next(), contentA)
	e.quiet()
}

// TestSetHash: content applied by a manual reload is not reported again.
func TestSetHash(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, contentA, Options{Poll: -1, Clock: clock})
	e.start()
	base := e.logs.count(msgUnchanged)

	// The agent reads B itself (POST /v1/reload), applies it and says so.
	e.w.SetHash(Hash(contentB))
	events := e.logs.count(msgEvent)
	writeFile(t, e.path, contentB)
	e.logs.wait(t, msgEvent, events+1)
	e.stepRead(clock)
	e.logs.wait(t, msgUnchanged, base+1)

	events = e.logs.count(msgEvent)
	writeFile(t, e.path, contentC)
	e.logs.wait(t, msgEvent, events+1)
	got := e.stepUntil(clock, contentC)
	wantData(t, got[0], contentC) // B was never reported
}

// TestReadErrorRetried: a read error reports nothing and is retried after
// a backoff even when no event or poll comes.
func TestReadErrorRetried(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, nil, Options{Poll: -1, Clock: clock})
	e.w.dropEvents = true
	// A directory where the file should be cannot be read as a file.
	if err := os.Mkdir(e.path, 0o700); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.logs.wait(t, msgReadFail, 1)

	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.path, contentB)
	// The retry timer is the only one (no poll, no events).
	if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(rewatchMin)
	e.logs.wait(t, msgSettling, 1)
	clock.Advance(testSettle)
	wantData(t, e.next(), contentB)
}

// TestReadErrorThenEvent: after a read error, the next event re-reads.
func TestReadErrorThenEvent(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	e := newEnv(t, nil, Options{Poll: -1, Clock: clock})
	// The retry after the error is far off: only the event can bring the
	// read within the 20 s (fake) stepUntil waits.
	e.w.rewatchMin, e.w.rewatchMax = time.Hour, time.Hour
	if err := os.Mkdir(e.path, 0o700); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.logs.wait(t, msgReadFail, 1)
	events := e.logs.count(msgEvent)
	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.path, contentB)
	e.logs.wait(t, msgEvent, events+1)
	got := e.stepUntil(clock, contentB)
	wantData(t, got[0], contentB)
}

// TestDirectoryReplaced: when the directory goes away, the watcher falls
// back to re-reading, re-adds the watch once the directory is back, and
// then sees changes through events again. The directory's events are real;
// the fake clock drives the reads and the retry of the watch.
func TestDirectoryReplaced(t *testing.T) {
	if runtime.GOOS == "windows" {
		// Windows keeps a removed directory pending delete while fsnotify
		// holds its handle, so it cannot be recreated on cue.
		t.Skip("directory removal semantics differ on Windows")
	}
	t.Parallel()
	tests := []struct {
		name   string
		remove func(dir string) error
	}{
		{"removed", os.RemoveAll},
		{"renamed away", func(dir string) error { return os.Rename(dir, dir+".old") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			dir := filepath.Join(root, "conf")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "config.toml")
			writeFile(t, path, contentA)
			clock := clockwork.NewFakeClock()
			logs := newRecorder()
			e := &env{
				t: t, dir: dir, path: path, logs: logs, changes: make(chan Change, 256),
				w: New(path, Hash(contentA), Options{Debounce: testDebounce, Settle: testSettle, Poll: -1, Clock: clock, Logger: slog.New(logs)}),
			}
			e.start()
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()

			if err := tt.remove(dir); err != nil {
				t.Fatal(err)
			}
			logs.wait(t, msgLost, 1)
			// The watcher schedules the retry of the watch and a read
			// (after logging the loss).
			if err := clock.BlockUntilContext(ctx, 2); err != nil {
				t.Fatal("no retry of the watch and read scheduled after the loss")
			}
			e.stepRead(clock)
			logs.wait(t, msgMissing, 1)

			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, contentB)
			// The retry, due rewatchMin after the loss, re-adds the watch
			// and schedules a read (after logging it).
			clock.Advance(rewatchMin)
			logs.wait(t, msgRestored, 1)
			if err := clock.BlockUntilContext(ctx, 1); err != nil {
				t.Fatal("no read scheduled after the watch was restored")
			}
			got := e.stepUntil(clock, contentB)
			if len(got) != 1 {
				t.Fatalf("%d changes %q, want only the new file", len(got), contents(got))
			}

			// Poll is off and the watch is back: only an event can bring
			// this one.
			events := logs.count(msgEvent)
			writeFile(t, path, contentC)
			logs.wait(t, msgEvent, events+1)
			e.onlyChange(clock, contentC, "the second new file")
		})
	}
}

// TestWatchErrorsRateLimited: fsnotify errors are logged at most once a
// minute, with a count of the suppressed ones, and an overflow schedules a
// read.
func TestWatchErrorsRateLimited(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	logs := newRecorder()
	w := New(filepath.Join(t.TempDir(), "config.toml"), "", Options{Clock: clock, Logger: slog.New(logs)})
	l := newLoop(w, func(Change) {})
	defer l.close()

	for range 100 {
		l.watchError(errors.New("boom"))
	}
	if n := logs.count(msgWatchErr); n != 1 {
		t.Fatalf("100 errors logged %d times, want 1", n)
	}
	clock.Advance(errLogEvery)
	l.watchError(fsnotify.ErrEventOverflow)
	recs := logs.find(msgWatchErr)
	if len(recs) != 2 {
		t.Fatalf("errors logged %d times after a minute, want 2", len(recs))
	}
	if got := attr(recs[1], "suppressed").Int64(); got != 99 {
		t.Errorf("suppressed = %d, want 99", got)
	}
	if !l.pending {
		t.Error("an event overflow did not schedule a read")
	}
	// The count starts again after each line logged, and a line just
	// short of a minute after the last one is still suppressed.
	clock.Advance(errLogEvery - time.Second)
	l.watchError(errors.New("boom"))
	clock.Advance(time.Second)
	l.watchError(errors.New("boom"))
	recs = logs.find(msgWatchErr)
	if len(recs) != 3 || attr(recs[2], "suppressed").Int64() != 1 {
		t.Fatalf("after two more minutes: %d lines (want 3), the last with suppressed %v (want 1)", len(recs), attr(recs[len(recs)-1], "suppressed"))
	}
}

func TestSameName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		fold bool
		want bool
	}{
		{"config.toml", "config.toml", false, true},
		{"Config.TOML", "config.toml", false, false},
		{"Config.TOML", "config.toml", true, true},
		{"config.toml~", "config.toml", true, false},
	}
	for _, tt := range tests {
		if got := sameName(tt.a, tt.b, tt.fold); got != tt.want {
			t.Errorf("sameName(%q, %q, %v) = %v, want %v", tt.a, tt.b, tt.fold, got, tt.want)
		}
	}
	if w := New("config.toml", "", Options{}); w.fold != (runtime.GOOS == "windows") {
		t.Errorf("fold = %v on %s", w.fold, runtime.GOOS)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	w := New("config.toml", "", Options{})
	if w.debounce != DefaultDebounce || w.poll != DefaultPoll || w.clock == nil || w.log == nil {
		t.Errorf("defaults: debounce %v, poll %v, clock %v, log %v", w.debounce, w.poll, w.clock, w.log)
	}
	if !filepath.IsAbs(w.path) {
		t.Errorf("path %q is not absolute", w.path)
	}
	if w := New("config.toml", "", Options{Poll: -1}); w.poll >= 0 {
		t.Errorf("Poll -1 gave poll %v, want off", w.poll)
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	// sha256("") from FIPS 180-2.
	if got, want := Hash(nil), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Errorf("Hash(nil) = %s, want %s", got, want)
	}
}

func TestRunMisuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, contentA, Options{Poll: -1})
	if err := e.w.Run(t.Context(), nil); err == nil {
		t.Error("Run(nil onChange) = nil, want an error")
	}
	e.start()
	if err := e.w.Run(t.Context(), func(Change) {}); err == nil {
		t.Error("second Run = nil, want an error")
	}
}

// TestRunCancel: Run returns nil on cancel and leaves no goroutine behind.
// Not parallel, so that the goroutine count is this test's alone.
func TestRunCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, poll := range []time.Duration{-1, time.Hour} {
		e := newEnv(t, contentA, Options{Poll: poll})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.w.Run(ctx, func(c Change) { e.changes <- c }) }()
		e.logs.wait(t, msgReady, 1)
		writeFile(t, e.path, contentB) // leave a debounce pending
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Run did not return after cancel")
		}
	}
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Run, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond) // goroutines exit asynchronously
	}
}

// With OnProblem set, a missing file is reported, and its return — even
// with the content in force — is reported through onChange so the agent can
// clear the problem.
func TestOnProblemMissingThenBack(t *testing.T) {
	clock := clockwork.NewFakeClock()
	problems := make(chan error, 10)
	e := newEnv(t, contentA, Options{Poll: -1, Clock: clock, OnProblem: func(err error) { problems <- err }})
	e.start() // the watch is set up before the file goes
	events := e.logs.count(msgEvent)
	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	e.logs.wait(t, msgEvent, events+1)
	e.stepRead(clock)
	select {
	case err := <-problems:
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("problem %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("missing file not reported")
	}
	events = e.logs.count(msgEvent)
	writeFile(t, e.path, contentA)
	e.logs.wait(t, msgEvent, events+1)
	got := e.stepUntil(clock, contentA)
	if len(got) != 1 {
		t.Fatalf("%d changes %q, want only the return of the file", len(got), contents(got))
	}
}
