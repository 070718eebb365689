// Package configwatch watches the agent's config file and reports changes of
// its content (SPEC §3 "Hot reload").
//
// A [Watcher] watches the file's directory, not the file: editors save by
// writing a temporary file and renaming it over the target (vim, VS Code,
// os.Rename), by writing in place twice (Notepad), by deleting and
// recreating, or by truncating and writing, and a watch on the file itself
// is lost or blind to several of those. Events are filtered on the file's
// base name (case-insensitively on Windows) and debounced: the file is read
// only once [Options.Debounce] has passed since the last event, then hashed.
// Content equal to the last one reported or set with [Watcher.SetHash] is
// not reported: no-op saves and touch cost a read.
//
// New content must settle before it is reported: it is read again
// [Options.Settle] later, and the callback runs only when both reads agree
// (size, modification time and content hash) and no event came between
// them. Otherwise the second read becomes the one to confirm. A writer that
// writes half a file, pauses, and writes the rest is thus never reported
// half-written, as long as its pause is shorter than Settle — even when each
// half has its own open/write/close and even when the half is valid TOML.
// With events the quiet time before a report is Debounce+Settle after the
// last event; without them (lost events, the poll) Settle alone still
// separates the two reads.
//
// A missing file (deleted, or caught between the steps of a save) never
// produces a change: the running configuration stays in force, and the file
// is reported when it comes back with new content. The file is read with
// config.ReadFileSafe: a named pipe, a device (a symlink to /dev/zero) or a
// file over config.MaxFileSize is refused without blocking or reading it
// whole, so the watcher never hangs in a read and Run always returns
// promptly when its context ends. Such a refusal, like any read error (for
// example a sharing violation on Windows), is reported to
// [Options.OnProblem], logged and retried after a backoff, on the next
// event and on the next poll.
//
// fsnotify can miss events (network shares, an overflowing queue), so the
// file is also re-read every [Options.Poll]. If the directory watch cannot be
// set up or is lost (the directory is removed, renamed or replaced), the
// watcher keeps re-reading the file and tries to re-add the watch with a
// backoff. fsnotify errors are logged, rate-limited, and never stop it.
//
// The package validates nothing: it hands the bytes to the caller, which
// parses and validates the whole file before swapping it in. Of the agent it
// imports only agent/config, for ReadFileSafe. Every timer goes through the
// injected clockwork.Clock.
package configwatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/jonboulle/clockwork"
)

// Defaults for [Options].
const (
	// DefaultDebounce is long enough to cover an editor's save (temp file,
	// rename, Notepad's second write) in one read.
	DefaultDebounce = 500 * time.Millisecond
	// DefaultSettle is how far apart two reads of new content must agree
	// before it is reported. It must exceed the longest pause a writer
	// makes in the middle of a save: a tool seen in the field (issue 10)
	// writes half the file, pauses 1.5 s and writes the rest, each half
	// with its own open/write/close, so no close-write event marks the end
	// and the half may even be valid TOML. 2 s covers that pause with a
	// margin on its own (when events are lost and only the poll reads);
	// with events the first read comes Debounce after the last one, so the
	// half would have to stay unchanged for 2.5 s. An editor's save is then
	// applied about 2.5 s after it happens, which still feels prompt.
	DefaultSettle = 2 * time.Second
	// DefaultPoll bounds how long a change fsnotify missed goes unnoticed.
	DefaultPoll = 30 * time.Second
)

const (
	// The directory watch is retried after rewatchMin, doubling up to
	// rewatchMax, while it cannot be set up. The file is re-read at every
	// attempt. Read errors use the same backoff.
	rewatchMin = time.Second
	rewatchMax = 30 * time.Second
	// Repeated fsnotify or read errors are logged at most once per errLogEvery.
	errLogEvery = time.Minute
)

// Options configures a [Watcher]. The zero value is usable.
type Options struct {
	// Debounce is the quiet time after the last event on the file before it
	// is read. Zero or negative means DefaultDebounce.
	Debounce time.Duration
	// Settle is how long new content must stay the same before it is
	// reported: it is read again this long after the first read, and only
	// reported when both reads agree. Zero or negative means DefaultSettle.
	Settle time.Duration
	// Poll re-reads and hashes the file this often even without events,
	// because fsnotify can miss them. Zero means DefaultPoll; negative turns
	// the periodic re-read off (the backoff re-reads while the directory
	// watch is down still happen).
	Poll time.Duration
	// Clock drives every timer; nil means the real clock.
	Clock clockwork.Clock
	// Logger receives the watcher's logs; nil discards them.
	Logger *slog.Logger
	// OnProblem, if set, is called (from Run's goroutine) when the file is
	// found missing or cannot be read (including a file that is not a
	// regular file or is too large), once per episode and again when the
	// error changes, so the agent can show it (SPEC §3: config.error). When
	// the file is readable again it is reported through onChange even if
	// its content did not change, so the agent can clear the problem.
	OnProblem func(err error)
}

// Change is a new content of the config file.
type Change struct {
	Data []byte
	Hash string // Hash(Data)
}

// Watcher watches one config file. Create it with [New] and start it with
// [Watcher.Run]; [Watcher.Check] and [Watcher.SetHash] are safe for
// concurrent use, also while Run is running.
type Watcher struct {
	path     string // absolute and clean
	dir      string // filepath.Dir(path)
	base     string // filepath.Base(path)
	fold     bool   // compare names case-insensitively (Windows)
	debounce time.Duration
	settle   time.Duration
	poll     time.Duration // <= 0: off
	clock    clockwork.Clock
	log      *slog.Logger
	onProb   func(error)

	checkC  chan struct{} // Check requests, buffered 1
	running atomic.Bool

	mu   sync.Mutex
	hash string // last reported or set content hash; guarded by mu

	// Test hooks, set before Run.
	rewatchMin, rewatchMax time.Duration
	dropEvents             bool // ignore every fsnotify event, as if fsnotify missed them
}

// New returns a watcher for the config file at path. initialHash is
// Hash of the content already in force, so an unchanged file is not
// reported; pass "" to have Run report the current content at start.
func New(path string, initialHash string, opts Options) *Watcher {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	path = filepath.Clean(path)
	w := &Watcher{
		path:       path,
		dir:        filepath.Dir(path),
		base:       filepath.Base(path),
		fold:       runtime.GOOS == "windows",
		debounce:   opts.Debounce,
		settle:     opts.Settle,
		poll:       opts.Poll,
		clock:      opts.Clock,
		log:        opts.Logger,
		onProb:     opts.OnProblem,
		checkC:     make(chan struct{}, 1),
		hash:       initialHash,
		rewatchMin: rewatchMin,
		rewatchMax: rewatchMax,
	}
	if w.debounce <= 0 {
		w.debounce = DefaultDebounce
	}
	if w.settle <= 0 {
		w.settle = DefaultSettle
	}
	if w.poll == 0 {
		w.poll = DefaultPoll
	}
	if w.clock == nil {
		w.clock = clockwork.NewRealClock()
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w
}

// Hash returns the hex SHA-256 of data, the form used by [Change.Hash],
// [New] and [Watcher.SetHash].
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// SetHash tells the watcher which content is in force, for example after a
// manual reload, so that it does not report that content again.
func (w *Watcher) SetHash(hash string) {
	w.mu.Lock()
	w.hash = hash
	w.mu.Unlock()
}

// Check asks Run to re-read the file at once, without waiting for the
// debounce; new content is still reported only once it has settled. It does
// not block; requests made before Run gets to them collapse into one, and
// one made before Run starts is served at start.
func (w *Watcher) Check() {
	select {
	case w.checkC <- struct{}{}:
	default:
	}
}

// Run watches the file until ctx is done and then returns nil. onChange is
// called from Run's goroutine, one call at a time, never after Run returns;
// while it runs, events queue up. Run reads the file once at start, after
// setting up the watch, so a change made between loading the config and
// starting the watcher is not missed. It returns an error only when misused:
// a nil onChange, or a second Run while one is running.
func (w *Watcher) Run(ctx context.Context, onChange func(Change)) error {
	if onChange == nil {
		return errors.New("configwatch: nil onChange")
	}
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("configwatch: watcher already running")
	}
	defer w.running.Store(false)
	if ctx.Err() != nil {
		return nil
	}

	var pollC <-chan time.Time
	if w.poll > 0 {
		t := w.clock.NewTicker(w.poll)
		defer t.Stop()
		pollC = t.Chan()
	}
	l := newLoop(w, onChange)
	defer l.close()
	l.tryWatch()
	l.check()
	w.log.Info("Watching config file", "path", w.path, "debounce", w.debounce, "settle", w.settle, "poll", max(w.poll, 0))

	for {
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-l.events:
			if !ok {
				l.closed()
				continue
			}
			l.event(ev)
		case err, ok := <-l.errs:
			if !ok {
				l.closed()
				continue
			}
			l.watchError(err)
		case <-l.debounceC:
			l.debounceFired()
		case <-l.rewatchC:
			l.rewatchFired()
		case <-pollC:
			l.pollTick()
		case <-w.checkC:
			l.check()
		}
	}
}

// loop is the state of one Run; only Run's goroutine touches it.
type loop struct {
	w        *Watcher
	onChange func(Change)

	fsw      *fsnotify.Watcher // nil until created, or after it broke
	events   <-chan fsnotify.Event
	errs     <-chan error
	watching bool        // the directory watch is in place
	dirInfo  os.FileInfo // the directory as watched, to notice it being replaced
	degraded bool        // the watch failed or was lost and has not been restored

	// Debounced re-read: due is when to read; the timer fires at fireAt <=
	// due and is re-armed for the rest.
	pending   bool
	due       time.Time
	fireAt    time.Time
	debounceT clockwork.Timer
	debounceC <-chan time.Time

	rewatchT     clockwork.Timer
	rewatchC     <-chan time.Time
	rewatchDelay time.Duration

	// candidate is new content read once and waiting for the read Settle
	// later that confirms it; nil when there is none. An event drops it.
	candidate *snapshot

	missing    bool          // the file was missing at the last read
	readFailed bool          // the last read failed (not missing)
	readErr    string        // the error of the last failed read, as reported
	readRetry  time.Duration // backoff after read errors
	errLog     logLimiter    // fsnotify errors
	readLog    logLimiter    // read errors

	// problemShown: OnProblem was called and no content has been reported
	// since, so even the content in force is reported, to clear it.
	problemShown bool
}

func newLoop(w *Watcher, onChange func(Change)) *loop {
	return &loop{
		w:        w,
		onChange: onChange,
		errLog:   newLogLimiter(errLogEvery),
		readLog:  newLogLimiter(errLogEvery),
	}
}

func (l *loop) close() {
	if l.debounceT != nil {
		l.debounceT.Stop()
	}
	if l.rewatchT != nil {
		l.rewatchT.Stop()
	}
	if l.fsw != nil {
		// Close waits for fsnotify's goroutines.
		_ = l.fsw.Close()
		l.fsw = nil
	}
}

// sameName compares file names the way the file system does.
func sameName(a, b string, fold bool) bool {
	if fold {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// watch sets up the directory watch.
func (l *loop) watch() error {
	if l.fsw == nil {
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			return fmt.Errorf("create file watcher: %w", err)
		}
		l.fsw, l.events, l.errs = fsw, fsw.Events, fsw.Errors
	}
	// Stat before Add: if the directory is replaced in between, the next
	// poll sees a different directory and re-adds the watch.
	info, err := os.Stat(l.w.dir)
	if err != nil {
		return fmt.Errorf("stat config directory: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("config directory %s is not a directory", l.w.dir)
	}
	// On Windows os.Stat reads the file ID lazily, at the first SameFile;
	// load it now, or a later comparison would read the new directory's.
	_ = os.SameFile(info, info)
	if err := l.fsw.Add(l.w.dir); err != nil {
		return fmt.Errorf("watch config directory: %w", err)
	}
	l.dirInfo, l.watching = info, true
	return nil
}

// tryWatch sets up the watch or schedules the next attempt, and reports
// whether the watch is in place.
func (l *loop) tryWatch() bool {
	err := l.watch()
	if err == nil {
		if l.degraded {
			l.w.log.Info("Config directory watch restored", "dir", l.w.dir)
			l.degraded = false
		}
		l.rewatchDelay = 0
		return true
	}
	if !l.degraded {
		l.w.log.Warn("Cannot watch the config directory; polling instead", "dir", l.w.dir, "err", err)
		l.degraded = true
	} else {
		l.w.log.Debug("Config directory watch retry failed", "dir", l.w.dir, "err", err)
	}
	l.scheduleRewatch()
	return false
}

func (l *loop) scheduleRewatch() {
	switch {
	case l.rewatchDelay == 0:
		l.rewatchDelay = l.w.rewatchMin
	default:
		l.rewatchDelay = min(2*l.rewatchDelay, l.w.rewatchMax)
	}
	if l.rewatchT == nil {
		l.rewatchT = l.w.clock.NewTimer(l.rewatchDelay)
		l.rewatchC = l.rewatchT.Chan()
		return
	}
	l.rewatchT.Stop()
	l.rewatchT.Reset(l.rewatchDelay)
}

func (l *loop) rewatchFired() {
	if l.watching {
		return // stale tick
	}
	if l.tryWatch() {
		// The file may have changed while nothing watched it, and the
		// directory may be being filled right now: read after the debounce.
		l.arm(l.w.debounce)
		return
	}
	if !l.pending {
		l.check()
	}
}

// lost drops a watch that no longer watches the config directory.
func (l *loop) lost(reason string) {
	if !l.watching {
		return
	}
	l.watching, l.dirInfo = false, nil
	if l.fsw != nil {
		// The watch may be gone already (inotify removes it with the
		// directory); the error says nothing useful then.
		_ = l.fsw.Remove(l.w.dir)
	}
	l.w.log.Warn("Config directory watch lost; polling instead", "dir", l.w.dir, "reason", reason)
	l.degraded = true
	l.rewatchDelay = 0
	l.scheduleRewatch()
	// Read soon: the file is probably gone with the directory, which is
	// worth a log line, or it changed while the watch was failing.
	l.arm(l.w.debounce)
}

// closed handles fsnotify's channels being closed under us.
func (l *loop) closed() {
	if l.fsw != nil {
		_ = l.fsw.Close()
	}
	l.fsw, l.events, l.errs = nil, nil, nil
	l.lost("file watcher closed")
}

func (l *loop) event(ev fsnotify.Event) {
	if l.w.dropEvents {
		return
	}
	name := filepath.Clean(ev.Name)
	if ev.Has(fsnotify.Remove|fsnotify.Rename) && sameName(name, l.w.dir, l.w.fold) {
		l.lost("directory removed or renamed")
		return
	}
	if !sameName(filepath.Base(name), l.w.base, l.w.fold) {
		return // another file in the directory
	}
	// The file is being written: whatever was read before must settle
	// again, counted from after this event.
	l.candidate = nil
	l.arm(l.w.debounce)
	// The log comes after arming, so a test that sees it knows the read
	// is scheduled (as for the settle log in check).
	l.w.log.Debug("Config file event", "op", ev.Op.String())
}

func (l *loop) watchError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		// Events were dropped, possibly ours: read to be sure.
		l.arm(l.w.debounce)
	}
	if ok, suppressed := l.errLog.allow(l.w.clock.Now()); ok {
		l.w.log.Warn("File watcher error", "dir", l.w.dir, "err", err, "suppressed", suppressed)
	}
}

// arm schedules a read d from now, replacing any earlier schedule: after
// an event the read waits for the full debounce again.
func (l *loop) arm(d time.Duration) {
	now := l.w.clock.Now()
	l.due = now.Add(d)
	if l.pending && !l.due.Before(l.fireAt) {
		return // the timer fires first and re-arms for the rest
	}
	l.pending = true
	l.setTimer(d)
}

func (l *loop) setTimer(d time.Duration) {
	l.fireAt = l.w.clock.Now().Add(d)
	if l.debounceT == nil {
		l.debounceT = l.w.clock.NewTimer(d)
		l.debounceC = l.debounceT.Chan()
		return
	}
	l.debounceT.Stop()
	l.debounceT.Reset(d)
}

func (l *loop) debounceFired() {
	if !l.pending {
		return // stale
	}
	if rest := l.due.Sub(l.w.clock.Now()); rest > 0 {
		l.setTimer(rest) // an event came in since the timer was set
		return
	}
	l.pending = false
	l.check()
}

func (l *loop) pollTick() {
	if l.watching {
		info, err := os.Stat(l.w.dir)
		if err != nil || !os.SameFile(info, l.dirInfo) {
			l.lost("directory replaced")
		}
	}
	if l.pending {
		return // a read is scheduled already
	}
	l.check()
}
