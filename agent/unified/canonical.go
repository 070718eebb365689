package unified

import (
	"github.com/pwbi/edge-agent/internal/jsonstr"

	"errors"
	"time"
)

// ErrBadTimestamp is returned by Canonical for a timestamp that RFC 3339
// cannot express: a year outside 0000–9999 or a UTC offset of a day or more.
var ErrBadTimestamp = errors.New("timestamp not expressible in rfc 3339")

// Canonical returns the deterministic JSON encoding of t: fields in
// declaration order, decimals in canonical form, nil slices as [], strings
// escaped exactly as encoding/json escapes them, the timestamp as RFC 3339
// (fractional seconds only when present) with t.Timestamp's own offset, and
// no insignificant whitespace. It is hand-written because it runs for every
// fetched transaction and encoding/json is several times slower.
func (t Transaction) Canonical() ([]byte, error) {
	return t.AppendCanonical(make([]byte, 0, 512+256*len(t.Items)))
}

// AppendCanonical appends the canonical encoding of t to b.
func (t Transaction) AppendCanonical(b []byte) ([]byte, error) {
	if y := t.Timestamp.Year(); y < 0 || y > 9999 {
		return b, ErrBadTimestamp
	}
	if _, off := t.Timestamp.Zone(); off <= -24*3600 || off >= 24*3600 {
		return b, ErrBadTimestamp
	}
	b = append(b, `{"external_id":`...)
	b = jsonstr.Append(b, t.ExternalID)
	b = append(b, `,"source_system":`...)
	b = jsonstr.Append(b, t.SourceSystem)
	b = append(b, `,"business_id":`...)
	b = jsonstr.Append(b, t.BusinessID)
	b = append(b, `,"outlet_id":`...)
	b = jsonstr.Append(b, t.OutletID)
	b = append(b, `,"receipt_no":`...)
	b = jsonstr.Append(b, t.ReceiptNo)
	b = append(b, `,"status":`...)
	b = jsonstr.Append(b, string(t.Status))
	b = append(b, `,"currency":`...)
	b = jsonstr.Append(b, t.Currency)
	b = append(b, `,"amount":`...)
	b = appendDecimal(b, t.Amount)
	b = append(b, `,"subtotal":`...)
	b = appendDecimal(b, t.Subtotal)
	b = append(b, `,"tax_amount":`...)
	b = appendDecimal(b, t.TaxAmount)
	b = append(b, `,"service_charge_amount":`...)
	b = appendDecimal(b, t.ServiceChargeAmount)
	b = append(b, `,"discount_amount":`...)
	b = appendDecimal(b, t.DiscountAmount)
	b = append(b, `,"refund_amount":`...)
	b = appendDecimal(b, t.RefundAmount)
	b = append(b, `,"payment_method":`...)
	b = jsonstr.Append(b, t.PaymentMethod)
	b = append(b, `,"timestamp":"`...)
	b = t.Timestamp.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","business_date":`...)
	b = jsonstr.Append(b, t.BusinessDate)
	b = append(b, `,"items":[`...)
	for i, it := range t.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = it.appendCanonical(b)
	}
	b = append(b, "]}"...)
	return b, nil
}

func (it Item) appendCanonical(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = jsonstr.Append(b, it.Name)
	b = append(b, `,"variant":`...)
	b = jsonstr.Append(b, it.Variant)
	b = append(b, `,"sku":`...)
	b = jsonstr.Append(b, it.SKU)
	b = append(b, `,"quantity":`...)
	b = appendDecimal(b, it.Quantity)
	b = append(b, `,"unit_price":`...)
	b = appendDecimal(b, it.UnitPrice)
	b = append(b, `,"total":`...)
	b = appendDecimal(b, it.Total)
	b = append(b, `,"discount_amount":`...)
	b = appendDecimal(b, it.DiscountAmount)
	b = append(b, `,"modifiers":[`...)
	for i, m := range it.Modifiers {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = jsonstr.Append(b, m.Name)
		b = append(b, `,"price":`...)
		b = appendDecimal(b, m.Price)
		b = append(b, '}')
	}
	b = append(b, `],"item_id":`...)
	b = jsonstr.Append(b, it.ItemID)
	b = append(b, `,"variant_id":`...)
	b = jsonstr.Append(b, it.VariantID)
	b = append(b, `,"category":`...)
	b = jsonstr.Append(b, it.Category)
	return append(b, '}')
}

// Canonical returns the deterministic JSON encoding of p (see
// [Transaction.Canonical]).
func (p Product) Canonical() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"external_id":`...)
	b = jsonstr.Append(b, p.ExternalID)
	b = append(b, `,"source_system":`...)
	b = jsonstr.Append(b, p.SourceSystem)
	b = append(b, `,"business_id":`...)
	b = jsonstr.Append(b, p.BusinessID)
	b = append(b, `,"outlet_id":`...)
	b = jsonstr.Append(b, p.OutletID)
	b = append(b, `,"name":`...)
	b = jsonstr.Append(b, p.Name)
	b = append(b, `,"category":`...)
	b = jsonstr.Append(b, p.Category)
	b = append(b, `,"sku":`...)
	b = jsonstr.Append(b, p.SKU)
	b = append(b, `,"currency":`...)
	b = jsonstr.Append(b, p.Currency)
	b = append(b, `,"price":`...)
	b = appendDecimal(b, p.Price)
	b = append(b, `,"item_id":`...)
	b = jsonstr.Append(b, p.ItemID)
	b = append(b, `,"variant_id":`...)
	b = jsonstr.Append(b, p.VariantID)
	b = append(b, `,"variant":`...)
	b = jsonstr.Append(b, p.Variant)
	return append(b, '}'), nil
}

func appendDecimal(b []byte, d Decimal) []byte {
	b = append(b, '"')
	b = d.appendCanonical(b)
	return append(b, '"')
}
