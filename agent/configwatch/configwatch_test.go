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

// The fsnotify events in these tests are real, so real time passes. A short
// debounce and settle time keep them fast; deliveries are awaited on a
// channel with a generous timeout, and tests assert what is delivered and
// how many times, never how fast. The tests of settling itself use the fake
// clock, so that "1.5 s pass" is exact whatever the machine's load.
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

// TestSaveStyles: however an editor saves, the result is exactly one
// change with the final content.
func TestSaveStyles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		save func(t *testing.T, path string, data []byte)
	}{
		{"atomic rename (VS Code, os.Rename)", func(t *testing.T, path string, data []byte) {
			tmp := filepath.Join(filepath.Dir(path), ".config.toml.tmp123")
			writeFile(t, tmp, data)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"vim backup rename", func(t *testing.T, path string, data []byte) {
			// vim's default on Unix: move the original aside, write a new
			// file, delete the backup.
			if err := os.Rename(path, path+"~"); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, data)
			if err := os.Remove(path + "~"); err != nil {
				t.Fatal(err)
			}
		}},
		{"in-place double write (Notepad)", func(t *testing.T, path string, data []byte) {
			writeFile(t, path, data)
			writeFile(t, path, data)
		}},
		{"in-place chunked write", func(t *testing.T, path string, data []byte) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			half := len(data) / 2
			for _, chunk := range [][]byte{data[:half], data[half:]} {
				if _, err := f.Write(chunk); err != nil {
					t.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"delete and recreate", func(t *testing.T, path string, data []byte) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, data)
		}},
		{"truncate then write", func(t *testing.T, path string, data []byte) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, contentA, Options{Poll: -1})
			e.start()
			tt.save(t, e.path, contentB)
			wantData(t, e.next(), contentB)
			e.quiet()
		})
	}
}

func TestRapidSaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t, contentA, Options{Poll: -1})
	e.start()
	var final []byte
	for i := range 50 {
		final = fmt.Appendf(nil, "version = 1\n# save %d\n", i)
		if i%2 == 0 {
			writeFile(t, e.path, final)
			continue
		}
		tmp := e.path + ".tmp"
		writeFile(t, tmp, final)
		if err := os.Rename(tmp, e.path); err != nil {
			t.Fatal(err)
		}
	}
	got := append([]Change{e.next()}, e.drain()...)
	if len(got) > 2 {
		t.Errorf("%d changes for 50 rapid saves, want at most 2", len(got))
	}
	wantData(t, got[len(got)-1], final)
}

// TestNoopSave: touch and saving the same bytes read the file but report
// nothing.
func TestNoopSave(t *testing.T) {
	t.Parallel()
	e := newEnv(t, contentA, Options{Poll: -1})
	e.start()
	base := e.logs.count(msgUnchanged) // the read at start

	now := time.Now().Add(time.Minute)
	if err := os.Chtimes(e.path, now, now); err != nil {
		t.Fatal(err)
	}
	e.logs.wait(t, msgUnchanged, base+1)
	writeFile(t, e.path, contentA)
	e.logs.wait(t, msgUnchanged, base+2)

	// Changes are delivered in order, so if the no-op saves had been
	// reported, they would come before this one.
	writeFile(t, e.path, contentC)
	wantData(t, e.next(), contentC)
}

func TestMissingThenRecreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, contentA, Options{Poll: -1})
	e.start()

	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	e.logs.wait(t, msgMissing, 1)
	if rec := e.logs.find(msgMissing)[0]; rec.Level != slog.LevelInfo {
		t.Errorf("missing file logged at %v, want INFO", rec.Level)
	}

	writeFile(t, e.path, contentB)
	// The first change is the recreated file: the deletion reported nothing.
	wantData(t, e.next(), contentB)
	e.quiet()
	if n := e.logs.count(msgMissing); n != 1 {
		t.Errorf("missing file logged %d times, want 1", n)
	}
}

// TestMissingAtStart: a watcher started without a file reports it once it
// appears.
func TestMissingAtStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, Options{Poll: -1})
	e.start()
	e.logs.wait(t, msgMissing, 1)
	writeFile(t, e.path, contentB)
	wantData(t, e.next(), contentB)
}

func TestOtherFilesIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, contentA, Options{Poll: -1})
	e.start()
	base := e.logs.count(msgUnchanged)

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

	e.quiet()
	if n := e.logs.count(msgUnchanged); n != base {
		t.Errorf("the config file was re-read %d times for other files' events", n-base)
	}
	writeFile(t, e.path, contentC)
	wantData(t, e.next(), contentC)
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
	e := newEnv(t, contentA, Options{Poll: -1})
	e.start()
	base := e.logs.count(msgUnchanged)

	// The agent reads B itself (POST /v1/reload), applies it and says so.
	e.w.SetHash(Hash(contentB))
	writeFile(t, e.path, contentB)
	e.logs.wait(t, msgUnchanged, base+1)

	writeFile(t, e.path, contentC)
	wantData(t, e.next(), contentC) // B was never reported
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
	e := newEnv(t, nil, Options{Poll: -1})
	if err := os.Mkdir(e.path, 0o700); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.logs.wait(t, msgReadFail, 1)
	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.path, contentB)
	wantData(t, e.next(), contentB)
}

// TestDirectoryReplaced: when the directory goes away, the watcher falls
// back to re-reading, re-adds the watch once the directory is back, and
// then sees changes through events again.
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
			logs := newRecorder()
			e := &env{
				t: t, dir: dir, path: path, logs: logs, changes: make(chan Change, 256),
				w: New(path, Hash(contentA), Options{Debounce: testDebounce, Poll: -1, Logger: slog.New(logs)}),
			}
			e.w.rewatchMin, e.w.rewatchMax = 20*time.Millisecond, 100*time.Millisecond
			e.start()

			if err := tt.remove(dir); err != nil {
				t.Fatal(err)
			}
			logs.wait(t, msgLost, 1)
			logs.wait(t, msgMissing, 1)

			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, contentB)
			wantData(t, e.next(), contentB)
			logs.wait(t, msgRestored, 1)

			// Poll is off and the watch is back: only an event can bring
			// this one.
			writeFile(t, path, contentC)
			wantData(t, e.next(), contentC)
			e.quiet()
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
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	content := []byte("version = 1\n")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	problems := make(chan error, 10)
	changes := make(chan Change, 10)
	logs := newRecorder()
	w := New(path, Hash(content), Options{Debounce: 50 * time.Millisecond, Poll: -1, Logger: slog.New(logs),
		OnProblem: func(err error) { problems <- err }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, func(c Change) { changes <- c })
	logs.wait(t, msgReady, 1) // the watch is set up before the file goes
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-problems:
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("problem %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("missing file not reported")
	}
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changes:
		if string(c.Data) != string(content) {
			t.Fatalf("content %q", c.Data)
		}
	case <-time.After(waitTimeout):
		t.Fatal("return of the file not reported")
	}
}
