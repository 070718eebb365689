package mokapos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pwbi/edge-agent/agent/mokasync"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

// Connector is the apikey dialect behind the syncer's connector interface
// (mokasync.Connector): the Client's walks, mapped page by page into store
// inputs, with unmappable records set aside as dead entries. It is safe for
// concurrent use.
type Connector struct {
	client *Client
	ctx    MapContext
}

var _ mokasync.Connector = (*Connector)(nil)

// NewConnector returns the connector of client; m gives the business id,
// currency and zone (its DefaultOutletID is ignored: each walk uses the
// outlet it walks).
func NewConnector(client *Client, m MapContext) *Connector {
	return &Connector{client: client, ctx: m}
}

// Outlets lists the outlets of the business.
func (k *Connector) Outlets(ctx context.Context) ([]mokasync.Outlet, error) {
	outlets, err := k.client.Outlets(ctx)
	if err != nil {
		return nil, authErr(err)
	}
	out := make([]mokasync.Outlet, len(outlets))
	for i, o := range outlets {
		out[i] = mokasync.Outlet{ID: o.ID, Name: o.Name}
	}
	return out, nil
}

// Transactions walks the transactions of outletID from the local day of
// from. The request carries outlet_id, but the guide does not promise the
// filter, so records of other outlets are skipped here (their own walk
// emits them); a record without outlet_id belongs to the walked outlet.
func (k *Connector) Transactions(ctx context.Context, outletID string, from time.Time, emit func(mokasync.Page) error) error {
	m := k.ctx
	m.DefaultOutletID = outletID
	loc := m.Location
	if loc == nil {
		loc = time.UTC
	}
	q := TxQuery{FromDate: from.In(loc).Format(time.DateOnly), OutletID: outletID}
	err := k.client.Transactions(ctx, q, func(p Page) error {
		out := mokasync.Page{Cursor: p.NextCursor, Last: p.Last}
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
func (k *Connector) Products(ctx context.Context, outletID string, emit func(mokasync.Page) error) error {
	m := k.ctx
	m.DefaultOutletID = outletID
	err := k.client.Products(ctx, ProductQuery{}, func(p Page) error {
		out := mokasync.Page{Cursor: p.NextCursor, Last: p.Last}
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
// record. mine is false for a record of another outlet (its own walk
// reports it). A failure that is not a *MapError (a misconfigured context)
// is returned as err and stops the walk.
func deadEntry(mapErr error, kind string, raw json.RawMessage, m MapContext, id string) (d mokasync.Dead, mine bool, err error) {
	var me *MapError
	if !errors.As(mapErr, &me) {
		if errors.Is(mapErr, ErrNoBusinessID) {
			return d, false, mapErr
		}
		// Canonical encoding failed after a successful mapping.
		me = &MapError{Kind: kind, ID: id, Reason: mapErr.Error()}
	}
	outlet := me.OutletID
	if outlet == "" {
		outlet = m.DefaultOutletID
	} else if m.DefaultOutletID != "" && outlet != m.DefaultOutletID {
		return d, false, nil
	}
	key := ""
	if me.ID != "" {
		if kind == store.KindProduct {
			key = unified.ProductKey(m.BusinessID, outlet, me.ID)
		} else {
			key = unified.Key(m.BusinessID, outlet, me.ID)
		}
	}
	return mokasync.Dead{Input: store.Input{Kind: kind, Key: key, Data: raw}, Reason: me.Error()}, true, nil
}

// authErr marks refused credentials with mokasync.ErrUnauthorized, keeping
// this package's ErrUnauthorized in the chain too.
func authErr(err error) error {
	if err != nil && errors.Is(err, ErrUnauthorized) {
		return fmt.Errorf("%w: %w", mokasync.ErrUnauthorized, err)
	}
	return err
}
