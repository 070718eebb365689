package oauth

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

// collector keeps, like the store's de-duplication, the last data of every
// key, and the pages' shape.
type collector struct {
	data  map[string][]byte
	pages int
	lasts int
	dead  []feed.Dead
}

// overlap is what the sync loop subtracts from the last sync (moka.Overlap,
// which a dialect's tests cannot import: a dialect never depends on the
// loop).
const overlap = 24 * time.Hour

func newCollector() *collector { return &collector{data: map[string][]byte{}} }

func (c *collector) emit(p feed.Page) error {
	c.pages++
	if p.Last {
		c.lasts++
	}
	for _, in := range p.Inputs {
		c.data[in.Key] = in.Data
	}
	c.dead = append(c.dead, p.Dead...)
	return nil
}

func checkTransactions(t *testing.T, got map[string][]byte, want []unified.Transaction) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d transactions, want %d", len(got), len(want))
	}
	for _, tx := range want {
		canon, err := tx.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if g, ok := got[tx.Key()]; !ok {
			t.Fatalf("transaction %s missing", tx.Key())
		} else if !bytes.Equal(g, canon) {
			t.Fatalf("transaction %s differs:\n got %s\nwant %s", tx.Key(), g, canon)
		}
	}
}

func TestConnectorMatchesExpected(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 4, Days: 10, TxPerDay: 30})
	e.authorize()
	ctx := context.Background()
	outlets, err := e.conn.Outlets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(outlets) != 4 || outlets[2].Name != "Café Sénja Seminyak (Bali)" || e.conn.BusinessID() != e.fake.BusinessID() {
		t.Fatalf("outlets %+v, business %q", outlets, e.conn.BusinessID())
	}
	if g := e.store.get(); g.BusinessID != e.fake.BusinessID() {
		t.Fatalf("business id not remembered with the grant: %q", g.BusinessID)
	}
	tx, prods := newCollector(), newCollector()
	for _, o := range outlets {
		before := tx.lasts
		if err := e.conn.Transactions(ctx, o.ID, t0.AddDate(0, 0, -30), tx.emit); err != nil {
			t.Fatal(err)
		}
		if err := e.conn.Products(ctx, o.ID, prods.emit); err != nil {
			t.Fatal(err)
		}
		if tx.lasts != before+1 {
			t.Fatal("a walk did not end with exactly one last page")
		}
	}
	if len(tx.dead) != 0 || len(prods.dead) != 0 {
		t.Fatalf("dead entries: %+v %+v", tx.dead, prods.dead)
	}
	checkTransactions(t, tx.data, e.fake.Expected())
	if tx.pages < 4*3 {
		t.Errorf("only %d pages: paging not exercised", tx.pages)
	}
	wantProds := e.fake.ExpectedProducts()
	if len(prods.data) != len(wantProds) {
		t.Errorf("%d products, want %d", len(prods.data), len(wantProds))
	}
	for _, p := range wantProds {
		canon, _ := p.Canonical()
		if !bytes.Equal(prods.data[p.Key()], canon) {
			t.Fatalf("product %s:\n got %s\nwant %s", p.Key(), prods.data[p.Key()], canon)
		}
	}
	// Statuses of the automatic old voids and refunds are all there.
	seen := map[unified.Status]int{}
	for _, want := range e.fake.Expected() {
		seen[want.Status]++
	}
	if seen[unified.StatusVoid] == 0 || seen[unified.StatusRefunded] == 0 || seen[unified.StatusPartiallyRefunded] == 0 {
		t.Errorf("statuses %v: the data lacks voids or refunds", seen)
	}
	// Timestamps keep each outlet's own offset.
	offsets := map[int]bool{}
	for _, want := range e.fake.Expected() {
		_, off := want.Timestamp.Zone()
		offsets[off/3600] = true
	}
	if !offsets[7] || !offsets[8] || !offsets[9] {
		t.Errorf("offsets %v", offsets)
	}
}

// TestUpdatesPassCatchesOldVoidsAndRefunds: sales of more than a week ago
// are voided and refunded after the last sync. A created_at walk from the
// last sync does not see them; the updated_at walk does, with the new
// content.
func TestUpdatesPassCatchesOldVoidsAndRefunds(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 2, Days: 12, TxPerDay: 25, NoEvents: true})
	e.authorize()
	ctx := context.Background()
	o := e.fake.OutletIDs()[0]
	all := newCollector()
	if err := e.conn.Transactions(ctx, o, t0.AddDate(0, 0, -30), all.emit); err != nil {
		t.Fatal(err)
	}
	lastSync := e.fc.Now()

	var old []string
	for _, p := range e.fake.Truth() {
		if p.OutletID == o && lastSync.Sub(p.CreatedAt) > 8*24*time.Hour && len(old) < 3 {
			old = append(old, p.ID)
		}
	}
	e.fc.Advance(time.Hour)
	if err := e.fake.Void(old[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.Refund(old[1], true); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.Refund(old[2], false); err != nil {
		t.Fatal(err)
	}
	from := lastSync.Add(-overlap)
	created, updated := newCollector(), newCollector()
	if err := e.conn.Transactions(ctx, o, from, created.emit); err != nil {
		t.Fatal(err)
	}
	if err := e.conn.Updates(ctx, o, from, updated.emit); err != nil {
		t.Fatal(err)
	}
	var want []unified.Transaction
	for _, tx := range e.fake.Expected() {
		if slices.Contains(old, tx.ExternalID) {
			want = append(want, tx)
		}
	}
	statuses := []unified.Status{unified.StatusVoid, unified.StatusPartiallyRefunded, unified.StatusRefunded}
	for i, tx := range want {
		if _, ok := created.data[tx.Key()]; ok {
			t.Errorf("the created_at walk from the last sync returned the old sale %s", tx.ExternalID)
		}
		if tx.Status != statuses[i] {
			t.Errorf("expected status %s, want %s", tx.Status, statuses[i])
		}
		if bytes.Equal(all.data[tx.Key()], updated.data[tx.Key()]) {
			t.Errorf("sale %s unchanged", tx.ExternalID)
		}
	}
	got := map[string][]byte{}
	for _, tx := range want {
		got[tx.Key()] = updated.data[tx.Key()]
	}
	checkTransactions(t, got, want)
	// The updates walk also returns the day's sales (their updated_at is
	// recent): harmless, the store skips unchanged content.
	if len(updated.data) < len(want) {
		t.Fatal("updates walk too small")
	}
	if r := e.fake.Requests(); r[len(r)-1].Query.Get("time_filter") != "updated_at" {
		t.Errorf("last request %v", r[len(r)-1].Query)
	}
}

func TestConnectorKeepsUnmappablePaymentsAside(t *testing.T) {
	srv := newScriptServer(t)
	pay := `{"data":{"payments":[` +
		`{"id":"ok-1","outlet_id":7,"total_collected":1000,"created_at":"2026-03-10T10:00:00.000+07:00"},` +
		`{"id":"bad-1","outlet_id":7,"total_collected":"1O00","created_at":"2026-03-10T10:00:00.000+07:00"},` +
		`{"outlet_id":7,"total_collected":5}` +
		`],"next_url":null,"completed":true}}`
	srv.route("/v3/outlets/7/reports/get_latest_transactions", 200, pay)
	e := newEnv(t, oauthfake.Options{})
	c := srv.client(t, e)
	conn := NewConnector(c, mapCtx("biz"))
	col := newCollector()
	if err := conn.Transactions(context.Background(), "7", t0.Add(-24*time.Hour), col.emit); err != nil {
		t.Fatal(err)
	}
	if len(col.data) != 1 || len(col.dead) != 2 {
		t.Fatalf("%d records, %d dead", len(col.data), len(col.dead))
	}
	if col.dead[0].Input.Key != "moka/biz/7/bad-1" || col.dead[0].Input.Kind != store.KindTransaction ||
		col.dead[0].Reason == "" || col.dead[1].Input.Key != "" {
		t.Fatalf("dead %+v", col.dead)
	}
}
