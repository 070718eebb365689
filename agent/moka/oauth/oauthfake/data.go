package oauthfake

import (
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

// variantDef is one variant of a menu item; prices are IDR.
type variantDef struct {
	name  string // "" for an item's only, unnamed variant
	price string
}

// itemDef is a line of the generated library.
type itemDef struct {
	name      string
	category  string
	variants  []variantDef
	modGroups []int // indexes into modGroups
	weighed   bool  // sold by weight: fractional quantities
}

type optionDef struct {
	name  string
	price string
}

type modGroupDef struct {
	name    string
	options []optionDef
}

// modGroups are the modifiers (add-ons) of the library.
var modGroups = []modGroupDef{
	{"Tambahan", []optionDef{{"Extra shot", "5000"}, {"Oat milk", "8000"}, {"Sirup karamel", "4500.5"}}},
	{"Tingkat gula", []optionDef{{"Less sugar", "0"}, {"Normal", "0"}, {"Extra manis", "1000"}}},
	{"Topping", []optionDef{{"Keju parut", "6000"}, {"Telur mata sapi", "5000"}}},
}

// library is what every outlet draws its items from. Names exercise
// Unicode, emoji, quotes and HTML-sensitive characters on purpose.
var library = []itemDef{
	{"Es Kopi Susu Gula Aren", "Kopi", []variantDef{{"Regular", "22000"}, {"Large", "28000"}}, []int{0, 1}, false},
	{"Cappuccino", "Kopi", []variantDef{{"Hot", "28000"}, {"Iced", "30000"}}, []int{0, 1}, false},
	{"Kopi Tubruk", "Kopi", []variantDef{{"", "12000"}}, []int{1}, false},
	{"Kopi Bubuk Toraja (100 g)", "Kopi", []variantDef{{"", "45000"}}, nil, true},
	{"Teh Tarik 🍵", "Teh", []variantDef{{"Regular", "18000"}, {"Jumbo", "23500"}}, []int{1}, false},
	{"Matcha Latte", "Teh", []variantDef{{"", "32000"}}, []int{0, 1}, false},
	{"Nasi Goreng Spésial", "Makanan", []variantDef{{"", "35000"}}, []int{2}, false},
	{"Mie Goreng Jawa", "Makanan", []variantDef{{"Biasa", "28000"}, {"Pedas", "28000"}}, []int{2}, false},
	{"Sate Ayam × 10", "Makanan", []variantDef{{"", "40000"}}, nil, false},
	{"Roti Bakar Cokelat–Keju", "Camilan", []variantDef{{"", "20000"}}, nil, false},
	{"Croissant Almond", "Camilan", []variantDef{{"", "27500"}}, nil, false},
	{"Permen Jahe", "Camilan", []variantDef{{"", "1500.50"}}, nil, false},
	{`Es Jeruk Nipis "Segar"`, "Minuman", []variantDef{{"", "15000"}}, []int{1}, false},
	{"Wedang Jahe <Hangat> & Manis", "Minuman", []variantDef{{"", "14000"}}, nil, false},
}

var outletDefs = []struct {
	name     string
	zone     string
	offset   int    // hours, fallback when the zone database is missing
	tax      string // percent
	gratuity string // percent; "0": no service charge
	gratTax  bool   // tax is charged on the service charge too
	negTax   bool   // payment_taxes[].total written as a negative number
}{
	{"Kedai Kopi Nusantara — Kemang", "Asia/Jakarta", 7, "10", "5", true, false},
	{"Warung Teh Tarik Menteng", "Asia/Jakarta", 7, "11", "0", false, true},
	{"Café Sénja Seminyak (Bali)", "Asia/Makassar", 8, "10", "5.5", false, false},
	{"Kopi & Roti Jayapura", "Asia/Jayapura", 9, "10", "0", false, false},
}

var paymentTypes = []struct {
	name, label string
	weight      int
}{
	{"cash", "Cash", 45}, {"qris", "QRIS", 25}, {"card", "Debit Card", 12}, {"gopay", "GoPay", 8},
	{"ovo", "OVO", 5}, {"invoice", "Invoice", 2}, {"", "", 3},
}

// outlet is a generated outlet.
type outlet struct {
	id       int64
	name     string
	loc      *time.Location
	tax      decimal.Decimal // rate, e.g. 0.10
	gratuity decimal.Decimal // rate; zero: none
	gratTax  bool
	negTax   bool
	items    []int // library indexes sold here
}

// line is one line of a sale.
type line struct {
	item     int // library index
	variant  int
	qty      decimal.Decimal
	mods     [][2]int // (group, option)
	discPct  decimal.Decimal
	deleted  bool // removed from the bill: not counted
	note     string
	salesTyp int
}

// Kinds of later changes to a sale.
const (
	evVoid = iota + 1
	evRefund
	evPartialRefund
)

// event is a change to a sale after it was made.
type event struct {
	at   time.Time
	kind int
	line int // the refunded line of a partial refund
	// asRow: a refund that arrives as a payment row of its own pointing at
	// the sale with parent_payment_id, the sale itself unchanged (its
	// updated_at does not move); else flags on the sale.
	asRow bool
}

// refundRec is one refund of a sale at some moment.
type refundRec struct {
	n       int // index among the sale's events: the row's identity
	at      time.Time
	amount  decimal.Decimal
	partial bool
	line    int // the refunded line of a partial refund; -1 for all
	asRow   bool
}

// payment is a generated sale.
type payment struct {
	id        string // UUID
	guid      string
	no        string // payment_no
	outlet    int
	seq       int
	createdAt time.Time // millisecond precision, in the outlet's zone
	syncedAt  time.Time // when it reached Moka's servers
	payType   int       // index into paymentTypes
	lines     []line
	promoPct  decimal.Decimal // payment-level promo; zero: none
	customer  bool
	dotZero   bool // integers written as 150000.0 (a Ruby float)
	events    []event
}

// amounts is a sale's money at some moment.
type amounts struct {
	lineGross []decimal.Decimal // per line (deleted lines zero): qty × (price + modifiers)
	lineDisc  []decimal.Decimal // per line discount
	gross     decimal.Decimal   // Σ lineGross = subtotal
	promo     decimal.Decimal
	discount  decimal.Decimal // Σ lineDisc + promo
	net       decimal.Decimal
	gratuity  decimal.Decimal
	tax       decimal.Decimal
	total     decimal.Decimal
}

var (
	dec100 = decimal.NewFromInt(100)
	dec1k  = decimal.NewFromInt(1000)
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

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
		def := outletDefs[i%len(outletDefs)]
		loc, err := time.LoadLocation(def.zone)
		if err != nil {
			loc = time.FixedZone(def.zone, def.offset*3600)
		}
		name := def.name
		if i >= len(outletDefs) {
			name += " #" + strconv.Itoa(i/len(outletDefs)+1)
		}
		o := outlet{
			id: s.businessID*10 + int64(i+1), name: name, loc: loc,
			tax: d(def.tax).Div(dec100), gratuity: d(def.gratuity).Div(dec100), gratTax: def.gratTax, negTax: def.negTax,
		}
		r := s.rng("outlet", strconv.Itoa(i))
		for m := range library {
			if m < 3 || r.IntN(10) < 8 {
				o.items = append(o.items, m)
			}
		}
		s.outlets = append(s.outlets, o)
	}
}

// Ids of the library per outlet: unique across the business, so that
// records of different outlets never share one.
func itemID(oi, m int) int64       { return int64(oi+1)*100000 + int64(m+1)*100 }
func variantID(oi, m, v int) int64 { return itemID(oi, m) + int64(v+1) }
func categoryID(cat string) int64 {
	h := fnv.New32a()
	h.Write([]byte(cat))
	return int64(h.Sum32() % 100000)
}
func modGroupID(oi, g int) int64      { return int64(oi+1)*1000 + int64(g+1)*10 }
func optionID(oi, g, o int) int64     { return modGroupID(oi, g)*10 + int64(o+1) }
func lineID(p *payment, i int) string { return fmt.Sprintf("%s-%d", p.id[:8], i+1) }

// genDay appends the sales of local day day for every outlet.
func (s *Server) genDay(day time.Time) {
	var fresh []*payment
	for oi := range s.outlets {
		o := &s.outlets[oi]
		local := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, o.loc)
		r := s.rng("day", strconv.Itoa(oi), local.Format(time.DateOnly))
		ms := make([]int, s.opts.TxPerDay)
		used := map[int]bool{}
		for i := range ms {
			for {
				var v int
				if s.opts.AroundTheClock {
					v = r.IntN(24 * 3600 * 1000)
				} else {
					v = 7*3600*1000 + r.IntN(15*3600*1000) // 07:00–22:00, to the millisecond
				}
				if !used[v] {
					used[v] = true
					ms[i] = v
					break
				}
			}
		}
		slices.Sort(ms)
		if pct := s.opts.SameTimeSales; pct > 0 {
			// Split bills: some sales share the previous one's time to the
			// millisecond. Decided by a hash, not the generator, so that
			// the rest of the data is what it is without the option.
			for i := 1; i < len(ms); i++ {
				if hashPct("same-time", strconv.Itoa(oi), local.Format(time.DateOnly), strconv.Itoa(i)) < pct {
					ms[i] = ms[i-1]
				}
			}
		}
		for i, v := range ms {
			fresh = append(fresh, s.genPayment(r, oi, local, i, v))
		}
	}
	sortPayments(fresh)
	for _, p := range fresh {
		s.byID[p.id] = p
	}
	s.payments = append(s.payments, fresh...)
	sortPayments(s.payments)
}

func uuid(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (s *Server) genPayment(r *rand.Rand, oi int, day time.Time, seq, ms int) *payment {
	o := &s.outlets[oi]
	p := &payment{
		id: uuid(r), guid: uuid(r), outlet: oi, seq: seq,
		createdAt: day.Add(time.Duration(ms) * time.Millisecond),
	}
	p.syncedAt = p.createdAt.Add(time.Duration(200+r.IntN(5000)) * time.Millisecond)
	if r.IntN(50) == 0 { // a tablet that was offline for a while
		p.syncedAt = p.createdAt.Add(time.Duration(10+r.IntN(120)) * time.Minute)
	}
	const alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
	no := make([]byte, 7)
	for i := range no {
		no[i] = alnum[r.IntN(len(alnum))]
	}
	p.no = string(no)
	w := r.IntN(100)
	for i, pt := range paymentTypes {
		if w < pt.weight {
			p.payType = i
			break
		}
		w -= pt.weight
	}
	n := 1 + r.IntN(4)
	for range n {
		m := o.items[r.IntN(len(o.items))]
		it := library[m]
		l := line{item: m, variant: r.IntN(len(it.variants)), salesTyp: r.IntN(2)}
		switch {
		case it.weighed:
			l.qty = decimal.New(int64(1+r.IntN(15)), -1) // 0.1–1.5
		case r.IntN(10) < 7:
			l.qty = decimal.NewFromInt(1)
		default:
			l.qty = decimal.NewFromInt(int64(2 + r.IntN(3)))
		}
		for _, g := range it.modGroups {
			if r.IntN(3) == 0 {
				l.mods = append(l.mods, [2]int{g, r.IntN(len(modGroups[g].options))})
			}
		}
		if r.IntN(12) == 0 {
			l.discPct = d("10")
		}
		if r.IntN(8) == 0 {
			l.note = "tanpa es"
		}
		p.lines = append(p.lines, l)
	}
	if len(p.lines) > 1 && r.IntN(25) == 0 {
		p.lines[r.IntN(len(p.lines))].deleted = true // a line removed from the bill
		allDeleted := true
		for _, l := range p.lines {
			allDeleted = allDeleted && l.deleted
		}
		if allDeleted {
			p.lines[0].deleted = false
		}
	}
	if r.IntN(8) == 0 {
		p.promoPct = d([]string{"7.5", "10", "15", "12.5"}[r.IntN(4)])
	}
	p.customer = r.IntN(4) == 0
	p.dotZero = r.IntN(3) == 0
	// Some sales of more than a week ago are voided or refunded later:
	// changes that only an updated_at poll finds.
	if !s.opts.NoEvents && s.start.Sub(p.createdAt) > 7*24*time.Hour && r.IntN(100) < 6 {
		at := s.start.Add(-time.Duration(1+r.IntN(47)) * time.Hour).Add(-time.Duration(r.IntN(3600000)) * time.Millisecond)
		kind := []int{evVoid, evRefund, evPartialRefund}[r.IntN(3)]
		p.events = append(p.events, event{at: at.In(o.loc).Truncate(time.Millisecond), kind: kind, line: s.firstLive(p),
			asRow: kind != evVoid && s.refundAsRow(p.id)})
	}
	return p
}

// refundAsRow says whether an automatic refund of sale id arrives as a
// refund row (Options.RefundStyle).
func (s *Server) refundAsRow(id string) bool {
	switch s.opts.RefundStyle {
	case RefundRows:
		return true
	case RefundMixed:
		return hashPct("refund-style", id) < 50
	}
	return false
}

// hashPct is a number in [0, 100) determined by the parts.
func hashPct(parts ...string) int {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return int(h.Sum64() % 100)
}

func (s *Server) firstLive(p *payment) int {
	for i, l := range p.lines {
		if !l.deleted {
			return i
		}
	}
	return 0
}

func sortPayments(a []*payment) {
	slices.SortFunc(a, func(x, y *payment) int {
		if c := x.createdAt.Compare(y.createdAt); c != 0 {
			return c
		}
		return strings.Compare(x.id, y.id)
	})
}

// money computes a sale's amounts. Rounding: line and promo discounts to
// 2 decimals, service charge to 2, tax to 4 (Moka keeps fractions:
// "discounts": 5100.1, a tax total of -755.0125).
func (s *Server) money(p *payment) amounts {
	o := &s.outlets[p.outlet]
	a := amounts{lineGross: make([]decimal.Decimal, len(p.lines)), lineDisc: make([]decimal.Decimal, len(p.lines))}
	for i, l := range p.lines {
		if l.deleted {
			continue
		}
		unit := d(library[l.item].variants[l.variant].price)
		for _, m := range l.mods {
			unit = unit.Add(d(modGroups[m[0]].options[m[1]].price))
		}
		a.lineGross[i] = l.qty.Mul(unit)
		if !l.discPct.IsZero() {
			a.lineDisc[i] = a.lineGross[i].Mul(l.discPct).Div(dec100).Round(2)
		}
		a.gross = a.gross.Add(a.lineGross[i])
		a.discount = a.discount.Add(a.lineDisc[i])
	}
	if !p.promoPct.IsZero() {
		a.promo = a.gross.Sub(a.discount).Mul(p.promoPct).Div(dec100).Round(2)
		a.discount = a.discount.Add(a.promo)
	}
	a.net = a.gross.Sub(a.discount)
	a.gratuity = a.net.Mul(o.gratuity).Round(2)
	base := a.net
	if o.gratTax {
		base = base.Add(a.gratuity)
	}
	a.tax = base.Mul(o.tax).Round(4)
	a.total = a.net.Add(a.gratuity).Add(a.tax)
	return a
}

// state is a sale's status at time now.
type state struct {
	voided, refunded, partial bool
	refundAmount              decimal.Decimal // every refund, flags and rows
	refunds                   []refundRec
	updatedAt                 time.Time
	syncedAt                  time.Time
}

// flagRefunds are the refunds the sale itself shows (not refund rows).
func (st state) flagRefunds() (out []refundRec, sum decimal.Decimal, partial bool) {
	full := false
	for _, rf := range st.refunds {
		if rf.asRow {
			continue
		}
		out = append(out, rf)
		sum = sum.Add(rf.amount)
		full = full || !rf.partial
	}
	return out, sum, len(out) > 0 && !full
}

// state is the sale at now: every refund counts (a refund row changes the
// sale as the agent must report it, though not its JSON); a refund row
// leaves the sale's updated_at where it was. Refunds add up: a partial
// refund is one unit of its line after its discount, plus tax; a full
// refund is what is left of the total. The sale is partially refunded
// while no full refund was made and the refunds stay below its total.
func (s *Server) state(p *payment, a amounts, now time.Time) state {
	st := state{updatedAt: p.syncedAt, syncedAt: p.syncedAt}
	full := false
	for n, e := range p.events {
		if e.at.After(now) {
			continue
		}
		if !e.asRow {
			st.updatedAt, st.syncedAt = e.at, e.at.Add(1500*time.Millisecond)
		}
		switch e.kind {
		case evVoid:
			st.voided = true
		case evRefund:
			amt := a.total.Sub(st.refundAmount)
			if amt.Sign() < 0 {
				amt = decimal.Zero
			}
			st.refunds = append(st.refunds, refundRec{n: n, at: e.at, amount: amt, line: -1, asRow: e.asRow})
			st.refundAmount = st.refundAmount.Add(amt)
			full = true
		case evPartialRefund:
			l := p.lines[e.line]
			share := a.lineGross[e.line].Sub(a.lineDisc[e.line]).Div(l.qty) // one unit, after its discount
			if l.qty.LessThan(decimal.NewFromInt(1)) {
				share = a.lineGross[e.line].Sub(a.lineDisc[e.line])
			}
			share = share.Add(share.Mul(s.outlets[p.outlet].tax)).Round(2)
			st.refunds = append(st.refunds, refundRec{n: n, at: e.at, amount: share, partial: true, line: e.line, asRow: e.asRow})
			st.refundAmount = st.refundAmount.Add(share)
		}
	}
	st.refunded = len(st.refunds) > 0
	st.partial = st.refunded && !full && st.refundAmount.LessThan(a.total)
	return st
}

// jw writes JSON by hand: field order fixed, numbers written as Moka
// writes them.
type jw struct {
	b       []byte
	first   bool
	dotZero bool
}

func (w *jw) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = strconv.AppendQuote(w.b, k)
	w.b = append(w.b, ':')
}

// open starts an object or array, after a comma when it is not the first
// element of an enclosing array.
func (w *jw) open(c byte) {
	if n := len(w.b); n > 0 {
		switch w.b[n-1] {
		case '[', '{', ':', ',':
		default:
			w.b = append(w.b, ',')
		}
	}
	w.b = append(w.b, c)
	w.first = true
}

func (w *jw) close(c byte) { w.b = append(w.b, c); w.first = false }

func (w *jw) str(k, v string) { w.key(k); w.b = appendJSONString(w.b, v) }
func (w *jw) null(k string)   { w.key(k); w.b = append(w.b, "null"...) }
func (w *jw) boolean(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}
func (w *jw) int(k string, v int64) { w.key(k); w.b = strconv.AppendInt(w.b, v, 10) }

// num writes a JSON number: the exact decimal, integers sometimes as
// "150000.0" like a Ruby float.
func (w *jw) num(k string, v decimal.Decimal) {
	w.key(k)
	w.b = append(w.b, unified.NewDecimal(v).String()...)
	if w.dotZero && v.IsInteger() {
		w.b = append(w.b, ".0"...)
	}
}

func (w *jw) time(k string, t time.Time) {
	w.key(k)
	w.b = appendJSONString(w.b, t.Format("2006-01-02T15:04:05.000Z07:00"))
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

var customers = []struct{ name, phone, email string }{
	{"Budi Santoso", "+6281234567890", "budi.santoso@example.co.id"},
	{"Siti Rahayu", "+6285712345678", "siti.r@example.com"},
	{"Made Wirawan", "+6281338765432", "made.w@example.net"},
}

// render writes the payment as get_latest_transactions shows it at now.
func (s *Server) render(b []byte, p *payment, now time.Time) []byte {
	o := &s.outlets[p.outlet]
	a := s.money(p)
	st := s.state(p, a, now)
	pt := paymentTypes[p.payType]
	w := &jw{b: b, dotZero: p.dotZero}
	w.open('{')
	w.str("id", p.id)
	w.str("payment_no", p.no)
	w.str("status", map[bool]string{false: "Done", true: "Void"}[st.voided])
	if pt.name == "" {
		w.null("payment_type")
	} else {
		w.str("payment_type", pt.name)
	}
	w.str("payment_type_label", pt.label)
	w.time("created_at", p.createdAt)
	w.time("updated_at", st.updatedAt)
	w.time("synchronized_at", st.syncedAt)
	w.str("transaction_date", p.createdAt.Format(time.DateOnly))
	w.str("transaction_time", p.createdAt.Format("15:04:05"))
	w.int("outlet_id", o.id)
	w.int("business_id", s.businessID)
	if p.customer {
		c := customers[int(p.id[1])%len(customers)]
		w.int("customer_id", 5000+int64(p.id[2]))
		w.str("customer_name", c.name)
		w.str("customer_phone", c.phone)
		w.str("customer_email", c.email)
	} else {
		w.null("customer_id")
		w.null("customer_name")
		w.null("customer_phone")
		w.null("customer_email")
	}
	w.num("subtotal", a.gross)
	w.num("discounts", a.discount)
	w.num("gratuities", a.gratuity)
	w.num("taxes", a.tax)
	w.num("total_collected", a.total)
	tendered := a.total
	if pt.name == "cash" {
		tendered = a.total.Div(dec1k).Ceil().Mul(dec1k)
	}
	w.num("tendered", tendered)
	w.num("change", tendered.Sub(a.total))
	w.num("total_item_price_amount", a.gross)
	w.num("total_discount_amount", a.discount)
	w.num("total_gratuity_amount", a.gratuity)
	w.num("total_tax_amount", a.tax)
	w.num("total_checkouts_amount", a.net)
	w.boolean("include_gratuity_tax", o.gratTax)
	w.boolean("enable_tax", true)
	w.boolean("enable_gratuity", !o.gratuity.IsZero())
	w.boolean("is_deleted", st.voided)
	flags, flagSum, flagPartial := st.flagRefunds()
	w.boolean("is_refunded", len(flags) > 0)
	if len(flags) > 0 {
		w.str("refunded_reason", "Pelanggan membatalkan pesanan")
		w.time("refunded_date", flags[len(flags)-1].at)
		w.num("refund_amount", flagSum)
		if flagPartial {
			w.str("refund_type", "partial")
		} else {
			w.null("refund_type")
		}
	} else {
		w.null("refunded_reason")
		w.null("refunded_date")
		w.num("refund_amount", decimal.Zero)
		w.null("refund_type")
	}
	w.null("parent_payment_id")
	w.str("collected_by", "Kasir "+strconv.Itoa(1+p.seq%3))
	w.str("served_by", "Barista "+strconv.Itoa(1+p.seq%4))
	if pt.name == "card" {
		w.str("card_type", "VISA")
		w.str("card_no", "xxxx-xxxx-xxxx-"+p.guid[:4])
	} else {
		w.null("card_type")
		w.null("card_no")
	}
	w.str("guid", p.guid)
	w.str("uniq_id", p.guid[:13])
	w.null("invoice_no")
	w.str("payment_note", "")

	w.key("payment_taxes")
	w.open('[')
	w.open('{')
	w.int("id", 900000+int64(p.seq))
	w.int("tax_id", 70+int64(p.outlet))
	w.str("name", "PB1")
	w.num("amount", o.tax.Mul(dec100))
	taxTotal := a.tax
	if o.negTax {
		taxTotal = taxTotal.Neg() // the sign the GoBiz sample shows
	}
	w.num("total", taxTotal)
	w.num("taxable_amount", a.net)
	w.close('}')
	w.close(']')

	w.key("payment_gratuities")
	w.open('[')
	if !o.gratuity.IsZero() {
		w.open('{')
		w.int("id", 800000+int64(p.seq))
		w.int("gratuity_id", 60+int64(p.outlet))
		w.str("name", "Service charge")
		w.num("amount", o.gratuity.Mul(dec100))
		w.num("total", a.gratuity)
		w.close('}')
	}
	w.close(']')

	w.key("payment_discounts")
	w.open('[')
	if !a.promo.IsZero() {
		w.open('{')
		w.int("id", 700000+int64(p.seq))
		w.int("discount_id", 33)
		w.str("discount_name", "Promo "+p.promoPct.String()+"%")
		w.str("discount_type", "percentage")
		w.num("discount_amount", a.promo.Neg())
		w.num("discount_cash", a.promo)
		w.boolean("is_deleted", false)
		w.close('}')
	}
	w.close(']')

	// One whole payment record per refund the sale shows itself.
	w.key("payment_refunds")
	w.open('[')
	for _, rf := range flags {
		w.open('{')
		w.str("id", s.refundID(p, rf.n))
		w.str("status", "Refunded")
		if pt.name == "" {
			w.null("payment_type")
		} else {
			w.str("payment_type", pt.name)
		}
		w.boolean("is_refunded", true)
		w.str("refunded_reason", "Pelanggan membatalkan pesanan")
		w.time("refunded_date", rf.at)
		w.num("refund_amount", rf.amount)
		if rf.partial {
			w.str("refund_type", "partial")
		} else {
			w.null("refund_type")
		}
		w.num("total_refund_amount", rf.amount)
		w.close('}')
	}
	w.close(']')

	w.key("checkouts")
	w.open('[')
	for i, l := range p.lines {
		it := library[l.item]
		v := it.variants[l.variant]
		w.open('{')
		w.str("id", lineID(p, i))
		w.int("item_id", itemID(p.outlet, l.item))
		w.str("item_name", it.name)
		w.int("item_variant_id", variantID(p.outlet, l.item, l.variant))
		w.str("item_variant_name", v.name)
		w.int("category_id", categoryID(it.category))
		w.str("category_name", it.category)
		if it.weighed || l.item%3 == 0 {
			w.str("sku", skuOf(l.item, l.variant))
		} else {
			w.null("sku")
		}
		w.num("quantity", l.qty)
		price := d(v.price)
		w.num("price", price)
		w.num("item_price_library", price)
		w.num("item_price", price)
		w.num("total_price", a.lineGross[i])
		if !l.discPct.IsZero() && i%2 == 0 {
			w.num("discount_amount", a.lineDisc[i].Neg()) // negative, like payment_discounts
		} else {
			w.num("discount_amount", a.lineDisc[i])
		}
		w.num("tax_amount", a.lineGross[i].Sub(a.lineDisc[i]).Mul(o.tax).Round(4))
		w.num("gratuity_amount", a.lineGross[i].Sub(a.lineDisc[i]).Mul(o.gratuity).Round(2))
		w.num("gross_sales", a.lineGross[i])
		w.num("net_sales", a.lineGross[i].Sub(a.lineDisc[i]))
		refundedQty := decimal.Zero
		for _, rf := range flags {
			if rf.partial && rf.line == i {
				refundedQty = refundedQty.Add(decimal.NewFromInt(1))
			}
		}
		w.num("refunded_quantity", refundedQty)
		w.str("note", l.note)
		w.int("sales_type_id", 10+int64(l.salesTyp))
		w.str("sales_type_name", []string{"Dine In", "Take Away"}[l.salesTyp])
		w.boolean("is_deleted", l.deleted)
		w.key("modifiers")
		w.open('[')
		for _, m := range l.mods {
			g, opt := modGroups[m[0]], modGroups[m[0]].options[m[1]]
			w.open('{')
			w.int("modifier_id", modGroupID(p.outlet, m[0]))
			w.str("modifier_name", g.name)
			w.int("modifier_option_id", optionID(p.outlet, m[0], m[1]))
			w.str("modifier_option_name", opt.name)
			w.num("price", d(opt.price))
			w.num("gross_sales", l.qty.Mul(d(opt.price)))
			w.num("net_sales", l.qty.Mul(d(opt.price)))
			w.num("discount_amount", decimal.Zero)
			w.close('}')
		}
		w.close(']')
		w.key("discounts")
		w.open('[')
		if !l.discPct.IsZero() {
			w.open('{')
			w.int("discount_id", 34)
			w.str("discount_name", "Diskon item 10%")
			w.str("discount_type", "percentage")
			w.num("discount_amount", a.lineDisc[i].Neg())
			w.num("discount_cash", a.lineDisc[i])
			w.num("discount_percentage", l.discPct)
			w.close('}')
		}
		w.close(']')
		w.close('}')
	}
	w.close(']')
	w.close('}')
	return w.b
}

func skuOf(item, variant int) string { return fmt.Sprintf("SKU-%03d-%d", item+1, variant+1) }

// refundID is the payment id of the n-th event of sale p when it is a
// refund: a UUID determined by the sale and n.
func (s *Server) refundID(p *payment, n int) string {
	return uuid(s.rng("refund", p.id, strconv.Itoa(n)))
}

// renderRefundRow writes refund rf of sale p as the payment row of its own
// that get_latest_transactions lists (parent_payment_id = the sale): a
// whole payment record with the refund's time, the refunded amount as
// refund_amount and as a negative total_collected, and the refunded lines
// with negative quantities.
func (s *Server) renderRefundRow(b []byte, p *payment, rf refundRec) []byte {
	o := &s.outlets[p.outlet]
	a := s.money(p)
	pt := paymentTypes[p.payType]
	w := &jw{b: b, dotZero: p.dotZero}
	w.open('{')
	w.str("id", s.refundID(p, rf.n))
	w.str("payment_no", p.no+"-R"+strconv.Itoa(rf.n+1))
	w.str("status", "Refunded")
	if pt.name == "" {
		w.null("payment_type")
	} else {
		w.str("payment_type", pt.name)
	}
	w.str("payment_type_label", pt.label)
	w.time("created_at", rf.at)
	w.time("updated_at", rf.at)
	w.time("synchronized_at", rf.at.Add(1500*time.Millisecond))
	w.str("transaction_date", rf.at.Format(time.DateOnly))
	w.str("transaction_time", rf.at.Format("15:04:05"))
	w.int("outlet_id", o.id)
	w.int("business_id", s.businessID)
	w.null("customer_id")
	w.num("subtotal", rf.amount.Neg())
	w.num("discounts", decimal.Zero)
	w.num("gratuities", decimal.Zero)
	w.num("taxes", decimal.Zero)
	w.num("total_collected", rf.amount.Neg())
	w.boolean("is_deleted", false)
	w.boolean("is_refunded", true)
	w.str("refunded_reason", "Pelanggan membatalkan pesanan")
	w.time("refunded_date", rf.at)
	w.num("refund_amount", rf.amount)
	if rf.partial {
		w.str("refund_type", "partial")
	} else {
		w.null("refund_type")
	}
	w.str("parent_payment_id", p.id)
	w.str("guid", s.refundID(p, rf.n))
	w.key("payment_refunds")
	w.open('[')
	w.close(']')
	w.key("checkouts")
	w.open('[')
	for i, l := range p.lines {
		if l.deleted || (rf.line >= 0 && rf.line != i) {
			continue
		}
		it := library[l.item]
		qty := l.qty.Neg()
		if rf.line >= 0 {
			qty = decimal.NewFromInt(-1)
		}
		w.open('{')
		w.str("id", lineID(p, i)+"-r")
		w.int("item_id", itemID(p.outlet, l.item))
		w.str("item_name", it.name)
		w.int("item_variant_id", variantID(p.outlet, l.item, l.variant))
		w.str("item_variant_name", it.variants[l.variant].name)
		w.str("category_name", it.category)
		w.num("quantity", qty)
		w.num("price", d(it.variants[l.variant].price))
		w.num("total_price", a.lineGross[i].Neg())
		w.boolean("is_deleted", false)
		w.close('}')
	}
	w.close(']')
	w.close('}')
	return w.b
}

// expected is the unified transaction of p at now, computed from the
// generator's state, not by parsing the JSON: an independent statement of
// the mapping rules of SPEC §4/§5.2 for what this fake produces.
func (s *Server) expected(p *payment, now time.Time) unified.Transaction {
	o := &s.outlets[p.outlet]
	a := s.money(p)
	st := s.state(p, a, now)
	dec := unified.NewDecimal
	t := unified.Transaction{
		ExternalID:          p.id,
		SourceSystem:        unified.SourceMoka,
		BusinessID:          strconv.FormatInt(s.businessID, 10),
		OutletID:            strconv.FormatInt(o.id, 10),
		ReceiptNo:           p.no,
		Status:              unified.StatusCompleted,
		Currency:            "IDR",
		Amount:              dec(a.total),
		Subtotal:            dec(a.net),
		TaxAmount:           dec(a.tax),
		ServiceChargeAmount: dec(a.gratuity),
		DiscountAmount:      dec(a.discount),
		RefundAmount:        dec(decimal.Zero),
		PaymentMethod:       paymentTypes[p.payType].name,
		Timestamp:           p.createdAt,
		BusinessDate:        p.createdAt.Format(unified.BusinessDateLayout),
		Items:               []unified.Item{},
	}
	if t.PaymentMethod == "" {
		t.PaymentMethod = "unknown"
	}
	t.RefundAmount = dec(st.refundAmount)
	switch {
	case st.voided:
		t.Status = unified.StatusVoid
	case st.partial:
		t.Status = unified.StatusPartiallyRefunded
	case st.refunded:
		t.Status = unified.StatusRefunded
	}
	for i, l := range p.lines {
		if l.deleted {
			continue
		}
		it := library[l.item]
		v := it.variants[l.variant]
		item := unified.Item{
			Name:           it.name,
			Variant:        v.name,
			Quantity:       dec(l.qty),
			UnitPrice:      dec(d(v.price)),
			Total:          dec(l.qty.Mul(d(v.price))),
			DiscountAmount: dec(a.lineDisc[i]),
			Modifiers:      []unified.Modifier{},
			ItemID:         strconv.FormatInt(itemID(p.outlet, l.item), 10),
			VariantID:      strconv.FormatInt(variantID(p.outlet, l.item, l.variant), 10),
			Category:       it.category,
		}
		if it.weighed || l.item%3 == 0 {
			item.SKU = skuOf(l.item, l.variant)
		}
		for _, m := range l.mods {
			opt := modGroups[m[0]].options[m[1]]
			item.Modifiers = append(item.Modifiers, unified.Modifier{Name: opt.name, Price: dec(d(opt.price))})
		}
		t.Items = append(t.Items, item)
	}
	return t
}

// renderItem writes library item m of outlet oi as /v1/outlets/{id}/items
// shows it.
func (s *Server) renderItem(b []byte, oi, m int) []byte {
	it := library[m]
	w := &jw{b: b, dotZero: m%2 == 0}
	w.open('{')
	w.int("id", itemID(oi, m))
	w.str("name", it.name)
	w.str("description", "")
	w.boolean("is_deleted", false)
	w.key("category")
	w.open('{')
	w.int("id", categoryID(it.category))
	w.str("name", it.category)
	w.close('}')
	w.key("item_variants")
	w.open('[')
	for v, vd := range it.variants {
		w.open('{')
		w.int("id", variantID(oi, m, v))
		w.str("name", vd.name)
		w.str("sku", skuOf(m, v))
		w.num("price", d(vd.price))
		w.int("in_stock", int64(10+m))
		w.boolean("track_stock", it.weighed)
		w.close('}')
	}
	w.close(']')
	w.key("active_modifiers")
	w.open('[')
	for _, g := range it.modGroups {
		w.open('{')
		w.int("id", modGroupID(oi, g))
		w.str("name", modGroups[g].name)
		w.key("modifier_options")
		w.open('[')
		for o, od := range modGroups[g].options {
			w.open('{')
			w.int("id", optionID(oi, g, o))
			w.str("name", od.name)
			w.num("price", d(od.price))
			w.close('}')
		}
		w.close(']')
		w.close('}')
	}
	w.close(']')
	w.close('}')
	return w.b
}

// expectedProducts is the catalogue as product records: one per variant,
// one per modifier option of each outlet.
func (s *Server) expectedProducts() []unified.Product {
	var out []unified.Product
	biz := strconv.FormatInt(s.businessID, 10)
	for oi, o := range s.outlets {
		seen := map[int64]bool{}
		for _, m := range o.items {
			it := library[m]
			for v, vd := range it.variants {
				name := it.name
				if vd.name != "" {
					name += " (" + vd.name + ")"
				}
				out = append(out, unified.Product{
					ExternalID: strconv.FormatInt(variantID(oi, m, v), 10), SourceSystem: unified.SourceMoka,
					BusinessID: biz, OutletID: strconv.FormatInt(o.id, 10), Name: name, Category: it.category,
					SKU: skuOf(m, v), Currency: "IDR", Price: unified.NewDecimal(d(vd.price)),
					ItemID: strconv.FormatInt(itemID(oi, m), 10), VariantID: strconv.FormatInt(variantID(oi, m, v), 10),
					Variant: vd.name,
				})
			}
			for _, g := range it.modGroups {
				for opt, od := range modGroups[g].options {
					id := optionID(oi, g, opt)
					if seen[id] {
						continue
					}
					seen[id] = true
					out = append(out, unified.Product{
						ExternalID: "modifier_option-" + strconv.FormatInt(id, 10), SourceSystem: unified.SourceMoka,
						BusinessID: biz, OutletID: strconv.FormatInt(o.id, 10), Name: od.name, Category: modGroups[g].name,
						Currency: "IDR", Price: unified.NewDecimal(d(od.price)),
					})
				}
			}
		}
	}
	return out
}
