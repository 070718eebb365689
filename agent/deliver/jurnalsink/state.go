package jurnalsink

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
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
		if !strings.HasPrefix(key, "s/") && !strings.HasPrefix(key, "d/") {
			return nil
		}
		if json.Unmarshal(value, &v) != nil || v.Date == "" || v.Date >= cut {
			return nil
		}
		if strings.HasPrefix(key, "d/") && !v.Posted {
			return nil // an open day is never forgotten
		}
		old = append(old, key)
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
//	m/company             the Jurnal company p/, c/ and o/ are of (companyMarker)
//	p/{identity}          a product that exists in Jurnal (productState)
//	c/{name}              the walk-in contact exists in Jurnal
//	s/{outlet}/{sale id}  what was posted for a sale (saleState)
//	d/{outlet}/{date}     a business day of daily_summary mode (dayState)
//	o/{outlet}            an outlet's figures (outletState)
//
// p/, c/ and o/ hold for one Jurnal company: they are dropped when the
// sink posts to another (checkCompany). s/ and d/ are what was posted,
// wherever it was: they stay.
const Collection = "jurnal"

// companyKey is the key of the marker naming the company of the
// per-company documents.
const companyKey = "m/company"

// companyMarker names the Jurnal company the per-company documents (p/,
// c/, o/) were written for, by companyID.
type companyMarker struct {
	Company string `json:"company"`
}

// companyID identifies the Jurnal company cfg posts to: one client id at
// one gateway ("one pair covers one Jurnal company"). It is kept in the
// store, so it must be the same in every process: a plain SHA-256 digest
// of the length-prefixed parts, not sink.Identity, whose salt is drawn
// anew by each process. It holds no secret: the client secret is no part
// of it (a rotated secret is the same company), nor are the mode and the
// walk-in contact (switching them is not switching company). "" when cfg
// names no company.
func companyID(cfg Config) string {
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	id := strings.TrimSpace(cfg.ClientID)
	if base == "" || id == "" {
		return ""
	}
	h := sha256.New()
	for _, p := range []string{"pwbi-agent jurnal company v1", base, id} {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkCompany makes the per-company documents the sink's company's
// before it uses them (Send, Tick): once, unless a sink of another
// company sharing its state (the one before or after a hot reload)
// checked since. When the marker names another company (client_id or
// base_url now name another Jurnal company, after a reload or a
// restart), the cached products and walk-in contact (p/, c/) and the
// outlets' figures (o/) are dropped, as are the figures in memory: the
// caches would say a product or the contact exists where it does not,
// and Jurnal would refuse the invoices naming them. They are only
// caches: what is not known is looked up in Jurnal, and created if
// missing. The ledgers of open days are marked Foreign, as their lines
// name the other company's products. Then the marker names this
// company. Without a marker (a first run, or state written by a version
// without it), the documents are taken as this company's.
//
// The sales (s/) and days (d/) stay: what was posted to the other company
// stays posted there, is not posted to this one, and the delivery cursor
// is not rewound. Errors are the store's (*storeError). s.sh.work must be
// held.
func (s *Sink) checkCompany() error {
	if s.company == "" || s.sh.company == s.company {
		return nil
	}
	var m companyMarker
	b, found, err := s.docs.GetDoc(Collection, companyKey)
	if err != nil {
		return &storeError{err}
	}
	if found && json.Unmarshal(b, &m) != nil {
		m = companyMarker{} // unreadable: of no known company, so not this one
	}
	if found && m.Company != s.company {
		dropped, days, err := s.dropCompanyDocs()
		if err != nil {
			return err
		}
		s.sh.mu.Lock()
		s.sh.resetCompanyLocked()
		s.sh.mu.Unlock()
		s.log.Info("Jurnal company changed: its cached products and contact are dropped",
			"entries", dropped, "open_days", days)
	}
	if !found || m.Company != s.company {
		if err := putJSON(s.docs, companyKey, companyMarker{Company: s.company}); err != nil {
			return &storeError{err}
		}
	}
	s.sh.company = s.company
	return nil
}

// dropCompanyDocs deletes the per-company documents (p/, c/, o/), marks
// the open days' ledgers Foreign and the days and sales whose invoice the
// old company holds done (through putDay, which keeps the index of open days
// in step); it returns how many cache entries (p/, c/) it
// dropped and how many days it marked. Run again after a crash, it does
// the rest.
func (s *Sink) dropCompanyDocs() (dropped, marked int, err error) {
	var drop []string
	var open, begun []*dayState
	unpaid := map[string]*saleState{}
	err = s.docs.Docs(Collection, func(key string, value []byte) error {
		switch {
		case strings.HasPrefix(key, "p/"), strings.HasPrefix(key, "c/"), strings.HasPrefix(key, "o/"):
			drop = append(drop, key)
		case strings.HasPrefix(key, "s/"):
			st := &saleState{}
			if json.Unmarshal(value, st) == nil && slices.ContainsFunc(st.Invoices, func(p postedInvoice) bool { return !p.Paid }) {
				unpaid[key] = st
			}
		case strings.HasPrefix(key, "d/"):
			d := &dayState{}
			if json.Unmarshal(value, d) != nil || d.Posted {
				return nil
			}
			switch {
			case d.Invoice != "":
				begun = append(begun, d)
			case !d.Foreign:
				open = append(open, d)
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, &storeError{err}
	}
	for _, d := range open {
		d.Foreign = true
		if err := s.putDay(d); err != nil {
			return 0, 0, err
		}
	}
	// A day whose invoice the old company holds is that company's: its
	// payments and return name that invoice, which the new company does
	// not have (it would refuse them every minute, a problem no one could
	// clear). What is missing there is said once, for the technician
	// who made the switch, and the day is done here.
	for _, d := range begun {
		_, _, paid, refunds := d.totals()
		var missing []string
		for m, amount := range paid {
			if amount.Sign() > 0 && !slices.Contains(d.Paid, m) {
				missing = append(missing, m+" "+amount.String())
			}
		}
		slices.Sort(missing)
		refund := ""
		if refunds.Sign() > 0 && !d.Returned {
			refund = refunds.String()
		}
		s.log.Warn("Jurnal day left unfinished in the previous company",
			"outlet", d.Outlet, "date", d.Date, "invoice_no", d.InvoiceNo,
			"payments_missing", strings.Join(missing, ", "), "return_missing", refund)
		d.Posted, d.Trying = true, ""
		if err := s.putDay(d); err != nil {
			return 0, 0, err
		}
	}
	// Likewise a sale whose invoice the old company holds without its
	// payment (invoice mode): the new company would refuse the payment,
	// and the sale would go to the dead letters.
	for key, st := range unpaid {
		for i := range st.Invoices {
			if p := &st.Invoices[i]; !p.Paid {
				s.log.Warn("Jurnal sale left unpaid in the previous company", "sale", strings.TrimPrefix(key, "s/"), "invoice_no", p.No, "amount", p.Amount.String())
				p.Paid = true
			}
		}
		st.Trying = ""
		if err := putJSON(s.docs, key, st); err != nil {
			return 0, 0, &storeError{err}
		}
	}
	for _, k := range drop {
		if err := s.docs.DeleteDoc(Collection, k); err != nil {
			return 0, 0, &storeError{err}
		}
		if !strings.HasPrefix(k, "o/") {
			dropped++
		}
	}
	return dropped, len(open), nil
}

// ownsFiguresLocked reports whether the outlets' figures in the store
// (o/) are the current company's: the marker names it, or there is none.
// A sink of another company than the marker's shows none of them until
// checkCompany drops them. s.sh.mu must be held.
func (s *Sink) ownsFiguresLocked() bool {
	var m companyMarker
	found, err := getJSON(s.docs, companyKey, &m)
	return err == nil && (!found || m.Company == s.company)
}

// productState is a Moka product known to exist in Jurnal, by the identity
// the sink matched it on (SKU, else Moka's item and variant ids, else its
// name): a product renamed in Moka keeps its Jurnal name, so no duplicate
// is created.
type productState struct {
	Name string `json:"name"` // the Jurnal product's name, used on lines
	// ID is the Jurnal product's id (0 when not known: remembered by an
	// older version, or created without an answer): a product renamed in
	// Jurnal is found again by it (heal.go).
	ID int64 `json:"id,omitempty"`
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
	// Healed is Jurnal's refusal of an invoice of the sale that made the
	// sink forget what it knew of its products or contact (heal.go): the
	// same refusal again stands.
	Healed string `json:"healed,omitempty"`
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
