package jurnalsink

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

// Docs is the part of the store the sink keeps its state in (SPEC §6.3:
// what it posted, the master data it created, the daily-summary ledger):
// *store.Store implements it. Values are small JSON documents.
type Docs interface {
	GetDoc(coll, key string) ([]byte, bool, error)
	PutDoc(coll, key string, value []byte, in []store.Input) (store.AppendResult, error)
	Docs(coll string, fn func(key string, value []byte) error) error
	DeleteDoc(coll, key string) error
}

// keepState is how long the sink remembers a sale or a posted day after
// its business date: longer than any history Moka is asked for again
// (config.MaxBackfillDays, 180), so a re-fetched sale always finds what was
// posted for it. Older state is pruned once a day.
const keepState = 200 * 24 * time.Hour

// prune forgets the sales and posted days older than keepState, once a
// day. s.sh.work must be held.
func (s *Sink) prune() {
	now := s.clock.Now()
	if now.Sub(s.sh.prunedAt) < 24*time.Hour {
		return
	}
	s.sh.prunedAt = now
	cut := now.Add(-keepState).Format(unified.BusinessDateLayout)
	var old []string
	err := s.docs.Docs(Collection, func(key string, value []byte) error {
		var v struct {
			Date   string `json:"date"`
			Posted bool   `json:"posted"`
		}
		switch {
		case strings.HasPrefix(key, "s/"):
		case strings.HasPrefix(key, "d/"):
			if json.Unmarshal(value, &v) == nil && !v.Posted {
				return nil // an open day is never forgotten
			}
		default:
			return nil
		}
		if json.Unmarshal(value, &v) == nil && v.Date != "" && v.Date < cut {
			old = append(old, key)
		}
		return nil
	})
	for _, k := range old {
		if err == nil {
			err = s.docs.DeleteDoc(Collection, k)
		}
	}
	if err != nil {
		s.log.Warn("Pruning the Jurnal state failed", "err", err)
	} else if len(old) > 0 {
		s.log.Info("Jurnal state pruned", "documents", len(old), "before", cut)
	}
}

// Collection is the store collection of the sink's documents. Keys:
//
//	p/{identity}          a product that exists in Jurnal (productState)
//	c/{name}              the walk-in contact exists in Jurnal
//	s/{outlet}/{sale id}  what was posted for a sale (saleState)
//	d/{outlet}/{date}     a business day of daily_summary mode (dayState)
//	o/{outlet}            an outlet's figures (outletState)
const Collection = "jurnal"

// productState is a Moka product known to exist in Jurnal, by the identity
// the sink matched it on (SKU, else Moka's item and variant ids, else its
// name): a product renamed in Moka keeps its Jurnal name, so no duplicate
// is created.
type productState struct {
	Name string `json:"name"` // the Jurnal product's name, used on lines
}

// saleState is what the sink posted for one sale.
type saleState struct {
	// Invoices are the sale's invoices in Jurnal: the first is the sale's
	// own (the day's invoice in daily_summary mode), the others carry
	// what an edit in Moka added after it was posted.
	Invoices []postedInvoice `json:"invoices,omitempty"`
	Date     string          `json:"date,omitempty"`
	// Net is the sale's amount as posted: its first amount, then what
	// edits made it (an edit down is a sales return).
	Net unified.Decimal `json:"net"`
	// Reversed is what voids and refunds took back by sales returns.
	Reversed unified.Decimal `json:"reversed"`
	// Trying is the custom_id of a document whose create was sent without
	// a clear answer (a timeout, a crash): it is looked up before it is
	// created again.
	Trying string `json:"trying,omitempty"`
	// Taken is, per return operation under way (its custom_id tag), what
	// its returns took so far.
	Taken map[string]unified.Decimal `json:"taken,omitempty"`
	// Void: voided (or nothing collected) before anything was posted;
	// nothing is.
	Void bool `json:"void,omitempty"`
}

// postedInvoice is one invoice of a sale and what was returned of it.
type postedInvoice struct {
	CustomID string          `json:"custom_id"`
	ID       int64           `json:"id"`
	No       string          `json:"no"`
	Amount   unified.Decimal `json:"amount"` // the sale's share of it
	Lines    []line          `json:"lines,omitempty"`
	Paid     bool            `json:"paid,omitempty"`
	Returned unified.Decimal `json:"returned"`
	// ReturnedQty is, per product, the quantity sales returns took back
	// (Jurnal refuses returning more than invoiced).
	ReturnedQty map[string]unified.Decimal `json:"returned_qty,omitempty"`
}

func (p postedInvoice) left() unified.Decimal { return p.Amount.Sub(p.Returned) }

// outletState is an outlet's figures for the status.
type outletState struct {
	LastSynced string `json:"last_synced,omitempty"` // RFC 3339
	Posted     int    `json:"posted"`
}

func getJSON(d Docs, key string, v any) (bool, error) {
	b, ok, err := d.GetDoc(Collection, key)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("jurnal state %s: %w", key, err)
	}
	return true, nil
}

func putJSON(d Docs, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("jurnal state %s: %w", key, err)
	}
	if _, err := d.PutDoc(Collection, key, b, nil); err != nil {
		return err
	}
	return nil
}
