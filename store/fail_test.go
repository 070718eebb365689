package store

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// everyOperation calls every public operation of s and returns their
// errors by name.
func everyOperation(s *Store) map[string]error {
	errs := map[string]error{}
	_, errs["Append"] = s.Append(inputs(900, 1), nil)
	_, errs["Pending"] = s.Pending(10)
	errs["Ack"] = s.Ack(1)
	errs["DeadLetter"] = s.DeadLetter(1, "x")
	_, errs["AddDead"] = s.AddDead(txInput(901, "1"), StageMap, "x")
	_, errs["DeadLetters"] = s.DeadLetters(10)
	_, errs["Requeue"] = s.Requeue(1)
	_, errs["RequeueAll"] = s.RequeueAll()
	_, errs["DeleteDead"] = s.DeleteDead(1)
	_, errs["PruneDedupe"] = s.PruneDedupe(time.Now())
	errs["PutSourceState"] = s.PutSourceState(SourceState{Source: "src"})
	_, _, errs["SourceState"] = s.SourceState("src")
	_, errs["SourceStates"] = s.SourceStates()
	_, errs["Stats"] = s.Stats()
	errs["ClearQuarantine"] = s.ClearQuarantine()
	_, errs["PutDoc"] = s.PutDoc("c", "k", []byte("v"), nil)
	_, _, errs["GetDoc"] = s.GetDoc("c", "k")
	errs["Docs"] = s.Docs("c", func(string, []byte) error { return nil })
	errs["DeleteDoc"] = s.DeleteDoc("c", "k")
	_, _, errs["Compact"] = s.Compact()
	errs["MaybeCompact"] = s.MaybeCompact()
	return errs
}

func expectAll(t *testing.T, errs map[string]error, want error) {
	t.Helper()
	for name, err := range errs {
		if !errors.Is(err, want) {
			t.Errorf("%s = %v, want %v", name, err, want)
		}
	}
}

// The hourly compaction of a long-running agent cannot reopen the file:
// the store must not go on quietly with no database behind it.
func TestCompactReopenFailureFailsStore(t *testing.T) {
	old := compactMinSize
	compactMinSize = 1 << 20
	t.Cleanup(func() { compactMinSize = old })

	var logs logBuffer
	opts := testOptions(t, "")
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := mustOpen(t, opts)
	kept := fillAndDrain(t, s, 4000, 3)
	space, notify := s.Space(), s.Notify()
	for len(notify) > 0 {
		<-notify
	}
	if isClosed(s.Failed()) || s.Err() != nil {
		t.Fatal("failed before anything went wrong")
	}

	s.testHookReopen = func() error { return errors.New("injected reopen failure") }
	err := s.MaybeCompact()
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "injected reopen failure") {
		t.Fatalf("MaybeCompact = %v, want ErrFailed with the reason", err)
	}
	if !isClosed(s.Failed()) {
		t.Fatal("Failed() did not fire")
	}
	if err := s.Err(); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "injected reopen failure") {
		t.Fatalf("Err() = %v", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "injected reopen failure") {
		t.Errorf("failure not logged: %s", logs.String())
	}
	// Waiting producers and the forwarder are woken to see the error.
	if !isClosed(space) || !signalled(notify) {
		t.Error("waiters not woken by the failure")
	}
	expectAll(t, everyOperation(s), ErrFailed)

	if err := s.Close(); err != nil {
		t.Errorf("Close of a failed store = %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	expectAll(t, everyOperation(s), ErrClosed)

	// The file itself is fine: a restart (what the agent does) recovers.
	s2 := mustOpen(t, opts)
	defer s2.Close()
	if got := seqsOf(mustPending(t, s2, 10)); len(got) != len(kept) || got[0] != kept[0] {
		t.Errorf("after restart pending = %v, want %v", got, kept)
	}
}

func TestCompactNowReopenFailureFailsStore(t *testing.T) {
	s := openTemp(t)
	mustAppend(t, s, inputs(1, 5), nil)
	s.testHookReopen = func() error { return errors.New("no such luck") }
	if _, _, err := s.Compact(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Compact = %v, want ErrFailed", err)
	}
	if !isClosed(s.Failed()) {
		t.Fatal("Failed() did not fire")
	}
	expectAll(t, everyOperation(s), ErrFailed)
}

// bbolt reports "database not open" on a handle the store did not close:
// the store fails instead of answering every call with an error forever.
func TestDatabaseNotOpenUnderneathFailsStore(t *testing.T) {
	s := openTemp(t)
	mustAppend(t, s, inputs(1, 5), nil)
	if err := s.db.Close(); err != nil { // the handle lost behind the store's back
		t.Fatal(err)
	}
	_, err := s.Pending(10)
	if !errors.Is(err, ErrFailed) || !errors.Is(err, berrors.ErrDatabaseNotOpen) {
		t.Fatalf("Pending = %v, want ErrFailed wrapping ErrDatabaseNotOpen", err)
	}
	if !isClosed(s.Failed()) || !errors.Is(s.Err(), berrors.ErrDatabaseNotOpen) {
		t.Fatalf("Failed() not fired or Err() = %v", s.Err())
	}
	expectAll(t, everyOperation(s), ErrFailed)
}

// A deliberate Close is not a failure, even with operations, a compaction
// and the Close racing each other.
func TestDeliberateCloseIsNotAFailure(t *testing.T) {
	s := mustOpen(t, testOptions(t, ""))
	mustAppend(t, s, inputs(1, 50), nil)
	var wg sync.WaitGroup
	errc := make(chan error, 100)
	for g := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := s.Append(inputs(1000*g+i, 1), nil)
				if err == nil {
					_, err = s.Pending(5)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	if _, _, err := s.Compact(); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("operation racing Close = %v, want ErrClosed", err)
		}
	}
	if isClosed(s.Failed()) || s.Err() != nil {
		t.Fatalf("Close made the store fail: %v", s.Err())
	}
	errs := everyOperation(s)
	expectAll(t, errs, ErrClosed)
	for name, err := range errs {
		if errors.Is(err, ErrFailed) {
			t.Errorf("%s after Close = %v", name, err)
		}
	}
	if isClosed(s.Failed()) {
		t.Fatal("Failed() fired after Close")
	}
}
