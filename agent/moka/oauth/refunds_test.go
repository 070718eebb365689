package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

// buffer is what reaches the agent's buffer, in order: the pages' records
// and the records the refund ledger writes with its documents. It keeps,
// like the store's de-duplication, the last data of every key, and counts
// the writes that changed a key's data.
type buffer struct {
	mu      sync.Mutex
	data    map[string][]byte
	changes map[string]int
}

func newBuffer() *buffer { return &buffer{data: map[string][]byte{}, changes: map[string]int{}} }

func (b *buffer) add(in []store.Input) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, x := range in {
		if !bytes.Equal(b.data[x.Key], x.Data) {
			b.changes[x.Key]++
		}
		b.data[x.Key] = x.Data
	}
}

func (b *buffer) emit(p feed.Page) error {
	b.add(p.Inputs)
	return nil
}

func (b *buffer) snapshot() map[string][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string][]byte, len(b.data))
	for k, v := range b.data {
		out[k] = v
	}
	return out
}

// ledgerStore is a LedgerStore in memory whose PutDoc hands its records to
// a buffer, as the store appends them in the same transaction. full makes
// the next PutDoc calls with records fail with store.ErrFull.
type ledgerStore struct {
	buf  *buffer
	mu   sync.Mutex
	docs map[string]map[string][]byte
	full int
	puts int
}

func newLedgerStore(buf *buffer) *ledgerStore {
	return &ledgerStore{buf: buf, docs: map[string]map[string][]byte{}}
}

func (s *ledgerStore) PutDoc(coll, key string, value []byte, in []store.Input) (store.AppendResult, error) {
	s.mu.Lock()
	if s.full > 0 && len(in) > 0 {
		s.full--
		s.mu.Unlock()
		return store.AppendResult{}, store.ErrFull
	}
	s.puts++
	if s.docs[coll] == nil {
		s.docs[coll] = map[string][]byte{}
	}
	s.docs[coll][key] = append([]byte(nil), value...)
	s.mu.Unlock()
	s.buf.add(in)
	return store.AppendResult{Appended: len(in)}, nil
}

func (s *ledgerStore) GetDoc(coll, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.docs[coll][key]
	return append([]byte(nil), v...), ok, nil
}

func (s *ledgerStore) Docs(coll string, fn func(string, []byte) error) error {
	s.mu.Lock()
	var keys []string
	for k := range s.docs[coll] {
		keys = append(keys, k)
	}
	vals := map[string][]byte{}
	for _, k := range keys {
		vals[k] = s.docs[coll][k]
	}
	s.mu.Unlock()
	for _, k := range keys {
		if err := fn(k, vals[k]); err != nil {
			return err
		}
	}
	return nil
}

func (s *ledgerStore) DeleteDoc(coll, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.docs[coll], key)
	return nil
}

func (s *ledgerStore) Space() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func (s *ledgerStore) doc(t *testing.T, key string) (refundsDoc, bool) {
	t.Helper()
	v, ok, _ := s.GetDoc(RefundsCollection, key)
	var d refundsDoc
	if ok {
		if err := json.Unmarshal(v, &d); err != nil {
			t.Fatal(err)
		}
	}
	return d, ok
}

// fetches counts the requests that fetched one sale again: a created_at
// window of two milliseconds.
func fetches(f *oauthfake.Server) int {
	n := 0
	for _, r := range f.Requests() {
		if !strings.HasSuffix(r.Path, "get_latest_transactions") || r.Query.Get("time_filter") != "" {
			continue
		}
		if walkEpoch(r.Query.Get("until")).Sub(walkEpoch(r.Query.Get("since"))) <= 2*time.Millisecond {
			n++
		}
	}
	return n
}

func expectedOf(f *oauthfake.Server, id string) unified.Transaction {
	for _, tx := range f.Expected() {
		if tx.ExternalID == id {
			return tx
		}
	}
	panic("no sale " + id)
}

func wantData(t *testing.T, buf map[string][]byte, tx unified.Transaction) {
	t.Helper()
	canon, err := tx.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := buf[tx.Key()]; !ok {
		t.Fatalf("sale %s never buffered", tx.ExternalID)
	} else if !bytes.Equal(got, canon) {
		t.Fatalf("sale %s:\n got %s\nwant %s", tx.ExternalID, got, canon)
	}
}

// TestRefundRowsAreNeverSales: with refunds arriving as rows of their own
// (parent_payment_id) for some sales and as flags on the sale for others,
// a first sync and its updates pass buffer exactly the sales, each with
// its refunds, and no record for any refund row; with the ledger in the
// store (the sale's new record written with its ledger document) or in
// memory (the record sent with the page).
func TestRefundRowsAreNeverSales(t *testing.T) {
	for _, withStore := range []bool{true, false} {
		name := "memory"
		if withStore {
			name = "store"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, oauthfake.Options{Outlets: 2, Days: 12, TxPerDay: 30, RefundStyle: oauthfake.RefundMixed})
			e.authorize()
			buf := newBuffer()
			if withStore {
				e.conn.WithLedger(newLedgerStore(buf))
			}
			ctx := context.Background()
			for _, o := range e.fake.OutletIDs() {
				if err := e.conn.Transactions(ctx, o, t0.AddDate(0, 0, -30), buf.emit); err != nil {
					t.Fatal(err)
				}
				if err := e.conn.Updates(ctx, o, t0.Add(-overlap), buf.emit); err != nil {
					t.Fatal(err)
				}
			}
			want := e.fake.Expected()
			checkTransactions(t, buf.snapshot(), want)
			seen := map[unified.Status]int{}
			for _, tx := range want {
				seen[tx.Status]++
			}
			if seen[unified.StatusRefunded] == 0 || seen[unified.StatusPartiallyRefunded] == 0 {
				t.Fatalf("statuses %v: no refunds in the data", seen)
			}
			if fetches(e.fake) == 0 {
				t.Error("no refund row came after its sale's page: nothing fetched again")
			}
		})
	}
}

// TestRefundRowAfterItsSaleWasSynced: a sale synced by an earlier poll is
// refunded; the refund arrives as a row of its own in the next poll. The
// sale is fetched again (one request) and buffered as a new version with
// the refund, once; later polls that see the row again change nothing and
// fetch nothing; a second refund row adds up.
func TestRefundRowAfterItsSaleWasSynced(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 1, Days: 6, TxPerDay: 40, NoEvents: true})
	e.authorize()
	buf := newBuffer()
	ls := newLedgerStore(buf)
	e.conn.WithLedger(ls)
	ctx := context.Background()
	o := e.fake.OutletIDs()[0]
	poll := func(from time.Time) {
		t.Helper()
		if err := e.conn.Transactions(ctx, o, from, buf.emit); err != nil {
			t.Fatal(err)
		}
		if err := e.conn.Updates(ctx, o, from, buf.emit); err != nil {
			t.Fatal(err)
		}
	}
	poll(t0.AddDate(0, 0, -10))
	checkTransactions(t, buf.snapshot(), e.fake.Expected())
	var sale string
	for _, p := range e.fake.Truth() {
		if t0.Sub(p.CreatedAt) > 3*24*time.Hour {
			sale = p.ID
			break
		}
	}
	key := unified.Key(e.fake.BusinessID(), o, sale)

	e.fc.Advance(time.Hour)
	row, err := e.fake.RefundRow(sale, true)
	if err != nil {
		t.Fatal(err)
	}
	lastSync := e.fc.Now()
	poll(lastSync.Add(-overlap))
	tx := expectedOf(e.fake, sale)
	if tx.Status != unified.StatusPartiallyRefunded || tx.RefundAmount.IsZero() {
		t.Fatalf("expected %s %s", tx.Status, tx.RefundAmount)
	}
	got := buf.snapshot()
	wantData(t, got, tx)
	if _, ok := got[unified.Key(e.fake.BusinessID(), o, row)]; ok {
		t.Fatal("the refund row was buffered as a sale")
	}
	if n := buf.changes[key]; n != 2 {
		t.Fatalf("sale buffered %d times, want 2 (the sale, then with its refund)", n)
	}
	if n := fetches(e.fake); n != 1 {
		t.Fatalf("%d fetches of a sale, want 1", n)
	}
	if d, ok := ls.doc(t, key); !ok || d.Pending || len(d.Refunds) != 1 || d.Refunds[0].ID != row {
		t.Fatalf("ledger %+v %v", d, ok)
	}

	// The next poll sees the row again: nothing changes, nothing is fetched.
	e.fc.Advance(5 * time.Minute)
	poll(lastSync.Add(-overlap))
	if n := buf.changes[key]; n != 2 || fetches(e.fake) != 1 {
		t.Fatalf("again: %d versions, %d fetches", n, fetches(e.fake))
	}

	// A second refund, in full: the refunds add up to the total.
	e.fc.Advance(time.Hour)
	if _, err := e.fake.RefundRow(sale, false); err != nil {
		t.Fatal(err)
	}
	e.restart() // and the agent restarted in between: the ledger is in the store
	e.conn.WithLedger(ls)
	poll(lastSync.Add(-overlap))
	tx = expectedOf(e.fake, sale)
	if tx.Status != unified.StatusRefunded || !tx.RefundAmount.Equal(tx.Amount) {
		t.Fatalf("expected %s %s of %s", tx.Status, tx.RefundAmount, tx.Amount)
	}
	wantData(t, buf.snapshot(), tx)
	if n := buf.changes[key]; n != 3 {
		t.Fatalf("sale buffered %d times, want 3", n)
	}
}

// TestRefundRowBeforeItsSale: a refund row arrives for a sale the agent
// never fetched (older than its walks reached). Nothing is buffered for it;
// the refund waits in the ledger, across a restart, until an import brings
// the sale: the sale then arrives once, already refunded.
func TestRefundRowBeforeItsSale(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 1, Days: 12, TxPerDay: 20, NoEvents: true})
	e.authorize()
	buf := newBuffer()
	ls := newLedgerStore(buf)
	e.conn.WithLedger(ls)
	ctx := context.Background()
	o := e.fake.OutletIDs()[0]
	var sale string
	for _, p := range e.fake.Truth() {
		if age := t0.Sub(p.CreatedAt); age > 8*24*time.Hour && age < 10*24*time.Hour {
			sale = p.ID
			break
		}
	}
	key := unified.Key(e.fake.BusinessID(), o, sale)
	e.fc.Advance(time.Minute)
	row, err := e.fake.RefundRow(sale, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.conn.Transactions(ctx, o, t0.AddDate(0, 0, -2), buf.emit); err != nil {
		t.Fatal(err)
	}
	got := buf.snapshot()
	if _, ok := got[key]; ok {
		t.Fatal("a sale never fetched was buffered")
	}
	if _, ok := got[unified.Key(e.fake.BusinessID(), o, row)]; ok {
		t.Fatal("the refund row was buffered as a sale")
	}
	if d, ok := ls.doc(t, key); !ok || !d.Pending {
		t.Fatalf("the refund does not wait: %+v %v", d, ok)
	}

	e.restart()
	e.conn.WithLedger(ls)
	if err := e.conn.Transactions(ctx, o, t0.AddDate(0, 0, -11), buf.emit); err != nil { // the import
		t.Fatal(err)
	}
	tx := expectedOf(e.fake, sale)
	if tx.Status != unified.StatusRefunded {
		t.Fatalf("expected status %s", tx.Status)
	}
	wantData(t, buf.snapshot(), tx)
	if n := buf.changes[key]; n != 1 {
		t.Fatalf("sale buffered %d times, want once, refunded", n)
	}
	if d, _ := ls.doc(t, key); d.Pending {
		t.Fatal("still pending")
	}
	var imported []unified.Transaction
	for _, tx := range e.fake.Expected() {
		if !tx.Timestamp.Before(t0.AddDate(0, 0, -11)) {
			imported = append(imported, tx)
		}
	}
	checkTransactions(t, buf.snapshot(), imported)
}

// TestRefundRowInTheSamePage: a sale and its refund row in one page give
// one record, already refunded: never a "completed" version first.
func TestRefundRowInTheSamePage(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 1, Days: 2, TxPerDay: 10, NoEvents: true})
	e.authorize()
	buf := newBuffer()
	e.conn.WithLedger(newLedgerStore(buf))
	truth := e.fake.Truth()
	sale := truth[len(truth)-1].ID
	e.fc.Advance(time.Minute)
	if _, err := e.fake.RefundRow(sale, true); err != nil {
		t.Fatal(err)
	}
	o := e.fake.OutletIDs()[0]
	if err := e.conn.Transactions(context.Background(), o, t0.AddDate(0, 0, -3), buf.emit); err != nil {
		t.Fatal(err)
	}
	key := unified.Key(e.fake.BusinessID(), o, sale)
	wantData(t, buf.snapshot(), expectedOf(e.fake, sale))
	if n := buf.changes[key]; n != 1 {
		t.Fatalf("sale buffered %d times, want 1", n)
	}
	if fetches(e.fake) != 0 {
		t.Fatal("fetched a sale that was in the page")
	}
}

// recordingGate is a BufferGate that notes what it was told.
type recordingGate struct {
	mu     sync.Mutex
	events []string
}

func (g *recordingGate) WaitForSpace(ctx context.Context, space <-chan struct{}) error {
	g.mu.Lock()
	g.events = append(g.events, "wait")
	g.mu.Unlock()
	return quietGate{}.WaitForSpace(ctx, space)
}

func (g *recordingGate) SpaceAgain() {
	g.mu.Lock()
	g.events = append(g.events, "again")
	g.mu.Unlock()
}

// TestLedgerWaitsForSpace: a full buffer refuses the sale's new record
// and its ledger document together; the walk waits for space and writes
// both, dropping nothing. Regression: the wait was silent (the status said
// nothing of a full buffer while the ledger waited); it now goes through
// the gate, which the agent points at the sync loop's status. The gate
// holds whichever of WithLedger and WithBufferGate comes first (it was
// lost when WithLedger came second).
func TestLedgerWaitsForSpace(t *testing.T) {
	for _, gateFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("gate first %v", gateFirst), func(t *testing.T) { testLedgerWaitsForSpace(t, gateFirst) })
	}
}

func testLedgerWaitsForSpace(t *testing.T, gateFirst bool) {
	e := newEnv(t, oauthfake.Options{Outlets: 1, Days: 2, TxPerDay: 10, NoEvents: true})
	e.authorize()
	buf := newBuffer()
	ls := newLedgerStore(buf)
	ls.full = 2
	gate := &recordingGate{}
	if gateFirst {
		e.conn.WithBufferGate(gate).WithLedger(ls)
	} else {
		e.conn.WithLedger(ls).WithBufferGate(gate)
	}
	truth := e.fake.Truth()
	sale := truth[0].ID
	e.fc.Advance(time.Minute)
	if _, err := e.fake.RefundRow(sale, false); err != nil {
		t.Fatal(err)
	}
	o := e.fake.OutletIDs()[0]
	if err := e.conn.Transactions(context.Background(), o, t0.AddDate(0, 0, -3), buf.emit); err != nil {
		t.Fatal(err)
	}
	if ls.full != 0 {
		t.Fatal("the buffer was never full")
	}
	wantData(t, buf.snapshot(), expectedOf(e.fake, sale))
	// Two refused writes, then the end of the pause; later writes that go
	// through say so again (harmless: the pause is over).
	if got := strings.Join(gate.events, " "); !strings.HasPrefix(got, "wait wait again") || strings.Count(got, "wait") != 2 {
		t.Fatalf("the gate was told %q, want two waits and the end of the pause", got)
	}
}
