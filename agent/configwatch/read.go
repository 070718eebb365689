package configwatch

import (
	"errors"
	"io/fs"
	"time"

	"golang.org/x/time/rate"

	"github.com/pwbi/edge-agent/agent/config"
)

// problem tells the OnProblem hook, if any.
func (l *loop) problem(err error) {
	if f := l.w.onProb; f != nil {
		l.problemShown = true
		f(err)
	}
}

// snapshot is what one read saw of the file.
type snapshot struct {
	size    int64
	modTime time.Time
	hash    string
	at      time.Time // when it was read (not compared)
}

// equal reports whether two reads saw the same file.
func (s snapshot) equal(o snapshot) bool {
	return s.size == o.size && s.modTime.Equal(o.modTime) && s.hash == o.hash
}

// check reads the file and reports it once its new content has settled.
func (l *loop) check() {
	data, info, err := config.ReadFileSafe(l.w.path, "config file", config.MaxFileSize)
	if err != nil {
		l.candidate = nil
		l.readError(err)
		return
	}
	if l.missing || l.readFailed {
		l.w.log.Info("Config file readable again", "path", l.w.path)
	}
	l.missing, l.readFailed, l.readErr, l.readRetry = false, false, "", 0

	h := Hash(data)
	l.w.mu.Lock()
	same := h == l.w.hash
	l.w.mu.Unlock()
	if same {
		// The content in force: nothing can be half-written about it. It
		// is reported only to clear a problem shown.
		l.candidate = nil
		if l.problemShown {
			l.report(data, h)
			return
		}
		l.w.log.Debug("Config file unchanged", "path", l.w.path)
		return
	}
	now := l.w.clock.Now()
	snap := snapshot{size: info.Size(), modTime: info.ModTime(), hash: h, at: now}
	if l.candidate == nil || !l.candidate.equal(snap) {
		// First sight of this content (or it changed since the last read):
		// read again once it had time to change, and report only if it
		// did not. The log comes after arming, so a test that sees it
		// knows the timer is set.
		l.candidate = &snap
		l.arm(l.w.settle)
		l.w.log.Debug("Config file changed; waiting for it to settle", "path", l.w.path, "settle", l.w.settle)
		return
	}
	if rest := l.candidate.at.Add(l.w.settle).Sub(now); rest > 0 {
		// Read again too early (Check): the confirming read is still due.
		l.arm(rest)
		l.w.log.Debug("Config file not settled yet", "path", l.w.path, "wait", rest)
		return
	}
	l.candidate = nil
	l.report(data, h)
}

// report hands settled content to the callback.
func (l *loop) report(data []byte, h string) {
	l.problemShown = false
	l.w.mu.Lock()
	l.w.hash = h
	l.w.mu.Unlock()
	l.w.log.Info("Config file changed", "path", l.w.path, "sha256", h, "bytes", len(data))
	l.onChange(Change{Data: data, Hash: h})
}

// readError handles a failed read: a missing file waits for the next event
// or poll; any other error is reported and retried with a backoff.
func (l *loop) readError(err error) {
	if errors.Is(err, fs.ErrNotExist) {
		l.readFailed, l.readErr, l.readRetry = false, "", 0
		if !l.missing {
			l.w.log.Info("Config file missing; keeping the running configuration", "path", l.w.path)
			l.missing = true
			l.problem(err)
		}
		return // the next event or poll brings it back
	}
	l.missing = false
	// Once per episode, and again when the error changes (a FIFO replaced
	// by a link to a device), so that what the agent shows is current.
	if msg := err.Error(); !l.readFailed || msg != l.readErr {
		l.readErr = msg
		l.problem(err)
	}
	l.readFailed = true
	if ok, suppressed := l.readLog.allow(l.w.clock.Now()); ok {
		l.w.log.Warn("Reading config file failed; keeping the running configuration",
			"path", l.w.path, "err", err, "suppressed", suppressed)
	}
	if l.readRetry == 0 {
		l.readRetry = l.w.rewatchMin
	} else {
		l.readRetry = min(2*l.readRetry, l.w.rewatchMax)
	}
	if !l.pending {
		l.arm(l.readRetry)
	}
}

// logLimiter lets one log line through per interval and counts the rest.
// It reads time from the watcher's clock (passed to allow), so that tests
// on a fake clock stay deterministic.
type logLimiter struct {
	lim        *rate.Limiter
	suppressed int
}

func newLogLimiter(every time.Duration) logLimiter {
	return logLimiter{lim: rate.NewLimiter(rate.Every(every), 1)}
}

// allow reports whether to log now and how many lines were suppressed since
// the last one logged.
func (r *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	if !r.lim.AllowN(now, 1) {
		r.suppressed++
		return false, 0
	}
	suppressed, r.suppressed = r.suppressed, 0
	return true, suppressed
}
