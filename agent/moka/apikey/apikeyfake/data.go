package apikeyfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/unified"
)

// menuItem is a line of the generated menu. Prices are IDR.
type menuItem struct {
	name     string
	category string
	price    string
	weighed  bool // sold by weight: fractional quantities
}

// menu is the catalogue every outlet draws from. The names exercise
// Unicode, emoji, quotes and HTML-sensitive characters on purpose.
var menu = []menuItem{
	{"Es Kopi Susu Gula Aren", "Kopi", "22000", false},
	{"Kopi Tubruk", "Kopi", "12000", false},
	{"Cappuccino", "Kopi", "28000", false},
	{"Kopi Bubuk Toraja (100 g)", "Kopi", "45000", true},
	{"Teh Tarik 🍵", "Teh", "18000", false},
	{"Es Teh Manis", "Teh", "8000", false},
	{"Matcha Latte", "Teh", "32000", false},
	{"Nasi Goreng Spésial", "Makanan", "35000", false},
	{"Mie Goreng Jawa", "Makanan", "28000", false},
	{"Bakso Urat Pedas 🌶️", "Makanan", "30000", false},
	{"Sate Ayam × 10", "Makanan", "40000", false},
	{"Pisang Goreng Keju", "Camilan", "15000", false},
	{"Roti Bakar Cokelat–Keju", "Camilan", "20000", false},
	{"Croissant Almond", "Camilan", "27500", false},
	{"Kue Lapis Legit", "Camilan", "17500", false},
	{"Permen Jahe", "Camilan", "1500.50", false},
	{"Air Mineral 600 ml", "Minuman", "6000", false},
	{"Jus Alpukat", "Minuman", "25000", false},
	{`Es Jeruk Nipis "Segar"`, "Minuman", "15000", false},
	{"Wedang Jahe <Hangat> & Manis", "Minuman", "14000", false},
}

var outletNames = []string{
	"Kedai Kopi Nusantara — Kemang",
	"Warung Teh Tarik Menteng",
	"Café Sénja Bintaro",
	"Kopi & Roti Jl. Braga",
	"Rumah Makan Sederhana Nº 5",
}

var paymentTypes = []struct {
	name   string
	weight int
}{
	{"cash", 42}, {"qris", 25}, {"debit_card", 10}, {"credit_card", 8},
	{"gopay", 6}, {"ovo", 4}, {"", 2}, {"-", 3}, // "-": field omitted
}

// numStyle is how a number is written in the JSON.
type numStyle uint8

const (
	numString    numStyle = iota // "150000"
	numStringDec                 // "150000.00" (integers get ".00")
	numJSON                      // 150000
)

// outlet is a generated outlet.
type outlet struct {
	id   string
	name string
	menu []int // indexes into menu sold here
}

// line is one line item of a sale.
type line struct {
	menu int
	qty  decimal.Decimal
}

// txn is a generated sale: its base content, how it is rendered, and its
// edits. The current content is derived by content().
type txn struct {
	id        string
	outlet    int
	createdAt time.Time // in the server's location
	receipt   string
	receiptAs string // "receipt_no", "payment_no" or "" (absent)
	payment   string // "" with paymentSet false means absent
	paySet    bool
	lines     []line
	noItems   bool            // no line_items key: a "custom amount" sale
	custom    decimal.Decimal // grand total of a custom-amount sale
	discount  decimal.Decimal
	taxPlaces int32 // 0 or 2
	noTax     bool  // tax_amount omitted
	rfc3339   bool  // created_at written as RFC 3339 with offset
	extra     bool  // carries fields the agent does not know
	style     numStyle
	qtyJSON   bool // quantities as JSON numbers

	autoEditAt time.Time // zero: no automatic edit
	edits      int       // explicit edits through Server.Edit
}

// content is the sale as Moka knows it at time now.
type content struct {
	lines      []line
	grandTotal decimal.Decimal
	tax        decimal.Decimal
	discount   decimal.Decimal
	edits      int
}

var (
	dec10  = decimal.NewFromInt(10)
	dec110 = decimal.NewFromInt(110)
	dec500 = decimal.NewFromInt(500)
)

func (s *Server) content(t *txn, now time.Time) content {
	c := content{lines: append([]line(nil), t.lines...), discount: t.discount}
	gt := t.custom
	n := 0
	if !t.autoEditAt.IsZero() && !now.Before(t.autoEditAt) {
		n++
	}
	n += t.edits
	for k := 1; k <= n; k++ {
		r := s.rng("edit", t.id, strconv.Itoa(k))
		if t.noItems {
			gt = gt.Add(decimal.NewFromInt(5000))
			continue
		}
		if r.IntN(2) == 0 || len(c.lines) == 0 {
			o := s.outlets[t.outlet]
			c.lines = append(c.lines, line{menu: o.menu[r.IntN(len(o.menu))], qty: decimal.NewFromInt(1)})
		} else {
			c.lines[0].qty = c.lines[0].qty.Add(decimal.NewFromInt(1))
		}
	}
	c.edits = n
	if !t.noItems {
		gross := decimal.Zero
		for _, l := range c.lines {
			gross = gross.Add(l.qty.Mul(decimal.RequireFromString(menu[l.menu].price)))
		}
		if c.discount.GreaterThan(gross) {
			c.discount = decimal.Zero
		}
		gt = gross.Sub(c.discount)
	}
	c.grandTotal = gt
	if !t.noTax {
		// PB1 restaurant tax, 10 %, included in the price.
		c.tax = gt.Mul(dec10).DivRound(dec110, t.taxPlaces)
	}
	return c
}

// rng returns a generator determined by the seed and the parts.
func (s *Server) rng(parts ...string) *rand.Rand {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return rand.New(rand.NewPCG(uint64(s.opts.Seed), h.Sum64()))
}

func (s *Server) genOutlets() {
	for i := range s.opts.Outlets {
		r := s.rng("outlet", strconv.Itoa(i))
		name := outletNames[i%len(outletNames)]
		if i >= len(outletNames) {
			name += " #" + strconv.Itoa(i/len(outletNames)+1)
		}
		o := outlet{id: "outlet_" + strconv.Itoa(i+1), name: name}
		for m := range menu {
			if r.IntN(10) < 8 || m == 0 { // every outlet sells ~80 % of the menu
				o.menu = append(o.menu, m)
			}
		}
		s.outlets = append(s.outlets, o)
	}
}

// genDay appends the sales of local day day (midnight in s.loc) for every
// outlet to s.txns, keeping s.txns sorted by (createdAt, id).
func (s *Server) genDay(day time.Time) {
	var fresh []*txn
	for oi := range s.outlets {
		r := s.rng("day", strconv.Itoa(oi), day.Format("2006-01-02"))
		secs := make([]int, s.opts.TxPerDay)
		for i := range secs {
			if s.opts.AroundTheClock {
				secs[i] = r.IntN(24 * 3600)
			} else {
				secs[i] = 7*3600 + r.IntN(15*3600) // 07:00–22:00
			}
		}
		slices.Sort(secs)
		for i, sec := range secs {
			t := s.genTxn(r, oi, day, i, sec)
			fresh = append(fresh, t)
		}
	}
	sortTxns(fresh)
	for _, t := range fresh {
		s.byID[t.id] = t
	}
	s.txns = append(s.txns, fresh...)
}

func (s *Server) genTxn(r *rand.Rand, oi int, day time.Time, seq, sec int) *txn {
	o := s.outlets[oi]
	t := &txn{
		id:     fmt.Sprintf("MOK%d-%s-%04d", oi+1, day.Format("060102"), seq+1),
		outlet: oi,
		// The wall clock of the local day (right across DST changes too).
		createdAt: time.Date(day.Year(), day.Month(), day.Day(), sec/3600, sec/60%60, sec%60, 0, s.loc),
	}

	switch p := r.IntN(10); {
	case p < 6:
		t.receiptAs = "receipt_no"
	case p < 8:
		t.receiptAs = "payment_no"
	}
	if t.receiptAs != "" {
		const alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
		b := []byte("INV")
		for range 6 {
			b = append(b, alnum[r.IntN(len(alnum))])
		}
		t.receipt = string(b)
	}
	w := r.IntN(100)
	for _, pt := range paymentTypes {
		if w < pt.weight {
			t.payment, t.paySet = pt.name, pt.name != "-"
			if !t.paySet {
				t.payment = ""
			}
			break
		}
		w -= pt.weight
	}

	if r.IntN(100) < 3 {
		t.noItems = true
		t.custom = decimal.NewFromInt(int64(5+r.IntN(196)) * 1000)
	} else {
		n := 1 + r.IntN(4)
		for range n {
			m := o.menu[r.IntN(len(o.menu))]
			var q decimal.Decimal
			switch {
			case menu[m].weighed:
				q = decimal.New(int64(1+2*r.IntN(3)), -1).Add(decimal.NewFromInt(int64(r.IntN(2)))) // 0.1–1.5
			case r.IntN(10) < 7:
				q = decimal.NewFromInt(1)
			default:
				q = decimal.NewFromInt(int64(2 + r.IntN(3)))
			}
			t.lines = append(t.lines, line{menu: m, qty: q})
		}
	}
	if !t.noItems && r.IntN(10) == 0 {
		// A 10 % promo, rounded down to Rp 500.
		gross := decimal.Zero
		for _, l := range t.lines {
			gross = gross.Add(l.qty.Mul(decimal.RequireFromString(menu[l.menu].price)))
		}
		t.discount = gross.Div(dec10).Div(dec500).Floor().Mul(dec500)
	}
	if r.IntN(5) == 0 {
		t.taxPlaces = 2
	}
	t.noTax = r.IntN(100) < 5
	t.rfc3339 = r.IntN(100) < 3
	t.extra = r.IntN(10) == 0
	switch p := r.IntN(100); {
	case p < 70:
		t.style = numString
	case p < 82:
		t.style = numStringDec
	default:
		t.style = numJSON
	}
	t.qtyJSON = r.IntN(2) == 0
	if !s.opts.NoAutoEdits && r.IntN(100) < 4 {
		t.autoEditAt = t.createdAt.Add(time.Duration(5+r.IntN(86)) * time.Minute)
	}
	return t
}

// override replaces (or, with a nil value, removes) a top-level field.
type override struct {
	field string
	value json.RawMessage
}

// render writes t as the Moka API shows it at time now, with its
// corruptions applied.
func (s *Server) render(t *txn, now time.Time) json.RawMessage {
	b := s.renderClean(t, now)
	if ov := s.corrupt[t.id]; len(ov) > 0 {
		b = applyOverrides(b, ov)
	}
	return b
}

// applyOverrides rewrites the top-level fields of object b, keeping the key
// order.
func applyOverrides(b []byte, ov []override) []byte {
	var keys []string
	vals := map[string]json.RawMessage{}
	dec := json.NewDecoder(bytes.NewReader(b))
	_, _ = dec.Token() // {
	for dec.More() {
		k, _ := dec.Token()
		var v json.RawMessage
		_ = dec.Decode(&v)
		keys = append(keys, k.(string))
		vals[k.(string)] = v
	}
	for _, o := range ov {
		if _, ok := vals[o.field]; !ok {
			keys = append(keys, o.field)
		}
		vals[o.field] = o.value
	}
	out := []byte{'{'}
	first := true
	for _, k := range keys {
		if vals[k] == nil {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = appendJSONString(out, k)
		out = append(out, ':')
		out = append(out, vals[k]...)
	}
	return append(out, '}')
}

func (s *Server) renderClean(t *txn, now time.Time) json.RawMessage {
	c := s.content(t, now)
	b := make([]byte, 0, 512)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, t.id)
	b = append(b, `,"outlet_id":`...)
	b = appendJSONString(b, s.outlets[t.outlet].id)
	if t.receiptAs != "" {
		b = append(b, `,"`...)
		b = append(b, t.receiptAs...)
		b = append(b, `":`...)
		b = appendJSONString(b, t.receipt)
	}
	b = append(b, `,"grand_total":`...)
	b = appendNum(b, c.grandTotal, t.style)
	if !t.noTax {
		b = append(b, `,"tax_amount":`...)
		b = appendNum(b, c.tax, t.style)
	}
	b = append(b, `,"discount_amount":`...)
	b = appendNum(b, c.discount, t.style)
	if t.paySet {
		b = append(b, `,"payment_type":`...)
		b = appendJSONString(b, t.payment)
	}
	b = append(b, `,"created_at":`...)
	if t.rfc3339 {
		b = appendJSONString(b, t.createdAt.Format(time.RFC3339))
	} else {
		b = appendJSONString(b, t.createdAt.Format("2006-01-02 15:04:05"))
	}
	if t.extra {
		b = append(b, `,"table_no":"T`...)
		b = strconv.AppendInt(b, int64(1+len(t.id)%12), 10)
		b = append(b, `","customer":{"name":null},"note":""`...)
	}
	if !t.noItems {
		b = append(b, `,"line_items":[`...)
		for i, l := range c.lines {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"item_name":`...)
			b = appendJSONString(b, menu[l.menu].name)
			b = append(b, `,"quantity":`...)
			if t.qtyJSON {
				b = append(b, l.qty.String()...)
			} else {
				b = appendJSONString(b, l.qty.String())
			}
			b = append(b, `,"price":`...)
			b = appendNum(b, decimal.RequireFromString(menu[l.menu].price), t.style)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	return b
}

func appendNum(b []byte, d decimal.Decimal, st numStyle) []byte {
	s := unified.NewDecimal(d).String()
	switch st {
	case numJSON:
		return append(b, s...)
	case numStringDec:
		if d.IsInteger() {
			s += ".00"
		}
	}
	return appendJSONString(b, s)
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// TxnTruth is a sale as the fake's Moka knows it now: what a correct agent
// must end up forwarding.
type TxnTruth struct {
	ID          string
	OutletID    string
	ReceiptNo   string // "" when the record carries none
	PaymentType string // "" when absent or empty
	CreatedAt   time.Time
	GrandTotal  unified.Decimal
	TaxAmount   unified.Decimal // 0 when the record omits tax_amount
	Discount    unified.Decimal
	Items       []ItemTruth // empty for a custom-amount sale
	Edits       int         // how many edits are visible (automatic and explicit)
}

// ItemTruth is a line of a TxnTruth.
type ItemTruth struct {
	Name     string
	Quantity unified.Decimal
	Price    unified.Decimal
}

func (s *Server) truth(t *txn, now time.Time) TxnTruth {
	c := s.content(t, now)
	tr := TxnTruth{
		ID:          t.id,
		OutletID:    s.outlets[t.outlet].id,
		ReceiptNo:   t.receipt,
		PaymentType: t.payment,
		CreatedAt:   t.createdAt,
		GrandTotal:  unified.NewDecimal(c.grandTotal),
		TaxAmount:   unified.NewDecimal(c.tax),
		Discount:    unified.NewDecimal(c.discount),
		Items:       []ItemTruth{},
		Edits:       c.edits,
	}
	for _, l := range c.lines {
		tr.Items = append(tr.Items, ItemTruth{
			Name:     menu[l.menu].name,
			Quantity: unified.NewDecimal(l.qty),
			Price:    unified.NewDecimal(decimal.RequireFromString(menu[l.menu].price)),
		})
	}
	return tr
}

// expected is the unified transaction of tr, computed from the truth
// without parsing the JSON: an independent statement of the mapping rules
// of SPEC §4/§5.1 for the fields this fake produces.
func (s *Server) expected(tr TxnTruth) unified.Transaction {
	t := unified.Transaction{
		ExternalID:     tr.ID,
		SourceSystem:   unified.SourceMoka,
		BusinessID:     s.opts.BusinessID,
		OutletID:       tr.OutletID,
		ReceiptNo:      tr.ReceiptNo,
		Status:         unified.StatusCompleted,
		Currency:       "IDR",
		Amount:         tr.GrandTotal,
		Subtotal:       tr.GrandTotal.Sub(tr.TaxAmount),
		TaxAmount:      tr.TaxAmount,
		DiscountAmount: tr.Discount,
		PaymentMethod:  tr.PaymentType,
		Timestamp:      tr.CreatedAt.In(s.loc),
		BusinessDate:   tr.CreatedAt.In(s.loc).Format(unified.BusinessDateLayout),
		Items:          []unified.Item{},
	}
	if t.PaymentMethod == "" {
		t.PaymentMethod = "unknown"
	}
	for _, it := range tr.Items {
		t.Items = append(t.Items, unified.Item{
			Name:      it.Name,
			Quantity:  it.Quantity,
			UnitPrice: it.Price,
			Total:     it.Quantity.Mul(it.Price),
			Modifiers: []unified.Modifier{},
		})
	}
	return t
}

func sortTxns(a []*txn) {
	slices.SortFunc(a, func(x, y *txn) int {
		if c := x.createdAt.Compare(y.createdAt); c != 0 {
			return c
		}
		return strings.Compare(x.id, y.id)
	})
}

func txnLess(a, b *txn) bool {
	if !a.createdAt.Equal(b.createdAt) {
		return a.createdAt.Before(b.createdAt)
	}
	return a.id < b.id
}
