package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

// MapContext is what a mapper needs besides the record itself (either
// dialect; both export it as MapContext).
type MapContext struct {
	// BusinessID is moka.business_id; it is part of every key. Required.
	BusinessID string
	// Currency is moka.currency; "" means "IDR".
	Currency string
	// Location is moka.timezone: the zone of created_at values without an
	// offset, and the zone of the output timestamp and business date. nil
	// means UTC.
	Location *time.Location
	// DefaultOutletID is used when a record carries no outlet_id (the outlet
	// being polled, if the caller knows it). "" means none.
	DefaultOutletID string
}

// ErrNoBusinessID is returned (not as a *MapError) when MapContext has no
// business id: that is a configuration problem, not a bad record.
var ErrNoBusinessID = errors.New("moka: map context has no business id")

// MapError says why one Moka record could not be mapped. It means the record
// is bad (keep it aside with this reason); any other error from a mapper
// means the caller is misconfigured.
type MapError struct {
	Kind     string // "transaction" or "product"
	ID       string // the record's id, when it could be read
	OutletID string // the record's outlet_id, when it could be read
	Field    string // JSON path of the offending field, e.g. "line_items[2].price"
	Reason   string
}

func (e *MapError) Error() string {
	var b strings.Builder
	b.WriteString("moka ")
	b.WriteString(e.Kind)
	if e.ID != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.ID))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// TransactionInput turns a mapped transaction into a store input: kind
// "transaction", key "moka/{business}/{outlet}/{id}", data the canonical
// JSON (whose SHA-256 is the record version), and the day summary's facts
// (outlet, business day, status, amount, refund: the record's own values,
// as exact decimal strings).
func TransactionInput(t unified.Transaction) (store.Input, error) {
	data, err := t.Canonical()
	if err != nil {
		return store.Input{}, fmt.Errorf("encode transaction %q: %w", t.ExternalID, err)
	}
	return store.Input{Kind: store.KindTransaction, Key: t.Key(), Data: data, Sale: &store.Sale{
		OutletID: t.OutletID,
		Day:      t.BusinessDate,
		Status:   string(t.Status),
		Amount:   t.Amount.String(),
		Refund:   t.RefundAmount.String(),
		Currency: t.Currency,
	}}, nil
}

// ProductInput turns a mapped product into a store input of kind "product".
func ProductInput(p unified.Product) (store.Input, error) {
	data, err := p.Canonical()
	if err != nil {
		return store.Input{}, fmt.Errorf("encode product %q: %w", p.ExternalID, err)
	}
	return store.Input{Kind: store.KindProduct, Key: p.Key(), Data: data}, nil
}

// DeadEntry turns the failure to map (or to encode) the record raw of kind
// (store.KindTransaction or store.KindProduct) into a dead entry holding
// the raw record and the reason. The key is the record's own, under its
// outlet_id or else m.DefaultOutletID (the walked outlet); "" when its id
// could not be read. A failure that is not a *MapError (a canonical
// encoding that failed after a successful mapping) is kept as a MapError
// of kind with id; ErrNoBusinessID, a misconfiguration, is returned as err
// and stops the walk.
func DeadEntry(mapErr error, kind string, raw json.RawMessage, m MapContext, id string) (feed.Dead, error) {
	var me *MapError
	if !errors.As(mapErr, &me) {
		if errors.Is(mapErr, ErrNoBusinessID) {
			return feed.Dead{}, mapErr
		}
		me = &MapError{Kind: kind, ID: id, Reason: mapErr.Error()}
	}
	outlet := me.OutletID
	if outlet == "" {
		outlet = m.DefaultOutletID
	}
	key := ""
	if me.ID != "" {
		if kind == store.KindProduct {
			key = unified.ProductKey(m.BusinessID, outlet, me.ID)
		} else {
			key = unified.Key(m.BusinessID, outlet, me.ID)
		}
	}
	return feed.Dead{Input: store.Input{Kind: kind, Key: key, Data: raw}, Reason: me.Error()}, nil
}
