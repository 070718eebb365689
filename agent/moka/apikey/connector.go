package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
	"github.com/pwbi/edge-agent/store"
)

// Connector is the apikey dialect behind the sync loop's connector
// interface (moka.Connector, which this package does not import): the
// Client's walks, mapped page by page into store
// inputs, with unmappable records set aside as dead entries. It is safe for
// concurrent use.
type Connector struct {
	client *Client
	ctx    MapContext
}

// NewConnector returns the connector of client; m gives the business id,
// currency and zone (its DefaultOutletID is ignored: each walk uses the
// outlet it walks).
func NewConnector(client *Client, m MapContext) *Connector {
	return &Connector{client: client, ctx: m}
}

// Outlets lists the outlets of the business.
func (k *Connector) Outlets(ctx context.Context) ([]feed.Outlet, error) {
	outlets, err := k.client.Outlets(ctx)
	if err != nil {
		return nil, authErr(err)
	}
	out := make([]feed.Outlet, len(outlets))
	for i, o := range outlets {
		out[i] = feed.Outlet{ID: o.ID, Name: o.Name}
	}
	return out, nil
}

// Transactions walks the transactions of outletID from the local day of
// from. The request carries outlet_id, but the guide does not promise the
// filter, so records of other outlets are skipped here (their own walk
// emits them); a record without outlet_id belongs to the walked outlet.
func (k *Connector) Transactions(ctx context.Context, outletID string, from time.Time, emit func(feed.Page) error) error {
	m := k.ctx
	m.DefaultOutletID = outletID
	loc := m.Location
	if loc == nil {
		loc = time.UTC
	}
	q := TxQuery{FromDate: from.In(loc).Format(time.DateOnly), OutletID: outletID}
	err := k.client.Transactions(ctx, q, func(p Page) error {
		out := feed.Page{Cursor: p.NextCursor, Last: p.Last}
		for _, raw := range p.Items {
			t, err := MapTransaction(raw, m)
			if err == nil && outletID != "" && t.OutletID != outletID {
				continue
			}
			var in store.Input
			if err == nil {
				in, err = TransactionInput(t)
			}
			if err != nil {
				d, mine, err := deadEntry(err, store.KindTransaction, raw, m, t.ExternalID)
				if err != nil {
					return err
				}
				if mine {
					out.Dead = append(out.Dead, d)
				}
				continue
			}
			out.Inputs = append(out.Inputs, in)
			if t.Timestamp.After(out.Through) {
				out.Through = t.Timestamp
			}
		}
		return emit(out)
	})
	return authErr(err)
}

// Products walks the catalogue and emits the products of outletID (a
// product without outlet_id counts as the walked outlet's).
func (k *Connector) Products(ctx context.Context, outletID string, emit func(feed.Page) error) error {
	m := k.ctx
	m.DefaultOutletID = outletID
	err := k.client.Products(ctx, ProductQuery{}, func(p Page) error {
		out := feed.Page{Cursor: p.NextCursor, Last: p.Last}
		for _, raw := range p.Items {
			pr, err := MapProduct(raw, m)
			if err == nil && outletID != "" && pr.OutletID != outletID {
				continue
			}
			var in store.Input
			if err == nil {
				in, err = ProductInput(pr)
			}
			if err != nil {
				d, mine, err := deadEntry(err, store.KindProduct, raw, m, pr.ExternalID)
				if err != nil {
					return err
				}
				if mine {
					out.Dead = append(out.Dead, d)
				}
				continue
			}
			out.Inputs = append(out.Inputs, in)
		}
		return emit(out)
	})
	return authErr(err)
}

// deadEntry turns a mapping failure into a dead entry holding the raw
// record (wire.DeadEntry). mine is false for a record of another outlet
// (its own walk reports it). A failure that is not a *MapError (a
// misconfigured context) is returned as err and stops the walk.
func deadEntry(mapErr error, kind string, raw json.RawMessage, m MapContext, id string) (d feed.Dead, mine bool, err error) {
	var me *MapError
	if errors.As(mapErr, &me) && me.OutletID != "" && m.DefaultOutletID != "" && me.OutletID != m.DefaultOutletID {
		return d, false, nil
	}
	d, err = wire.DeadEntry(mapErr, kind, raw, m, id)
	return d, err == nil, err
}

// authErr marks refused credentials with the loop's ErrUnauthorized
// (feed.ErrUnauthorized, re-exported as moka.ErrUnauthorized), keeping
// this package's ErrUnauthorized in the chain too.
func authErr(err error) error {
	if err != nil && errors.Is(err, ErrUnauthorized) {
		return fmt.Errorf("%w: %w", feed.ErrUnauthorized, err)
	}
	return err
}
