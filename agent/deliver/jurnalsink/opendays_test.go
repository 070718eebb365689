package jurnalsink

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/store"
)

// scanHook runs after a full read of the collection, as a write of
// another goroutine could land right after the read's snapshot.
type scanHook struct {
	*store.Store
	after func()
}

func (h *scanHook) Docs(coll string, fn func(string, []byte) error) error {
	err := h.Store.Docs(coll, fn)
	if h.after != nil {
		after := h.after
		h.after = nil
		after()
	}
	return err
}

func indexSink(t *testing.T) (*Sink, *scanHook) {
	t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	docs := &scanHook{Store: st}
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, wib)
	s := New(Config{BaseURL: "http://127.0.0.1:1", ClientID: "id", ClientSecret: "s", Mode: ModeDailySummary,
		CloseAfter: 2 * time.Hour, Location: wib}, Options{Docs: docs, Clock: clockwork.NewFakeClockAt(now)})
	return s, docs
}

var wib = time.FixedZone("WIB", 7*3600)

func waitingOf(s *Sink) map[string]int {
	w := map[string]int{}
	for _, o := range s.Status().Outlets {
		w[o.OutletID] = o.Waiting
	}
	return w
}

func day(outlet, date string, sales int, posted bool) *dayState {
	d := &dayState{Outlet: outlet, Date: date, Sales: map[string]daySale{}, Posted: posted}
	for i := range sales {
		d.Sales[fmt.Sprint("T", i)] = daySale{Method: "cash"}
	}
	return d
}

// The status's waiting sales and closed days follow every write of a day
// once the index is loaded: a ledgered sale, a day posted, a sale taken
// out of its ledger; and a new sink on the same store (a restart) finds
// the same.
func TestOpenDayIndexFollowsWrites(t *testing.T) {
	s, _ := indexSink(t)
	mustPut := func(d *dayState) {
		t.Helper()
		if err := s.putDay(d); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(day("101", "2026-12-05", 4, false)) // closed at 02:00 today
	mustPut(day("101", "2026-12-06", 2, false)) // today: open
	mustPut(day("102", "2026-12-04", 9, true))  // posted
	if got := waitingOf(s); got["101"] != 6 || got["102"] != 0 {
		t.Fatalf("waiting %v, want 101: 6, 102: 0", got)
	}
	if st := s.Status(); st.ClosedDays != 1 {
		t.Fatalf("closed days %d, want 1", st.ClosedDays)
	}
	mustPut(day("101", "2026-12-06", 3, false)) // one more sale today
	mustPut(day("101", "2026-12-05", 4, true))  // the closed day posted
	mustPut(day("102", "2026-12-06", 1, false))
	want := map[string]int{"101": 3, "102": 1}
	if got := waitingOf(s); got["101"] != 3 || got["102"] != 1 {
		t.Fatalf("after the writes: waiting %v, want %v", got, want)
	}
	if st := s.Status(); st.ClosedDays != 0 {
		t.Fatalf("after the post: closed days %d, want 0", st.ClosedDays)
	}
	restarted := New(s.cfg, Options{Docs: s.docs, Clock: s.clock})
	if got := waitingOf(restarted); got["101"] != 3 || got["102"] != 1 {
		t.Fatalf("after a restart: waiting %v, want %v", got, want)
	}
}

// A write landing while the index is loaded (the status loads it without
// holding work) is not lost: that load is not kept, and the next read
// sees the write.
func TestOpenDayIndexLoadRacingAWrite(t *testing.T) {
	s, docs := indexSink(t)
	if err := putJSON(docs, dayKey("101", "2026-12-06"), day("101", "2026-12-06", 2, false)); err != nil {
		t.Fatal(err)
	}
	docs.after = func() {
		if err := s.putDay(day("101", "2026-12-06", 5, false)); err != nil {
			t.Error(err)
		}
	}
	if got := waitingOf(s)["101"]; got != 2 {
		t.Fatalf("first read: waiting %d, want 2 (what the read saw)", got)
	}
	if got := waitingOf(s)["101"]; got != 5 {
		t.Fatalf("next read: waiting %d, want 5 (the write during the first load)", got)
	}
	if got := waitingOf(s)["101"]; got != 5 {
		t.Fatalf("third read (from the index): waiting %d, want 5", got)
	}
}

// A posted day's document starts with postedPrefix, so loading the index
// skips it unread; one written in the old field order is still read.
func TestPostedDayDocumentPrefix(t *testing.T) {
	s, docs := indexSink(t)
	if err := s.putDay(day("101", "2026-12-01", 3, true)); err != nil {
		t.Fatal(err)
	}
	b, _, err := docs.GetDoc(Collection, dayKey("101", "2026-12-01"))
	if err != nil || len(b) < len(postedPrefix) || string(b[:len(postedPrefix)]) != string(postedPrefix) {
		t.Fatalf("posted day document %.40q (err %v), want it to start %q", b, err, postedPrefix)
	}
	old := []byte(`{"outlet":"101","date":"2026-12-02","sales":{"T1":{"method":"cash"}},"posted":true}`)
	if _, err := docs.PutDoc(Collection, dayKey("101", "2026-12-02"), old, nil); err != nil {
		t.Fatal(err)
	}
	if got := waitingOf(s)["101"]; got != 0 {
		t.Fatalf("waiting %d, want 0: both days are posted", got)
	}
}

// A sink handed the shared state of one on another store (a reload with
// other Docs) reads its own store's open days, not the index of the
// other's; and the other one's writes do not reach its index.
func TestOpenDayIndexOtherStore(t *testing.T) {
	first, _ := indexSink(t)
	if err := first.putDay(day("101", "2026-12-06", 2, false)); err != nil {
		t.Fatal(err)
	}
	if got := waitingOf(first)["101"]; got != 2 {
		t.Fatalf("first store: waiting %d, want 2", got)
	}
	other, docs := indexSink(t)
	if err := putJSON(docs, dayKey("102", "2026-12-06"), day("102", "2026-12-06", 7, false)); err != nil {
		t.Fatal(err)
	}
	next := New(first.cfg, Options{Docs: docs, Clock: other.clock, Previous: first})
	if got := waitingOf(next); got["101"] != 0 || got["102"] != 7 {
		t.Fatalf("after the reload: waiting %v, want 102: 7 alone (its store's)", got)
	}
	if err := first.putDay(day("101", "2026-12-06", 3, false)); err != nil { // the replaced sink finishing
		t.Fatal(err)
	}
	if got := waitingOf(next); got["101"] != 0 || got["102"] != 7 {
		t.Fatalf("after the replaced sink's write: waiting %v, want 102: 7 alone", got)
	}
}
