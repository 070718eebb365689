package store

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// faults makes reads of the database file through Options.openRead fail
// with EIO while it is on, as a failing disk or a flaky network share does.
type faults struct {
	mu     sync.Mutex
	on     bool
	failed int // reads that failed
}

func (fl *faults) set(on bool) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.on = on
}

func (fl *faults) count() int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.failed
}

func (fl *faults) open(name string) (readFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: f, fl: fl}, nil
}

type faultyFile struct {
	*os.File
	fl *faults
}

func (f *faultyFile) ReadAt(p []byte, off int64) (int, error) {
	f.fl.mu.Lock()
	on := f.fl.on
	if on {
		f.fl.failed++
	}
	f.fl.mu.Unlock()
	if on {
		return 0, &fs.PathError{Op: "read", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.ReadAt(p, off)
}

// ioTestOptions returns options whose reads fail while fl is on, whose
// retry waits are recorded instead of slept (atWait runs at each wait), and
// whose log goes to logs.
func ioTestOptions(t *testing.T, fl *faults, logs *logBuffer, waits *[]time.Duration, atWait func()) Options {
	t.Helper()
	opts := testOptions(t, "")
	opts.openRead = fl.open
	opts.ioRetry = []time.Duration{time.Second, 2 * time.Second}
	opts.sleep = func(d time.Duration) {
		*waits = append(*waits, d)
		if atWait != nil {
			atWait()
		}
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	return opts
}

func expectLeftInPlace(t *testing.T, opts Options, want []byte) {
	t.Helper()
	if files := corruptFiles(t, filepath.Dir(opts.Path)); len(files) != 0 {
		t.Fatalf("moved aside on an I/O error: %v", files)
	}
	got, err := os.ReadFile(opts.Path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("database file changed or gone (err %v)", err)
	}
}

// A disk that fails to read the database at start: the file is kept, Open
// retries, then says it is an I/O error and that the file was left alone.
func TestReadErrorAtOpenIsRetriedNotQuarantined(t *testing.T) {
	fl := &faults{}
	var (
		logs  logBuffer
		waits []time.Duration
	)
	opts := ioTestOptions(t, fl, &logs, &waits, nil)
	before := makeDB(t, opts, 100)

	fl.set(true)
	s, err := Open(opts)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded while every read fails")
	}
	if !errors.Is(err, ErrIO) || !errors.Is(err, syscall.EIO) || errors.Is(err, ErrLocked) {
		t.Fatalf("Open = %v, want ErrIO wrapping EIO", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "3 attempts") || !strings.Contains(msg, "left in place") {
		t.Errorf("error does not say what happened: %v", err)
	}
	if !slices.Equal(waits, []time.Duration{time.Second, 2 * time.Second}) {
		t.Errorf("waits between attempts = %v", waits)
	}
	if n := strings.Count(logs.String(), "Cannot open the database; retrying"); n != 2 {
		t.Errorf("%d retries logged, want 2:\n%s", n, logs.String())
	}
	if fl.count() < 3 {
		t.Errorf("only %d reads failed: the attempts did not read", fl.count())
	}
	expectLeftInPlace(t, opts, before)
}

// The fault clears while Open waits between attempts: it opens the file as
// it was, every record intact.
func TestReadErrorClearsDuringRetries(t *testing.T) {
	fl := &faults{}
	var (
		logs  logBuffer
		waits []time.Duration
	)
	opts := ioTestOptions(t, fl, &logs, &waits, func() { fl.set(false) })
	makeDB(t, opts, 100)
	var want []Record
	{
		s := mustOpen(t, opts)
		want = mustPending(t, s, 1000)
		_ = s.Close()
	}
	waits = nil

	fl.set(true)
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open after the fault cleared: %v", err)
	}
	defer s.Close()
	if len(waits) != 1 || strings.Count(logs.String(), "Cannot open the database; retrying") != 1 {
		t.Errorf("waits %v; log:\n%s", waits, logs.String())
	}
	if _, ok := s.Quarantine(); ok || len(corruptFiles(t, filepath.Dir(opts.Path))) != 0 {
		t.Fatal("quarantined a database that had a read error")
	}
	got := mustPending(t, s, 1000)
	if len(got) != 100 || len(got) != len(want) {
		t.Fatalf("%d records after the retry, want 100", len(got))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || got[i].Key != want[i].Key || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("record %d differs: %+v, want %+v", i, got[i], want[i])
		}
	}
	if st, ok, _ := s.SourceState("src"); !ok || st.Watermark != "w" {
		t.Errorf("source state lost: %+v", st)
	}
}

// bbolt reports a page it could not read as an invalid file. A file that
// looks corrupt is moved aside only if it can be read from end to end.
func TestUnreadableLookingCorruptIsNotQuarantined(t *testing.T) {
	fl := &faults{}
	var (
		logs  logBuffer
		waits []time.Duration
	)
	opts := ioTestOptions(t, fl, &logs, &waits, nil)
	garbage := bytes.Repeat([]byte("not a database "), 1000)
	if err := os.WriteFile(opts.Path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	fl.set(true)
	if s, err := Open(opts); !errors.Is(err, ErrIO) || !errors.Is(err, syscall.EIO) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open = %v, want ErrIO", err)
	}
	expectLeftInPlace(t, opts, garbage)
	if !strings.Contains(logs.String(), "cannot be read; not moving it aside") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}

	// Readable, it is what it looks like: quarantined as before.
	fl.set(false)
	expectQuarantine(t, opts, garbage)
}

// checkFile tells a short file (corrupt) from a read error (not).
func TestCheckFileReadErrors(t *testing.T) {
	opts := testOptions(t, "")
	db := makeDB(t, opts, 10)
	if _, err := checkFile(errReader{syscall.EIO}, 4096, int64(len(db))); !errors.Is(err, ErrIO) || !errors.Is(err, syscall.EIO) {
		t.Errorf("EIO: %v, want ErrIO", err)
	} else if _, corrupt := isCorrupt(err); corrupt {
		t.Errorf("EIO classified as corruption: %v", err)
	}
	if _, err := checkFile(errReader{fs.ErrPermission}, 4096, int64(len(db))); !errors.Is(err, ErrIO) {
		t.Errorf("permission: %v, want ErrIO", err)
	}
	// A file shorter than it claims to be (the size was stale) is corrupt.
	if _, err := checkFile(bytes.NewReader(db[:4096+100]), 4096, int64(len(db))); err == nil {
		t.Error("short file accepted")
	} else if _, corrupt := isCorrupt(err); !corrupt || errors.Is(err, ErrIO) {
		t.Errorf("short read: %v, want corruption", err)
	}
}

type errReader struct{ err error }

func (r errReader) ReadAt([]byte, int64) (int, error) { return 0, r.err }

var _ io.ReaderAt = errReader{}
