package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

// This file is the refund ledger: what the connector remembers between
// pages, polls and restarts so that a refund that arrives as a payment row
// of its own (parent_payment_id) is applied to its sale exactly once,
// whenever the sale itself is seen (SPEC §5.2).
//
// Two collections of the agent's store hold it:
//
//   - "moka_refunds": one document per refunded sale (key: the sale's
//     record key), listing the refund rows seen for it. Pending means the
//     sale's record with those refunds is not in the buffer yet (the sale
//     was never fetched, or could not be); the document is written in the
//     same bbolt transaction as the sale's new record whenever that record
//     exists, so a crash never separates the two.
//   - "moka_sales": per outlet and UTC day (key: "moka/{business}/{outlet}/
//     {YYYY-MM-DD}"), the ids and created_at of the sales walked, so that a
//     refund row whose sale was synced in an earlier poll can fetch that
//     sale again with a one-millisecond created_at window.
//
// Documents older than ledgerKeep are dropped: no walk or import reaches
// that far back.

// Collections of the refund ledger in the agent's store.
const (
	RefundsCollection = "moka_refunds"
	SalesCollection   = "moka_sales"
)

// ledgerKeep is how long the ledger remembers a sale or a refund: the
// furthest an import reaches back (180 days) with a margin.
const ledgerKeep = 200 * 24 * time.Hour

// LedgerStore is the part of the agent's store the refund ledger lives
// in; *store.Store implements it. PutDoc writes a document and appends
// records in one transaction (ErrFull when the buffer bound refuses the
// records: then Space says when to try again).
type LedgerStore interface {
	PutDoc(coll, key string, value []byte, in []store.Input) (store.AppendResult, error)
	GetDoc(coll, key string) (value []byte, ok bool, err error)
	Docs(coll string, fn func(key string, value []byte) error) error
	DeleteDoc(coll, key string) error
	Space() <-chan struct{}
}

var _ LedgerStore = (*store.Store)(nil)

// BufferGate is told when a ledger write waits for buffer space, so that
// the pause shows where the sync loop's own pauses show (status, tray,
// log); *moka.Syncer implements it. WaitForSpace marks the pause and
// waits until space (from LedgerStore.Space, taken before the refused
// write) fires or ctx ends; SpaceAgain ends the pause once a write went
// through.
type BufferGate = feed.Gate

// quietGate waits without telling anyone: a connector without a gate.
type quietGate struct{}

func (quietGate) WaitForSpace(ctx context.Context, space <-chan struct{}) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-space:
		return nil
	}
}

func (quietGate) SpaceAgain() {}

// refundsDoc is the stored form of a sale's refund rows. Version 1.
type refundsDoc struct {
	Version int           `json:"v"`
	Sale    string        `json:"sale"` // the sale's payment id
	Refunds []refundEntry `json:"refunds"`
	// Pending: the sale's record with these refunds is not buffered yet.
	Pending bool `json:"pending,omitempty"`
	// Touched is when the document last changed (pruning).
	Touched time.Time `json:"touched"`
}

type refundEntry struct {
	ID      string          `json:"id"`
	Amount  unified.Decimal `json:"amount"`
	Partial bool            `json:"partial,omitempty"`
	Voided  bool            `json:"voided,omitempty"`
	At      time.Time       `json:"at,omitzero"`
}

func (d *refundsDoc) refunds() []Refund {
	out := make([]Refund, len(d.Refunds))
	for i, e := range d.Refunds {
		out[i] = Refund{ID: e.ID, Amount: e.Amount, Partial: e.Partial, Voided: e.Voided, At: e.At}
	}
	return out
}

// add records rf; it reports whether the document changed (a refund new
// to it, or one whose amount, kind or void changed).
func (d *refundsDoc) add(rf Refund) bool {
	e := refundEntry{ID: rf.ID, Amount: rf.Amount, Partial: rf.Partial, Voided: rf.Voided, At: rf.At}
	for i, old := range d.Refunds {
		if old.ID != rf.ID {
			continue
		}
		if old.Amount.Equal(e.Amount) && old.Partial == e.Partial && old.Voided == e.Voided {
			return false
		}
		d.Refunds[i] = e
		return true
	}
	d.Refunds = append(d.Refunds, e)
	return true
}

// ledger is the refund ledger of one connector. Without a store it keeps
// everything in memory (tests, a connector used on its own): then a
// sale's new record goes out with the page instead of with its document.
type ledger struct {
	st    LedgerStore // nil: in memory
	gate  BufferGate  // told while a write waits for space
	clock func() time.Time

	mu     sync.Mutex
	mem    map[string]map[string][]byte // collection → key → value, without a store
	pruned map[string]time.Time         // outlet prefix → last pruning of its sales index
}

func newLedger(st LedgerStore, clock func() time.Time) *ledger {
	return &ledger{st: st, gate: quietGate{}, clock: clock, mem: map[string]map[string][]byte{}, pruned: map[string]time.Time{}}
}

// book is the ledger's view of one outlet during one walk.
type book struct {
	l      *ledger
	prefix string                 // "moka/{business}/{outlet}/"
	biz    string                 // business id
	outlet string                 // outlet id
	docs   map[string]*refundsDoc // sale id → its refunds
}

func (l *ledger) get(coll, key string) ([]byte, bool, error) {
	if l.st != nil {
		return l.st.GetDoc(coll, key)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.mem[coll][key]
	return v, ok, nil
}

func (l *ledger) each(coll, prefix string, fn func(key string, value []byte) error) error {
	if l.st != nil {
		return l.st.Docs(coll, func(k string, v []byte) error {
			if !strings.HasPrefix(k, prefix) {
				return nil
			}
			return fn(k, v)
		})
	}
	l.mu.Lock()
	keys := make([]string, 0, len(l.mem[coll]))
	for k := range l.mem[coll] {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = l.mem[coll][k]
	}
	l.mu.Unlock()
	for i, k := range keys {
		if err := fn(k, vals[i]); err != nil {
			return err
		}
	}
	return nil
}

func (l *ledger) del(coll, key string) error {
	if l.st != nil {
		return l.st.DeleteDoc(coll, key)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.mem[coll], key)
	return nil
}

// put stores a document and, with a store, the records in the same
// transaction, waiting while the buffer is full (polling pauses; nothing
// is dropped). It reports whether the records were written; without a
// store they were not: the caller sends them with its page.
func (l *ledger) put(ctx context.Context, coll, key string, value []byte, in []store.Input) (bool, error) {
	if l.st == nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.mem[coll] == nil {
			l.mem[coll] = map[string][]byte{}
		}
		l.mem[coll][key] = append([]byte(nil), value...)
		return false, nil
	}
	err := feed.WhileFull(ctx, l.st.Space, func() error {
		_, err := l.st.PutDoc(coll, key, value, in)
		return err
	}, l.gate)
	return err == nil, err
}

// open loads the refunds of one outlet, dropping documents older than
// ledgerKeep.
func (l *ledger) open(biz, outlet string) (*book, error) {
	b := &book{l: l, prefix: unified.Key(biz, outlet, ""), biz: biz, outlet: outlet, docs: map[string]*refundsDoc{}}
	cut := l.clock().Add(-ledgerKeep)
	var old []string
	err := l.each(RefundsCollection, b.prefix, func(key string, v []byte) error {
		var d refundsDoc
		if err := json.Unmarshal(v, &d); err != nil || d.Version != 1 || d.Sale == "" {
			old = append(old, key) // unreadable: it can only be forgotten
			return nil
		}
		if d.Touched.Before(cut) {
			old = append(old, key)
			return nil
		}
		b.docs[d.Sale] = &d
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("moka refund ledger: %w", err)
	}
	for _, k := range old {
		if err := l.del(RefundsCollection, k); err != nil {
			return nil, fmt.Errorf("moka refund ledger: %w", err)
		}
	}
	return b, nil
}

// refunds returns the refund rows known for sale id (nil when none).
func (b *book) refunds(id string) []Refund {
	if d := b.docs[id]; d != nil {
		return d.refunds()
	}
	return nil
}

// add records refund rf of sale; it reports whether that changed what is
// known of the sale.
func (b *book) add(sale string, rf Refund) bool {
	d := b.docs[sale]
	if d == nil {
		d = &refundsDoc{Version: 1, Sale: sale}
		b.docs[sale] = d
	}
	if !d.add(rf) {
		return false
	}
	d.Touched = b.l.clock()
	return true
}

// save writes sale's document with pending set, and with a store the
// sale's record in the same transaction (in may be nil: the sale is
// pending). It reports whether the record went out with it.
func (b *book) save(ctx context.Context, sale string, pending bool, in []store.Input) (bool, error) {
	d := b.docs[sale]
	d.Pending = pending
	v, err := json.Marshal(d)
	if err != nil {
		return false, fmt.Errorf("moka refund ledger: %w", err)
	}
	written, err := b.l.put(ctx, RefundsCollection, unified.Key(b.biz, b.outlet, sale), v, in)
	if err != nil {
		return false, fmt.Errorf("moka refund ledger: %w", err)
	}
	return written, nil
}

// saleIndex is a day of the sales index: sale id → created_at.
type saleIndex map[string]time.Time

// remember adds the sales' created_at to the index (a read and, when
// something is new, a write per UTC day).
func (b *book) remember(ctx context.Context, sales map[string]time.Time) error {
	days := map[string]saleIndex{}
	for id, at := range sales {
		if at.IsZero() {
			continue
		}
		day := at.UTC().Format(time.DateOnly)
		if days[day] == nil {
			days[day] = saleIndex{}
		}
		days[day][id] = at
	}
	names := make([]string, 0, len(days))
	for d := range days {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, day := range names {
		key := b.prefix + day
		idx := saleIndex{}
		if v, ok, err := b.l.get(SalesCollection, key); err != nil {
			return fmt.Errorf("moka sales index: %w", err)
		} else if ok {
			_ = json.Unmarshal(v, &idx) // unreadable: rebuilt from what follows
		}
		changed := false
		for id, at := range days[day] {
			if old, ok := idx[id]; !ok || !old.Equal(at) {
				idx[id], changed = at, true
			}
		}
		if !changed {
			continue
		}
		v, err := json.Marshal(idx)
		if err != nil {
			return fmt.Errorf("moka sales index: %w", err)
		}
		if _, err := b.l.put(ctx, SalesCollection, key, v, nil); err != nil {
			return fmt.Errorf("moka sales index: %w", err)
		}
	}
	return b.prune()
}

// prune drops the outlet's index days older than ledgerKeep, once a day.
func (b *book) prune() error {
	now := b.l.clock()
	b.l.mu.Lock()
	if last, ok := b.l.pruned[b.prefix]; ok && now.Sub(last) < 24*time.Hour {
		b.l.mu.Unlock()
		return nil
	}
	b.l.pruned[b.prefix] = now
	b.l.mu.Unlock()
	cut := b.prefix + now.Add(-ledgerKeep).UTC().Format(time.DateOnly)
	var old []string
	err := b.l.each(SalesCollection, b.prefix, func(key string, _ []byte) error {
		if key < cut {
			old = append(old, key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("moka sales index: %w", err)
	}
	for _, k := range old {
		if err := b.l.del(SalesCollection, k); err != nil {
			return fmt.Errorf("moka sales index: %w", err)
		}
	}
	return nil
}

// createdAt looks sale up in the outlet's index.
func (b *book) createdAt(sale string) (time.Time, bool, error) {
	var at time.Time
	found := false
	errFound := errors.New("found")
	err := b.l.each(SalesCollection, b.prefix, func(_ string, v []byte) error {
		var idx saleIndex
		if json.Unmarshal(v, &idx) != nil {
			return nil
		}
		if t, ok := idx[sale]; ok {
			at, found = t, true
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return time.Time{}, false, fmt.Errorf("moka sales index: %w", err)
	}
	return at, found, nil
}
