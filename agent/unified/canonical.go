package unified

import (
	"errors"
	"time"
	"unicode/utf8"
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
	b = appendString(b, t.ExternalID)
	b = append(b, `,"source_system":`...)
	b = appendString(b, t.SourceSystem)
	b = append(b, `,"business_id":`...)
	b = appendString(b, t.BusinessID)
	b = append(b, `,"outlet_id":`...)
	b = appendString(b, t.OutletID)
	b = append(b, `,"receipt_no":`...)
	b = appendString(b, t.ReceiptNo)
	b = append(b, `,"status":`...)
	b = appendString(b, string(t.Status))
	b = append(b, `,"currency":`...)
	b = appendString(b, t.Currency)
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
	b = appendString(b, t.PaymentMethod)
	b = append(b, `,"timestamp":"`...)
	b = t.Timestamp.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","business_date":`...)
	b = appendString(b, t.BusinessDate)
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
	b = appendString(b, it.Name)
	b = append(b, `,"variant":`...)
	b = appendString(b, it.Variant)
	b = append(b, `,"sku":`...)
	b = appendString(b, it.SKU)
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
		b = appendString(b, m.Name)
		b = append(b, `,"price":`...)
		b = appendDecimal(b, m.Price)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// Canonical returns the deterministic JSON encoding of p (see
// [Transaction.Canonical]).
func (p Product) Canonical() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"external_id":`...)
	b = appendString(b, p.ExternalID)
	b = append(b, `,"source_system":`...)
	b = appendString(b, p.SourceSystem)
	b = append(b, `,"business_id":`...)
	b = appendString(b, p.BusinessID)
	b = append(b, `,"outlet_id":`...)
	b = appendString(b, p.OutletID)
	b = append(b, `,"name":`...)
	b = appendString(b, p.Name)
	b = append(b, `,"category":`...)
	b = appendString(b, p.Category)
	b = append(b, `,"sku":`...)
	b = appendString(b, p.SKU)
	b = append(b, `,"currency":`...)
	b = appendString(b, p.Currency)
	b = append(b, `,"price":`...)
	b = appendDecimal(b, p.Price)
	return append(b, '}'), nil
}

func appendDecimal(b []byte, d Decimal) []byte {
	b = append(b, '"')
	b = d.appendCanonical(b)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped exactly like
// encoding/json with HTML escaping on (its default): <, > and & as \u003c,
// \u003e, \u0026; invalid UTF-8 as \ufffd; U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
