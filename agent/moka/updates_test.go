package moka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/store"
)

// updatingConn is a fakeConn that also implements Updater: its updates
// walk serves the ids in changed, and can fail once.
type updatingConn struct {
	*fakeConn
	umu      sync.Mutex
	changed  map[string][]string
	ufroms   []time.Time
	failNext bool
}

func (u *updatingConn) Updates(ctx context.Context, outlet string, from time.Time, emit func(Page) error) error {
	u.umu.Lock()
	ids := append([]string(nil), u.changed[outlet]...)
	u.ufroms = append(u.ufroms, from)
	fail := u.failNext
	u.failNext = false
	u.umu.Unlock()
	if fail {
		return errors.New("moka: 503 service unavailable")
	}
	var p Page
	for _, id := range ids {
		data := fmt.Sprintf(`{"external_id":%q,"status":"void"}`, id)
		p.Inputs = append(p.Inputs, store.Input{Kind: store.KindTransaction, Key: "moka/b1/" + outlet + "/" + id, Data: json.RawMessage(data)})
	}
	p.Last = true
	return emit(p)
}

// hintErr is an ErrUnauthorized that says what to do.
type hintErr struct{}

func (hintErr) Error() string { return "moka grant revoked" }
func (hintErr) Unwrap() error { return ErrUnauthorized }
func (hintErr) AuthHint() string {
	return "Moka needs to be re-authorized: run `pwbi-agent moka connect`"
}

func TestUpdatesPassHasItsOwnWatermark(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	conn := &updatingConn{fakeConn: newFakeConn(), changed: map[string][]string{}}
	conn.outlets = conn.outlets[:1]
	conn.set("o1", "t1", "t2")
	st := openStore(t, 0)
	s := newSyncer(conn, st, clock)

	// The first poll walks the transactions from the backfill start and
	// the updates from the overlap only (the backfill has the current
	// state already).
	s.poll(context.Background())
	tx, _, _ := st.SourceState("moka/b1/o1/transactions")
	up, ok, _ := st.SourceState("moka/b1/o1/updates")
	if !ok || up.Watermark != start.UTC().Format(time.RFC3339Nano) || tx.Watermark != up.Watermark {
		t.Fatalf("watermarks: transactions %q updates %q", tx.Watermark, up.Watermark)
	}
	if len(conn.ufroms) != 1 || !conn.ufroms[0].Equal(start.Add(-Overlap)) || !conn.froms[0].Equal(start.AddDate(0, 0, -30)) {
		t.Fatalf("updates from %v", conn.ufroms)
	}

	// An old sale is voided: only the updates pass brings it. A failure of
	// that pass keeps its watermark while the transactions one advances.
	conn.changed["o1"] = []string{"old-1"}
	conn.failNext = true
	clock.Advance(5 * time.Minute)
	second := clock.Now()
	s.poll(context.Background())
	tx, _, _ = st.SourceState("moka/b1/o1/transactions")
	up, _, _ = st.SourceState("moka/b1/o1/updates")
	if tx.Watermark != second.UTC().Format(time.RFC3339Nano) || up.Watermark != start.UTC().Format(time.RFC3339Nano) {
		t.Fatalf("after a failed updates pass: transactions %q updates %q", tx.Watermark, up.Watermark)
	}
	if tx.LastError == "" {
		t.Error("the failed updates pass is not shown on the outlet")
	}
	if got := s.Status().Outlets[0].LastError; got == "" {
		t.Error("status does not show the failure")
	}

	clock.Advance(5 * time.Minute)
	third := clock.Now()
	s.poll(context.Background())
	up, _, _ = st.SourceState("moka/b1/o1/updates")
	if up.Watermark != third.UTC().Format(time.RFC3339Nano) {
		t.Fatalf("updates watermark %q after success", up.Watermark)
	}
	// It started from its own watermark (the first poll), minus the overlap.
	if last := conn.ufroms[len(conn.ufroms)-1]; !last.Equal(start.Add(-Overlap)) {
		t.Errorf("updates walked from %v, want %v", last, start.Add(-Overlap))
	}
	found := false
	for _, k := range keys(t, st) {
		found = found || k == "moka/b1/o1/old-1"
	}
	if !found {
		t.Error("the voided old sale was not buffered")
	}
	if got := s.Status().Outlets[0]; got.LastError != "" || got.Transactions != 3 {
		t.Errorf("outlet status %+v", got)
	}
}

func TestAuthHintReplacesTheDefaultText(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	conn := &hintConn{fakeConn: newFakeConn()}
	s := newSyncer(conn, openStore(t, 0), clock)
	s.poll(context.Background())
	if got := s.Status().AuthError; got != (hintErr{}).AuthHint() {
		t.Fatalf("status error %q", got)
	}
}

type hintConn struct{ *fakeConn }

func (h *hintConn) Outlets(context.Context) ([]Outlet, error) {
	return nil, fmt.Errorf("list outlets: %w", hintErr{})
}
