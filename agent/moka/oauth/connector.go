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

	mu  sync.Mutex
	biz string
}

// NewConnector returns the connector of client. m gives the currency and
// zone; its BusinessID (moka.business_id) may be empty, in which case the
// business of the authorized account is used (/v1/profile/self, remembered
// with the grant). Its DefaultOutletID is ignored.
func NewConnector(client *Client, m MapContext) *Connector {
	return &Connector{client: client, ctx: m, biz: m.BusinessID}
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
	q := PaymentQuery{OutletID: outletID, Since: from, Until: k.client.p.Clock.Now(), TimeFilter: filter}
	return k.client.Payments(ctx, q, func(p PaymentPage) error {
		out := feed.Page{Cursor: "page " + strconv.Itoa(p.Index+1), Last: p.Last}
		err := p.MapPayments(m, func(raw json.RawMessage, t unified.Transaction, err error) error {
			var in store.Input
			if err == nil {
				in, err = wire.TransactionInput(t)
			}
			if err != nil {
				d, err := wire.DeadEntry(err, store.KindTransaction, raw, m, t.ExternalID)
				if err != nil {
					return err
				}
				out.Dead = append(out.Dead, d)
				return nil
			}
			out.Inputs = append(out.Inputs, in)
			if t.Timestamp.After(out.Through) {
				out.Through = t.Timestamp
			}
			return nil
		})
		if err != nil {
			return err
		}
		return emit(out)
	})
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
