package store

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// makeDB creates a database with n records and returns its bytes.
func makeDB(t *testing.T, opts Options, n int) []byte {
	t.Helper()
	s := mustOpen(t, opts)
	for i := 0; i < n; i += 500 {
		mustAppend(t, s, inputs(i, min(500, n-i)), &SourceState{Source: "src", Watermark: "w"})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func corruptFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "agent.db.*.corrupt"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var corruptName = regexp.MustCompile(`^agent\.db\.\d{8}T\d{6}Z(-\d+)?\.corrupt$`)

// expectQuarantine opens a damaged file and checks the whole contract: a
// fresh working database, the old bytes kept aside, the event reported,
// logged, and persisted across a reopen until cleared.
func expectQuarantine(t *testing.T, opts Options, damaged []byte) {
	t.Helper()
	var logs logBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open of a corrupt file: %v", err)
	}
	q, ok := s.Quarantine()
	if !ok {
		t.Fatal("Quarantine() not reported")
	}
	dir := filepath.Dir(opts.Path)
	files := corruptFiles(t, dir)
	if len(files) != 1 || files[0] != q.CorruptPath || !corruptName.MatchString(filepath.Base(q.CorruptPath)) {
		t.Fatalf("corrupt files %v, quarantine %+v", files, q)
	}
	if old, err := os.ReadFile(q.CorruptPath); err != nil || !bytes.Equal(old, damaged) {
		t.Errorf("corrupt file does not hold the old bytes (err %v)", err)
	}
	if q.Reason == "" || q.At.IsZero() {
		t.Errorf("quarantine = %+v", q)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), q.CorruptPath) {
		t.Errorf("no warning logged: %s", logs.String())
	}
	t.Logf("reason: %s", q.Reason)

	// The fresh database works.
	st, err := s.Stats()
	if err != nil || st.Pending != 0 || st.DeadLetters != 0 {
		t.Errorf("fresh stats = %+v, %v", st, err)
	}
	if _, ok, _ := s.SourceState("src"); ok {
		t.Error("fresh database has the old source state")
	}
	mustAppend(t, s, inputs(1, 2), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Still reported after a restart, until cleared.
	s = mustOpen(t, opts)
	if q2, ok := s.Quarantine(); !ok || q2.CorruptPath != q.CorruptPath || !q2.At.Equal(q.At) {
		t.Errorf("after reopen Quarantine() = %+v, %v", q2, ok)
	}
	if n := len(mustPending(t, s, 10)); n != 2 {
		t.Errorf("pending after reopen = %d", n)
	}
	if err := s.ClearQuarantine(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Quarantine(); ok {
		t.Error("Quarantine() after ClearQuarantine")
	}
	_ = s.Close()
	s = mustOpen(t, opts)
	defer s.Close()
	if _, ok := s.Quarantine(); ok {
		t.Error("Quarantine() reported after clear and reopen")
	}
	if len(corruptFiles(t, dir)) != 1 {
		t.Error("corrupt file removed or duplicated")
	}
}

func TestQuarantineGarbage(t *testing.T) {
	for name, garbage := range map[string][]byte{
		"text":      []byte("this is not a bbolt database\n"),
		"pattern":   bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3}, 10000),
		"zero page": make([]byte, 3*4096),
	} {
		t.Run(name, func(t *testing.T) {
			opts := testOptions(t, "")
			if err := os.WriteFile(opts.Path, garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			expectQuarantine(t, opts, garbage)
		})
	}
}

func TestQuarantineTruncated(t *testing.T) {
	opts := testOptions(t, "")
	full := makeDB(t, opts, 3000)
	half := full[:len(full)/2]
	if err := os.WriteFile(opts.Path, half, 0o600); err != nil {
		t.Fatal(err)
	}
	expectQuarantine(t, opts, half)
}

func TestQuarantineBothMetaPagesFlipped(t *testing.T) {
	opts := testOptions(t, "")
	b := makeDB(t, opts, 10)
	ps := 4096
	b[16+40] ^= 0x04    // meta 0: pgid
	b[ps+16+48] ^= 0x01 // meta 1: txid
	if err := os.WriteFile(opts.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	expectQuarantine(t, opts, b)
}

func TestQuarantineBadFreelistPage(t *testing.T) {
	opts := testOptions(t, "")
	b := makeDB(t, opts, 1000)
	m0, m1 := parseMeta(b), parseMeta(b[4096:])
	m := m0
	if m1.txid > m0.txid {
		m = m1
	}
	off := int(m.freelist) * 4096
	b[off+10], b[off+11] = 0xfe, 0xff // count: far more ids than the page holds
	if err := os.WriteFile(opts.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	expectQuarantine(t, opts, b)
}

// One damaged meta page is what a torn write at power loss looks like:
// bbolt falls back to the other one, the previous transaction. That is not
// corruption: records and sync state roll back together and are re-fetched.
func TestSingleMetaPageFlipRecoversPreviousTransaction(t *testing.T) {
	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	mustAppend(t, s, inputs(1, 2), &SourceState{Source: "src", Watermark: "w1"})
	mustAppend(t, s, inputs(3, 2), &SourceState{Source: "src", Watermark: "w2"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	if parseMeta(b[4096:]).txid > parseMeta(b).txid {
		active = 1
	}
	b[active*4096+16+48] ^= 0x80 // txid of the newest meta page
	if err := os.WriteFile(opts.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s = mustOpen(t, opts)
	defer s.Close()
	if _, ok := s.Quarantine(); ok || len(corruptFiles(t, filepath.Dir(opts.Path))) != 0 {
		t.Fatal("quarantined a file bbolt can recover")
	}
	if !strings.Contains(logs.String(), "meta page") {
		t.Errorf("no warning logged: %q", logs.String())
	}
	st, _, _ := s.SourceState("src")
	if n := len(mustPending(t, s, 10)); n != 2 || st.Watermark != "w1" {
		t.Errorf("after fallback: %d pending, watermark %q; want 2, w1", n, st.Watermark)
	}
}

func TestLockedIsNotCorruption(t *testing.T) {
	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	defer s.Close()
	mustAppend(t, s, inputs(1, 1), nil)
	opts.OpenTimeout = 50 * 1e6 // 50ms
	s2, err := Open(opts)
	if !errors.Is(err, ErrLocked) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if files := corruptFiles(t, filepath.Dir(opts.Path)); len(files) != 0 {
		t.Fatalf("renamed a locked database: %v", files)
	}
	if n := len(mustPending(t, s, 10)); n != 1 {
		t.Errorf("first store lost its data: %d pending", n)
	}
}

func TestNewerFormatIsRefused(t *testing.T) {
	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	if err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, putUint64(formatVersion+1))
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if _, err := Open(opts); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("Open = %v, want ErrIncompatible", err)
	}
	if files := corruptFiles(t, filepath.Dir(opts.Path)); len(files) != 0 {
		t.Fatalf("quarantined a newer database: %v", files)
	}
}

func TestPermissionErrorIsNotCorruption(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores file permissions")
	}
	opts := testOptions(t, "")
	makeDB(t, opts, 1)
	if err := os.Chmod(opts.Path, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(opts); err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("Open = %v, want a permission error", err)
	}
	if files := corruptFiles(t, filepath.Dir(opts.Path)); len(files) != 0 {
		t.Fatalf("quarantined an unreadable database: %v", files)
	}
}

// outboxRoot returns the page id of the outbox bucket's root.
func outboxRoot(t *testing.T, s *Store) uint64 {
	t.Helper()
	var root uint64
	if err := s.view(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket(bucketOutbox).RootPage())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if root == 0 {
		t.Fatal("outbox bucket is inline")
	}
	return root
}

// A page damaged under a running store: bbolt panics, the store returns
// ErrCorrupt instead of crashing and marks the file; the next Open runs the
// full check and quarantines it.
func TestPanicMarksFileForFullCheck(t *testing.T) {
	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	mustAppend(t, s, inputs(0, 500), nil)
	mustAppend(t, s, inputs(500, 500), nil)
	root := outboxRoot(t, s)

	f, err := os.OpenFile(opts.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x40, 0}, int64(root)*4096+8); err != nil { // page flags: no such type
		t.Fatal(err)
	}
	_ = f.Close()

	if _, err := s.Pending(10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Pending on a damaged page = %v, want ErrCorrupt", err)
	}
	if _, err := os.Stat(opts.Path + checkMarkerSuffix); err != nil {
		t.Fatalf("no check marker: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damaged, err := os.ReadFile(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	expectQuarantine(t, opts, damaged)
	if _, err := os.Stat(opts.Path + checkMarkerSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("check marker left behind: %v", err)
	}
}

func TestCheckMarkerOnHealthyFile(t *testing.T) {
	opts := testOptions(t, "")
	makeDB(t, opts, 100)
	if err := os.WriteFile(opts.Path+checkMarkerSuffix, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, opts)
	defer s.Close()
	if _, ok := s.Quarantine(); ok {
		t.Fatal("healthy file quarantined")
	}
	if n := len(mustPending(t, s, 1000)); n != 100 {
		t.Errorf("pending = %d", n)
	}
	if _, err := os.Stat(opts.Path + checkMarkerSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("check marker not removed: %v", err)
	}
}

func TestEmptyFileIsInitialised(t *testing.T) {
	opts := testOptions(t, "")
	if err := os.WriteFile(opts.Path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, opts)
	defer s.Close()
	if _, ok := s.Quarantine(); ok {
		t.Error("empty file quarantined")
	}
	mustAppend(t, s, inputs(1, 1), nil)
}
