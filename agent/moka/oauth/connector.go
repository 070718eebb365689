package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

// Connector is the oauth dialect behind the sync loop's interfaces
// (moka.Connector and moka.Updater, which this package does not import):
// the Client's walks mapped page by page into store inputs, unmappable
// records set aside as dead entries. It is safe for concurrent use.
type Connector struct {
	client *Client
	ctx    MapContext // BusinessID "" until learnt
	ledger *ledger

	mu  sync.Mutex
	biz string
}

// NewConnector returns the connector of client. m gives the currency and
// zone; its BusinessID (moka.business_id) may be empty, in which case the
// business of the authorized account is used (/v1/profile/self, remembered
// with the grant). Its DefaultOutletID is ignored. Its refund ledger lives
// in memory until WithLedger gives it the agent's store.
func NewConnector(client *Client, m MapContext) *Connector {
	return &Connector{client: client, ctx: m, biz: m.BusinessID, ledger: newLedger(nil, client.p.Clock.Now)}
}

// WithLedger keeps the refund ledger (refund rows waiting for their sale,
// the sales index) in st, the agent's store, so that it survives restarts
// and a sale's new record is buffered with its ledger document in one
// transaction. Call it before the connector is used; it returns k. A
// gate already given (WithBufferGate) stays.
func (k *Connector) WithLedger(st LedgerStore) *Connector {
	gate := k.ledger.gate
	k.ledger = newLedger(st, k.client.p.Clock.Now)
	k.ledger.gate = gate
	return k
}

// WithBufferGate makes the refund ledger tell g when its writes wait for
// buffer space (the agent passes its sync loop, so that the pause shows in
// the status like the loop's own). Call it before the connector is used
// (before or after WithLedger); it returns k.
func (k *Connector) WithBufferGate(g BufferGate) *Connector {
	k.ledger.gate = g
	return k
}

// BusinessID returns the business id in use ("" until known).
func (k *Connector) BusinessID() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.biz
}

// business returns the business id: configured, remembered, or asked.
func (k *Connector) business(ctx context.Context) (string, error) {
	k.mu.Lock()
	biz := k.biz
	k.mu.Unlock()
	if biz != "" {
		return biz, nil
	}
	if biz = k.client.tokens.BusinessID(); biz == "" {
		p, err := k.client.Profile(ctx)
		if err != nil {
			return "", fmt.Errorf("moka profile: %w", err)
		}
		biz = p.BusinessID
		if err := k.client.tokens.SetBusinessID(biz); err != nil {
			k.client.p.Log.Warn("Remembering the Moka business id failed", "err", err)
		}
		k.client.p.Log.Info("Moka business found", "business_id", biz)
	}
	k.mu.Lock()
	k.biz = biz
	k.mu.Unlock()
	return biz, nil
}

func (k *Connector) mapContext(ctx context.Context, outletID string) (MapContext, error) {
	biz, err := k.business(ctx)
	if err != nil {
		return MapContext{}, err
	}
	m := k.ctx
	m.BusinessID, m.DefaultOutletID = biz, outletID
	return m, nil
}

// Outlets lists the business's outlets (GET /v1/businesses/{id}/outlets).
func (k *Connector) Outlets(ctx context.Context) ([]feed.Outlet, error) {
	biz, err := k.business(ctx)
	if err != nil {
		return nil, err
	}
	outlets, err := k.client.Outlets(ctx, biz)
	if err != nil {
		return nil, err
	}
	out := make([]feed.Outlet, len(outlets))
	for i, o := range outlets {
		out[i] = feed.Outlet{ID: o.ID, Name: o.Name}
	}
	return out, nil
}

// Transactions walks the sales of outletID created since from (the
// created_at pass).
func (k *Connector) Transactions(ctx context.Context, outletID string, from time.Time, emit func(feed.Page) error) error {
	return k.payments(ctx, outletID, from, "", emit)
}

// Updates walks the sales of outletID changed since from
// (time_filter=updated_at): voids and refunds of older sales, which the
// created_at pass does not see again.
func (k *Connector) Updates(ctx context.Context, outletID string, from time.Time, emit func(feed.Page) error) error {
	return k.payments(ctx, outletID, from, TimeFilterUpdated, emit)
}

func (k *Connector) payments(ctx context.Context, outletID string, from time.Time, filter string, emit func(feed.Page) error) error {
	m, err := k.mapContext(ctx, outletID)
	if err != nil {
		return err
	}
	b, err := k.ledger.open(m.BusinessID, outletID)
	if err != nil {
		return err
	}
	q := PaymentQuery{OutletID: outletID, Since: from, Until: k.client.p.Clock.Now(), TimeFilter: filter, Location: m.Location}
	return k.client.Payments(ctx, q, func(p PaymentPage) error {
		out := feed.Page{Cursor: "page " + strconv.Itoa(p.Index+1), Last: p.Last}
		if err := k.page(ctx, m, b, p, &out); err != nil {
			return err
		}
		return emit(out)
	})
}

// page maps one page of a payments walk into out. Refund rows (a
// parent_payment_id) are never sales: each is recorded in the refund
// ledger and applied to its sale, which then goes out as a new version of
// its record:
//
//   - the sale is in the same page: mapped with the refund;
//   - the sale was walked before (the sales index knows its created_at):
//     fetched again (a created_at window of a millisecond either side);
//   - the sale was never seen (older than the walks reached, or not synced
//     to Moka yet): the refund waits in the ledger, and the sale carries
//     it whenever it comes (a later walk, an import).
//
// A sale whose refunds changed goes to the buffer in the same transaction
// as its ledger document (with a store), so they never part in a crash.
func (k *Connector) page(ctx context.Context, m MapContext, b *book, p PaymentPage, out *feed.Page) error {
	dead := func(err error, raw json.RawMessage, id string) error {
		d, err := wire.DeadEntry(err, store.KindTransaction, raw, m, id)
		if err != nil {
			return err
		}
		out.Dead = append(out.Dead, d)
		return nil
	}
	// Refund rows first, so that a sale in the same page carries them.
	changed := map[string]bool{} // sales whose refunds changed
	var order []string           // the same, in page order
	var sales []int
	for i := range p.decoded {
		sale, rf, ok, err := mapRefund(&p.decoded[i])
		switch {
		case err != nil:
			if err := dead(err, p.Payments[i], rf.ID); err != nil {
				return err
			}
		case ok:
			if b.add(sale, rf) && !changed[sale] {
				changed[sale] = true
				order = append(order, sale)
			}
		default:
			sales = append(sales, i)
		}
	}
	index := map[string]time.Time{}
	done := map[string]bool{} // sales whose record with their refunds is out
	for _, i := range sales {
		r := &p.decoded[i]
		id, _ := paymentID(r)
		t, err := mapPayment(r, m, b.refunds(id))
		var in store.Input
		if err == nil {
			in, err = wire.TransactionInput(t)
		}
		if err != nil {
			if err := dead(err, p.Payments[i], t.ExternalID); err != nil {
				return err
			}
			continue
		}
		index[t.ExternalID] = t.Timestamp
		if t.Timestamp.After(out.Through) {
			out.Through = t.Timestamp
		}
		if d := b.docs[t.ExternalID]; d != nil && (d.Pending || changed[t.ExternalID]) {
			done[t.ExternalID] = true
			written, err := b.save(ctx, t.ExternalID, false, []store.Input{in})
			if err != nil {
				return err
			}
			if written {
				continue
			}
		}
		out.Inputs = append(out.Inputs, in)
	}
	// Refunds of sales not in this page: fetch the sale, or let the refund
	// wait for it.
	for _, sale := range order {
		if done[sale] {
			continue
		}
		in, found, err := k.refetch(ctx, m, b, sale)
		if err != nil {
			return err
		}
		var ins []store.Input
		if found {
			ins = []store.Input{in}
		} else {
			k.client.p.Log.Info("Moka refund waits for its sale", "outlet", m.DefaultOutletID, "sale", sale)
		}
		written, err := b.save(ctx, sale, !found, ins)
		if err != nil {
			return err
		}
		if found && !written {
			out.Inputs = append(out.Inputs, in)
		}
	}
	return b.remember(ctx, index)
}

// refetch fetches sale again (it was walked before: the sales index knows
// its created_at) and maps it with its refunds. found is false when the
// index does not know it, Moka no longer lists it, or it cannot be mapped
// (its own walk set it aside).
func (k *Connector) refetch(ctx context.Context, m MapContext, b *book, sale string) (store.Input, bool, error) {
	at, ok, err := b.createdAt(sale)
	if err != nil || !ok {
		return store.Input{}, false, err
	}
	q := PaymentQuery{
		OutletID: m.DefaultOutletID, Since: at.Add(-time.Millisecond), Until: at.Add(time.Millisecond),
		PerPage: 10, Location: m.Location,
	}
	var raw *rawPayment
	err = k.client.Payments(ctx, q, func(p PaymentPage) error {
		for i := range p.decoded {
			if id, _ := paymentID(&p.decoded[i]); id == sale && raw == nil {
				raw = &p.decoded[i]
			}
		}
		return nil
	})
	if err != nil || raw == nil {
		return store.Input{}, false, err
	}
	t, err := mapPayment(raw, m, b.refunds(sale))
	if err != nil {
		return store.Input{}, false, nil
	}
	in, err := wire.TransactionInput(t)
	if err != nil {
		return store.Input{}, false, nil
	}
	return in, true, nil
}

// Products walks the outlet's library (GET /v1/outlets/{id}/items): a
// product per variant, and each modifier option once per walk.
func (k *Connector) Products(ctx context.Context, outletID string, emit func(feed.Page) error) error {
	m, err := k.mapContext(ctx, outletID)
	if err != nil {
		return err
	}
	seenMods := map[string]bool{}
	return k.client.Items(ctx, outletID, func(p ItemPage) error {
		out := feed.Page{Cursor: "page " + strconv.Itoa(p.Index+1), Last: p.Last}
		add := func(pr unified.Product) error {
			in, err := wire.ProductInput(pr)
			if err != nil {
				return err
			}
			out.Inputs = append(out.Inputs, in)
			return nil
		}
		for _, raw := range p.Items {
			products, mods, err := MapItem(raw, m)
			if err == nil {
				for _, pr := range products {
					if err = add(pr); err != nil {
						break
					}
				}
			}
			if err == nil {
				for _, pr := range mods {
					if seenMods[pr.ExternalID] {
						continue
					}
					seenMods[pr.ExternalID] = true
					if err = add(pr); err != nil {
						break
					}
				}
			}
			if err != nil {
				d, err := wire.DeadEntry(err, store.KindProduct, raw, m, "")
				if err != nil {
					return err
				}
				out.Dead = append(out.Dead, d)
			}
		}
		return emit(out)
	})
}
