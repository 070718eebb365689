package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
	"github.com/pwbi/edge-agent/agent/unified"
)

// Bounds of accepted input.
const (
	maxNumberLen = 40 // characters of a number, exponent included
	maxExponent  = 30 // |exponent| of a number in scientific notation
	minYear      = 1970
	maxYear      = 9998
)

// Layouts of created_at without an offset (then moka.timezone applies).
var localLayouts = [...]string{
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
}

// MapPayment maps one payment of get_latest_transactions (an element of
// data.payments) to the unified transaction.
//
//	id (else guid)                → external_id (required; string or number)
//	outlet_id                     → outlet_id (else MapContext.DefaultOutletID)
//	payment_no                    → receipt_no
//	total_collected (v1: total_collected_amount) → amount (required)
//	taxes (else total_tax_amount, else Σ payment_taxes[].total)           → tax_amount
//	gratuities (else total_gratuity_amount, else Σ payment_gratuities[].total) → service_charge_amount
//	discounts (else total_discount_amount, else Σ payment_discounts[].discount_amount) → discount_amount
//	amount − tax − service charge → subtotal (net sales, as in SPEC §4)
//	is_deleted                    → status "void"
//	is_refunded / refund_amount / payment_refunds[] → "refunded", or
//	                                "partially_refunded" when a refund says
//	                                refund_type "partial" and the refunds
//	                                do not cover the amount
//	refund_amount, or Σ payment_refunds[].refund_amount when larger (a
//	                full refund without either: amount) → refund_amount
//	payment_type                  → payment_method ("unknown" when empty)
//	created_at (ISO 8601, its own offset kept; without it GoBiz's
//	  transaction_date date-time, else payment_date) → timestamp,
//	  business_date
//	checkouts[] (GoBiz: items[]), deleted lines skipped → items[]:
//	  item_name (GoBiz: name) → name, item_variant_name (GoBiz:
//	  variant_name) → variant, sku, quantity,
//	  price (else item_price) → unit_price, total = quantity × unit_price,
//	  discount_amount (else Σ discounts[].discount_amount) → discount_amount,
//	  modifiers[{modifier_option_name (GoBiz: option_name; else
//	  modifier_name), price}], item_id → item_id, item_variant_id (GoBiz:
//	  variant_id) → variant_id, category_name (else a category string) →
//	  category
//
// A payment with a parent_payment_id (other than its own id) is not a
// sale but a refund of its parent: MapPayment refuses it with a *MapError
// whose Field is "parent_payment_id"; the Connector applies such rows to
// their parent instead (see Connector and MapRefund).
//
// Money arrives as JSON numbers (fractions, sometimes "150000.0", rarely
// scientific notation) or strings; every value is read from its text into
// an exact decimal, never through float64. Tax, service, discount and
// refund amounts are reported as magnitudes: Moka writes discount lines
// (and, in some samples, tax lines) as negative numbers. A bad record gives
// a *MapError.
func MapPayment(raw json.RawMessage, m MapContext) (unified.Transaction, error) {
	if m.BusinessID == "" {
		return unified.Transaction{}, ErrNoBusinessID
	}
	var r rawPayment
	if err := decodePayment(raw, &r); err != nil {
		reason := err.Error()
		if errors.Is(err, errNotObject) {
			reason = "not a JSON object"
		}
		return unified.Transaction{}, &MapError{Kind: "transaction", Reason: reason}
	}
	return mapPayment(&r, m, nil)
}

// mapPayment maps a decoded payment (see MapPayment) with the refunds known
// apart from it (refund rows that point at it), which count once each with
// the refunds it lists itself.
func mapPayment(r *rawPayment, m MapContext, extra []Refund) (unified.Transaction, error) {
	if m.BusinessID == "" {
		return unified.Transaction{}, ErrNoBusinessID
	}
	if r.notObject {
		return unified.Transaction{}, &MapError{Kind: "transaction", Reason: "not a JSON object"}
	}
	outlet, outletErr := wire.IDField(r.OutletID)
	fail := func(id, field string, err error) (unified.Transaction, error) {
		return unified.Transaction{}, &MapError{Kind: "transaction", ID: id, OutletID: outlet, Field: field, Reason: err.Error()}
	}

	id, err := paymentID(r)
	if err != nil {
		return fail("", "id", err)
	}
	if id == "" {
		return fail("", "id", wire.ErrMissing)
	}
	if parent, err := parentID(r, id); err != nil {
		return fail(id, "parent_payment_id", err)
	} else if parent != "" {
		return fail(id, "parent_payment_id", fmt.Errorf("a refund of payment %s, not a sale", wire.QuoteShort(parent)))
	}
	t := unified.Transaction{
		ExternalID:   id,
		SourceSystem: unified.SourceMoka,
		BusinessID:   m.BusinessID,
		OutletID:     outlet,
		Status:       unified.StatusCompleted,
		Currency:     m.Currency,
		Items:        []unified.Item{},
	}
	if t.Currency == "" {
		t.Currency = "IDR"
	}
	if outletErr != nil {
		return fail(id, "outlet_id", outletErr)
	}
	if t.OutletID == "" {
		t.OutletID = m.DefaultOutletID
	}
	if t.OutletID == "" {
		return fail(id, "outlet_id", wire.ErrMissing)
	}
	if t.ReceiptNo, err = wire.IDField(r.PaymentNo); err != nil {
		return fail(id, "payment_no", err)
	}

	var ok bool
	if t.Amount, ok, err = firstNumber(&r.TotalCollected, &r.TotalCollectedAmount); err != nil {
		return fail(id, "total_collected", err)
	} else if !ok {
		return fail(id, "total_collected", wire.ErrMissing)
	}
	if t.TaxAmount, err = amount(r.Taxes, r.TotalTaxAmount, r.TaxTotals); err != nil {
		return fail(id, "taxes", err)
	}
	if t.ServiceChargeAmount, err = amount(r.Gratuities, r.TotalGratuityAmount, r.GratuityTotals); err != nil {
		return fail(id, "gratuities", err)
	}
	discountLines := make([][]byte, 0, len(r.DiscountLines))
	for i, d := range r.DiscountLines {
		del, err := boolField(d.IsDeleted)
		if err != nil {
			return fail(id, "payment_discounts["+strconv.Itoa(i)+"].is_deleted", err)
		}
		if !del {
			discountLines = append(discountLines, d.Amount)
		}
	}
	if t.DiscountAmount, err = amount(r.Discounts, r.TotalDiscountAmount, discountLines); err != nil {
		return fail(id, "discounts", err)
	}
	t.Subtotal = t.Amount.Sub(t.TaxAmount).Sub(t.ServiceChargeAmount)

	if t.PaymentMethod, err = wire.TextField(r.PaymentType); err != nil {
		return fail(id, "payment_type", err)
	}
	if t.PaymentMethod = strings.TrimSpace(t.PaymentMethod); t.PaymentMethod == "" {
		t.PaymentMethod = "unknown"
	}

	field, when := paymentTime(r)
	if t.Timestamp, err = when(m.Location); err != nil {
		return fail(id, field, err)
	}
	t.BusinessDate = t.Timestamp.Format(unified.BusinessDateLayout)

	if err := mapStatus(&t, r, extra); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return fail(id, fe.field, fe.err)
		}
		return fail(id, "refund_amount", err)
	}

	if r.shape != nil {
		return fail(id, r.shape.field, errors.New(r.shape.reason))
	}
	lines := "checkouts"
	if !r.sawCheckouts {
		lines = "items"
	}
	t.Items = make([]unified.Item, 0, len(r.Checkouts))
	for i := range r.Checkouts {
		it, skip, field, err := mapCheckout(&r.Checkouts[i])
		if err != nil {
			return fail(id, lines+"["+strconv.Itoa(i)+"]."+field, err)
		}
		if !skip {
			t.Items = append(t.Items, it)
		}
	}
	return t, nil
}

// paymentID is the payment's id, else its guid ("" when neither).
func paymentID(r *rawPayment) (string, error) {
	id, err := wire.IDField(r.ID)
	if err != nil || id != "" {
		return id, err
	}
	if id, err = wire.IDField(r.GUID); err != nil {
		return "", fmt.Errorf("guid: %w", err)
	}
	return id, nil
}

// parentID is the payment's parent_payment_id: "" for a sale (absent,
// null, empty or the payment's own id).
func parentID(r *rawPayment, id string) (string, error) {
	p, err := wire.IDField(r.ParentPaymentID)
	if err != nil || p == id {
		return "", err
	}
	return p, nil
}

// paymentTime says which field gives the payment's time and parses it:
// created_at; without it, a transaction_date that is a whole date-time
// (GoBiz's payment date, "2020-08-03T15:30:50.748+07:00"), else
// payment_date. A bare v3 transaction_date ("2018-01-27", with the time of
// day apart in transaction_time) is never used: its zone would be a guess.
// The first present field is the payment's time; a bad value is a bad
// record.
func paymentTime(r *rawPayment) (field string, parse func(*time.Location) (time.Time, error)) {
	raw, field := r.CreatedAt, "created_at"
	switch {
	case !wire.IsNull(r.CreatedAt):
	case !wire.IsNull(r.TransactionDate) && !isDateOnly(r.TransactionDate):
		raw, field = r.TransactionDate, "transaction_date"
	case !wire.IsNull(r.PaymentDate):
		raw, field = r.PaymentDate, "payment_date"
	}
	return field, func(loc *time.Location) (time.Time, error) { return timestamp(raw, loc) }
}

// isDateOnly reports whether a raw JSON string holds a bare date
// ("2018-01-27").
func isDateOnly(raw []byte) bool {
	s, err := wire.DateTimeText(raw)
	return err == nil && len(s) == len(time.DateOnly)
}

type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }

// Refund is one refund of a sale: an entry of the sale's own
// payment_refunds[], or a payment row of its own that points at the sale
// with parent_payment_id (see MapRefund).
type Refund struct {
	ID      string          // the refund's payment id; "" when unknown
	Amount  unified.Decimal // a magnitude
	Partial bool            // refund_type "partial"
	Voided  bool            // the refund itself was deleted: it counts for nothing
	At      time.Time       // when it was made; zero when unknown
}

// mapStatus sets status and refund_amount. The refunds are the union of
// the payment's own payment_refunds[] and extra (refund rows of their own),
// each counted once by id: a refund row that the payment also lists is
// not added again. refund_amount is that union's sum, or the payment's own
// refund_amount when larger (Moka's total of the refunds it knows).
func mapStatus(t *unified.Transaction, r *rawPayment, extra []Refund) error {
	voided, err := boolField(r.IsDeleted)
	if err != nil {
		return &fieldError{"is_deleted", err}
	}
	refunded, err := boolField(r.IsRefunded)
	if err != nil {
		return &fieldError{"is_refunded", err}
	}
	refundType, err := wire.TextField(r.RefundType)
	if err != nil {
		return &fieldError{"refund_type", err}
	}
	partial := isPartial(refundType)
	listed := make(map[string]bool, len(r.Refunds))
	var sum unified.Decimal
	counted := 0
	for i, rf := range r.Refunds {
		f := "payment_refunds[" + strconv.Itoa(i) + "]."
		id, err := wire.IDField(rf.ID)
		if err != nil {
			return &fieldError{f + "id", err}
		}
		if id != "" {
			listed[id] = true
		}
		del, err := boolField(rf.IsDeleted)
		if err != nil {
			return &fieldError{f + "is_deleted", err}
		}
		v, _, err := decimalField(rf.Amount)
		if err != nil {
			return &fieldError{f + "refund_amount", err}
		}
		typ, err := wire.TextField(rf.Type)
		if err != nil {
			return &fieldError{f + "refund_type", err}
		}
		if del {
			continue
		}
		sum = sum.Add(magnitude(v))
		partial = partial || isPartial(typ)
		counted++
	}
	for _, rf := range extra {
		if rf.Voided || (rf.ID != "" && listed[rf.ID]) {
			continue
		}
		sum = sum.Add(magnitude(rf.Amount))
		partial = partial || rf.Partial
		counted++
	}
	top, err := amount(r.RefundAmount, nil, nil)
	if err != nil {
		return &fieldError{"refund_amount", err}
	}
	t.RefundAmount = sum
	if top.Cmp(sum) > 0 {
		t.RefundAmount = top
	}
	refunded = refunded || !t.RefundAmount.IsZero() || counted > 0
	switch {
	case voided:
		t.Status = unified.StatusVoid
	case refunded && partial && t.RefundAmount.Cmp(t.Amount) < 0:
		t.Status = unified.StatusPartiallyRefunded
	case refunded:
		t.Status = unified.StatusRefunded
		if t.RefundAmount.IsZero() {
			t.RefundAmount = t.Amount // a full refund that states no amount
		}
	}
	return nil
}

func isPartial(refundType string) bool {
	return strings.EqualFold(strings.TrimSpace(refundType), "partial")
}

func magnitude(d unified.Decimal) unified.Decimal {
	if d.Sign() < 0 {
		return unified.NewDecimal(d.Dec().Neg())
	}
	return d
}

// MapRefund reads a refund row: a payment whose parent_payment_id names
// another payment (the sale it refunds). ok is false for a sale (no
// parent). The refund's amount is its refund_amount, else the sum of its
// payment_refunds[], else its total_collected (v1: total_collected_amount),
// as a magnitude; Partial is refund_type "partial" (its own or a listed
// one's); Voided is is_deleted; At is its time (zero when unreadable: it
// is not needed to apply the refund). A row whose id, parent or amount
// cannot be read gives a *MapError of kind "transaction".
func MapRefund(raw json.RawMessage) (parent string, rf Refund, ok bool, err error) {
	var r rawPayment
	if err := decodePayment(raw, &r); err != nil {
		return "", Refund{}, false, &MapError{Kind: "transaction", Reason: err.Error()}
	}
	return mapRefund(&r)
}

func mapRefund(r *rawPayment) (parent string, rf Refund, ok bool, err error) {
	if r.notObject {
		return "", Refund{}, false, nil // a sale's problem: mapPayment reports it
	}
	outlet, _ := wire.IDField(r.OutletID)
	id, idErr := paymentID(r)
	fail := func(field string, err error) (string, Refund, bool, error) {
		return "", Refund{}, false, &MapError{Kind: "transaction", ID: id, OutletID: outlet, Field: field, Reason: err.Error()}
	}
	if idErr != nil {
		return "", Refund{}, false, nil // not recognisable as a refund row: mapped (and refused) as a sale
	}
	if parent, err = parentID(r, id); err != nil || parent == "" {
		return "", Refund{}, false, nil
	}
	if id == "" {
		return fail("id", wire.ErrMissing)
	}
	rf.ID = id
	if rf.Voided, err = boolField(r.IsDeleted); err != nil {
		return fail("is_deleted", err)
	}
	typ, err := wire.TextField(r.RefundType)
	if err != nil {
		return fail("refund_type", err)
	}
	rf.Partial = isPartial(typ)
	direct, ok, err := firstNumber(&r.RefundAmount)
	if err != nil {
		return fail("refund_amount", err)
	}
	rf.Amount = magnitude(direct)
	var listed unified.Decimal
	for i, x := range r.Refunds {
		v, _, err := decimalField(x.Amount)
		if err != nil {
			return fail("payment_refunds["+strconv.Itoa(i)+"].refund_amount", err)
		}
		t, err := wire.TextField(x.Type)
		if err != nil {
			return fail("payment_refunds["+strconv.Itoa(i)+"].refund_type", err)
		}
		listed = listed.Add(magnitude(v))
		rf.Partial = rf.Partial || isPartial(t)
	}
	if !ok || rf.Amount.IsZero() {
		rf.Amount = listed
	}
	if rf.Amount.IsZero() {
		total, ok, err := firstNumber(&r.TotalCollected, &r.TotalCollectedAmount)
		if err != nil {
			return fail("total_collected", err)
		}
		if ok {
			rf.Amount = magnitude(total)
		}
	}
	if _, when := paymentTime(r); when != nil {
		if at, err := when(time.UTC); err == nil {
			rf.At = at
		}
	}
	return parent, rf, true, nil
}

// mapCheckout maps one line; skip is true for a deleted line. The v3
// names win over GoBiz's when a line has both.
func mapCheckout(c *rawCheckout) (it unified.Item, skip bool, field string, err error) {
	del, err := boolField(c.IsDeleted)
	if err != nil {
		return it, false, "is_deleted", err
	}
	if del {
		return it, true, "", nil
	}
	if it.Name, field, err = firstText(named{c.ItemName, "item_name"}, named{c.Name, "name"}); err != nil {
		return it, false, field, err
	}
	if it.Variant, field, err = firstText(named{c.VariantName, "item_variant_name"}, named{c.GoVariantName, "variant_name"}); err != nil {
		return it, false, field, err
	}
	if it.SKU, err = wire.IDField(c.SKU); err != nil {
		return it, false, "sku", err
	}
	if it.ItemID, err = wire.IDField(c.ItemID); err != nil {
		return it, false, "item_id", err
	}
	if it.VariantID, err = wire.IDField(c.VariantID); err != nil {
		return it, false, "item_variant_id", err
	}
	if it.VariantID == "" {
		if it.VariantID, err = wire.IDField(c.GoVariantID); err != nil {
			return it, false, "variant_id", err
		}
	}
	if it.Category, err = wire.TextField(c.CategoryName); err != nil {
		return it, false, "category_name", err
	}
	if it.Category == "" && len(c.Category) > 0 && c.Category[0] == '"' {
		if it.Category, err = wire.TextField(c.Category); err != nil {
			return it, false, "category", err
		}
	}
	var ok bool
	if it.Quantity, ok, err = decimalField(c.Quantity); err != nil {
		return it, false, "quantity", err
	} else if !ok {
		return it, false, "quantity", wire.ErrMissing
	}
	if it.UnitPrice, ok, err = firstNumber(&c.Price, &c.ItemPrice); err != nil {
		return it, false, "price", err
	} else if !ok {
		return it, false, "price", wire.ErrMissing
	}
	it.Total = it.Quantity.Mul(it.UnitPrice)
	var direct []byte
	if c.sawDiscountAmount {
		direct = c.DiscountAmount
	}
	if it.DiscountAmount, err = amount(direct, nil, c.Discounts); err != nil {
		return it, false, "discount_amount", err
	}
	it.Modifiers = make([]unified.Modifier, 0, len(c.Modifiers))
	for j := range c.Modifiers {
		md := &c.Modifiers[j]
		f := "modifiers[" + strconv.Itoa(j) + "]."
		var mod unified.Modifier
		if mod.Name, field, err = firstText(named{md.OptionName, "modifier_option_name"}, named{md.GoOptionName, "option_name"},
			named{md.Name, "modifier_name"}); err != nil {
			return it, false, f + field, err
		}
		if mod.Price, _, err = decimalField(md.Price); err != nil {
			return it, false, f + "price", err
		}
		it.Modifiers = append(it.Modifiers, mod)
	}
	return it, false, "", nil
}

// named is a raw field with its JSON name, for firstText.
type named struct {
	raw  []byte
	name string
}

// firstText reads the first non-empty text of fields; field names the one
// that failed.
func firstText(fields ...named) (text, field string, err error) {
	for _, f := range fields {
		if text, err = wire.TextField(f.raw); err != nil {
			return "", f.name, err
		}
		if text != "" {
			return text, "", nil
		}
	}
	return "", "", nil
}

// firstNumber reads the first present of the fields.
func firstNumber(fields ...*[]byte) (unified.Decimal, bool, error) {
	for _, f := range fields {
		if wire.IsNull(*f) {
			continue
		}
		return decimalField(*f)
	}
	return unified.Decimal{}, false, nil
}

// amount is the magnitude of the first present of direct and fallback,
// else the sum of the lines' magnitudes (absent lines count 0). Absent
// everywhere: 0.
func amount(direct, fallback []byte, lines [][]byte) (unified.Decimal, error) {
	d, ok, err := firstNumber(&direct, &fallback)
	if err != nil {
		return d, err
	}
	if !ok {
		var sum unified.Decimal
		for i, l := range lines {
			v, _, err := decimalField(l)
			if err != nil {
				return d, fmt.Errorf("line %d: %w", i, err)
			}
			if v.Sign() < 0 {
				v = unified.NewDecimal(v.Dec().Neg())
			}
			sum = sum.Add(v)
		}
		d = sum
	}
	if d.Sign() < 0 {
		d = unified.NewDecimal(d.Dec().Neg())
	}
	return d, nil
}

// decimalField reads a decimal: a JSON number or a string holding one. The
// plain grammar goes through the shared reader (wire.DecimalField); scientific
// notation ("1.0e-05", which Ruby writes for small floats) is accepted with
// a bounded exponent and converted exactly.
func decimalField(raw []byte) (unified.Decimal, bool, error) {
	d, ok, err := wire.DecimalField(raw)
	if err == nil || !hasExponent(raw) {
		return d, ok, err
	}
	text := raw
	if len(raw) >= 2 && raw[0] == '"' {
		s, serr := wire.JSONString(raw)
		if serr != nil {
			return d, false, err
		}
		text = []byte(strings.TrimSpace(s))
	}
	v, perr := parseScientific(string(text))
	if perr != nil {
		return d, false, err
	}
	return v, true, nil
}

func hasExponent(raw []byte) bool {
	for _, c := range raw {
		if c == 'e' || c == 'E' {
			return true
		}
	}
	return false
}

// parseScientific parses [-]digits[.digits](e|E)[+|-]digits exactly.
func parseScientific(s string) (unified.Decimal, error) {
	bad := fmt.Errorf("bad number %s", wire.QuoteShort(s))
	if len(s) > maxNumberLen {
		return unified.Decimal{}, bad
	}
	i := strings.IndexAny(s, "eE")
	if i <= 0 {
		return unified.Decimal{}, bad
	}
	if err := unified.CheckDecimalText(s[:i], maxNumberLen); err != nil {
		return unified.Decimal{}, bad
	}
	exp, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
	if err != nil || exp > maxExponent || exp < -maxExponent || strings.HasPrefix(s[i+1:], "+-") {
		return unified.Decimal{}, bad
	}
	mant, err := decimal.NewFromString(s[:i])
	if err != nil {
		return unified.Decimal{}, bad
	}
	return unified.NewDecimal(mant.Shift(int32(exp))), nil
}

// timestamp reads created_at: ISO 8601 with an offset (kept as the
// timestamp's zone: the outlet's own), or without one (then in loc).
func timestamp(raw []byte, loc *time.Location) (time.Time, error) {
	s, err := wire.DateTimeText(raw)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if loc == nil {
			loc = time.UTC
		}
		parsed := false
		for _, layout := range localLayouts {
			if t, err = time.ParseInLocation(layout, s, loc); err == nil {
				parsed = true
				break
			}
		}
		if !parsed {
			return time.Time{}, fmt.Errorf("bad date-time %s, want ISO 8601 like \"2018-01-27T20:40:14.872+07:00\"", wire.QuoteShort(s))
		}
	}
	if y := t.Year(); y < minYear || y > maxYear {
		return time.Time{}, fmt.Errorf("year %d outside %d-%d", y, minYear, maxYear)
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return time.Time{}, errors.New("offset of a day or more")
	}
	return t, nil
}
