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
//	                                "partially_refunded" when refund_type is "partial"
//	refund_amount (else Σ payment_refunds[].refund_amount; a full refund
//	                without one: amount) → refund_amount
//	payment_type                  → payment_method ("unknown" when empty)
//	created_at (ISO 8601, its own offset kept) → timestamp, business_date
//	checkouts[] (GoBiz: items[]), deleted lines skipped → items[]:
//	  item_name → name, item_variant_name → variant, sku, quantity,
//	  price (else item_price) → unit_price, total = quantity × unit_price,
//	  discount_amount (else Σ discounts[].discount_amount) → discount_amount,
//	  modifiers[{modifier_option_name (else modifier_name), price}]
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
	return mapPayment(&r, m)
}

// mapPayment maps a decoded payment (see MapPayment).
func mapPayment(r *rawPayment, m MapContext) (unified.Transaction, error) {
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

	id, err := wire.IDField(r.ID)
	if err != nil {
		return fail("", "id", err)
	}
	if id == "" {
		if id, err = wire.IDField(r.GUID); err != nil {
			return fail("", "guid", err)
		}
	}
	if id == "" {
		return fail("", "id", wire.ErrMissing)
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

	if t.Timestamp, err = timestamp(r.CreatedAt, m.Location); err != nil {
		return fail(id, "created_at", err)
	}
	t.BusinessDate = t.Timestamp.Format(unified.BusinessDateLayout)

	if err := mapStatus(&t, r); err != nil {
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

type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }

// mapStatus sets status and refund_amount.
func mapStatus(t *unified.Transaction, r *rawPayment) error {
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
	refundLines := make([][]byte, 0, len(r.Refunds))
	for i, rf := range r.Refunds {
		refundLines = append(refundLines, rf.Amount)
		if refundType == "" {
			if refundType, err = wire.TextField(rf.Type); err != nil {
				return &fieldError{"payment_refunds[" + strconv.Itoa(i) + "].refund_type", err}
			}
		}
	}
	if t.RefundAmount, err = amount(r.RefundAmount, nil, refundLines); err != nil {
		return &fieldError{"refund_amount", err}
	}
	refunded = refunded || !t.RefundAmount.IsZero() || len(r.Refunds) > 0
	partial := strings.EqualFold(strings.TrimSpace(refundType), "partial")
	switch {
	case voided:
		t.Status = unified.StatusVoid
	case refunded && partial:
		t.Status = unified.StatusPartiallyRefunded
	case refunded:
		t.Status = unified.StatusRefunded
		if t.RefundAmount.IsZero() {
			t.RefundAmount = t.Amount // a full refund that states no amount
		}
	}
	return nil
}

// mapCheckout maps one line; skip is true for a deleted line.
func mapCheckout(c *rawCheckout) (it unified.Item, skip bool, field string, err error) {
	del, err := boolField(c.IsDeleted)
	if err != nil {
		return it, false, "is_deleted", err
	}
	if del {
		return it, true, "", nil
	}
	if it.Name, err = wire.TextField(c.ItemName); err != nil {
		return it, false, "item_name", err
	}
	if it.Variant, err = wire.TextField(c.VariantName); err != nil {
		return it, false, "item_variant_name", err
	}
	if it.SKU, err = wire.IDField(c.SKU); err != nil {
		return it, false, "sku", err
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
		if mod.Name, err = wire.TextField(md.OptionName); err != nil {
			return it, false, f + "modifier_option_name", err
		}
		if mod.Name == "" {
			if mod.Name, err = wire.TextField(md.Name); err != nil {
				return it, false, f + "modifier_name", err
			}
		}
		if mod.Price, _, err = decimalField(md.Price); err != nil {
			return it, false, f + "price", err
		}
		it.Modifiers = append(it.Modifiers, mod)
	}
	return it, false, "", nil
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
