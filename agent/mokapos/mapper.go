package mokapos

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/unified"
)

// maxNumberLen bounds a numeric field of a Moka record (characters, sign and
// point included). 32 is far beyond any real rupiah amount; longer input is
// rejected rather than fed to big-number arithmetic.
const maxNumberLen = 32

// maxCreatedAtLen bounds the created_at text.
const maxCreatedAtLen = 64

// Accepted created_at years, in the outlet's zone. A year outside this range
// is a broken POS clock (or input that RFC 3339 cannot carry after the zone
// shift), not a sale.
const (
	minYear = 1970
	maxYear = 9998
)

// createdAtLayouts are tried in order. Go accepts fractional seconds after
// the seconds field even though the layouts do not mention them.
var createdAtLayouts = [...]string{
	"2006-01-02 15:04:05", // the guide's format, outlet-local
	"2006-01-02T15:04:05", // ISO 8601 without an offset, outlet-local
}

// MapContext is what the mapper needs besides the record itself.
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
var ErrNoBusinessID = errors.New("mokapos: map context has no business id")

// MapError says why one Moka record could not be mapped. It means the record
// is bad (keep it aside with this reason); any other error from the mapper
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

// rawTxn is a Moka transaction as it arrives: each field is the raw JSON
// value (a sub-slice of the input; nil when absent), so that each can be
// read as a string or a number without float64.
type rawTxn struct {
	ID             []byte
	OutletID       []byte
	ReceiptNo      []byte
	PaymentNo      []byte
	GrandTotal     []byte
	Subtotal       []byte
	TaxAmount      []byte
	ServiceCharge  []byte
	DiscountAmount []byte
	PaymentType    []byte
	CreatedAt      []byte
	Items          []rawItem
	// shape is the first structural problem inside line_items (not an
	// array, an element not an object, …); reported once the id is known.
	shape *fieldProblem
}

type rawItem struct {
	ItemName       []byte
	VariantName    []byte
	SKU            []byte
	Quantity       []byte
	Price          []byte
	DiscountAmount []byte
	Modifiers      []rawModifier
}

type rawModifier struct {
	Name  []byte
	Price []byte
}

type rawProduct struct {
	ID       []byte
	Name     []byte
	Price    []byte
	Category []byte
	OutletID []byte
	SKU      []byte
}

type fieldProblem struct{ field, reason string }

var errNotObject = errors.New("not a JSON object")

// decodeTxn scans raw into r in one pass. Keys match exactly (unlike
// encoding/json, which also matches "ID" to "id"); a repeated key takes the
// last value, as in encoding/json. Unknown keys are skipped.
func decodeTxn(raw []byte, r *rawTxn) error {
	s := scanner{b: raw}
	if s.peek() != '{' {
		return errNotObject
	}
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			r.ID, err = s.value()
		case "outlet_id":
			r.OutletID, err = s.value()
		case "receipt_no":
			r.ReceiptNo, err = s.value()
		case "payment_no":
			r.PaymentNo, err = s.value()
		case "grand_total":
			r.GrandTotal, err = s.value()
		case "subtotal":
			r.Subtotal, err = s.value()
		case "tax_amount":
			r.TaxAmount, err = s.value()
		case "service_charge_amount":
			r.ServiceCharge, err = s.value()
		case "discount_amount":
			r.DiscountAmount, err = s.value()
		case "payment_type":
			r.PaymentType, err = s.value()
		case "created_at":
			r.CreatedAt, err = s.value()
		case "line_items":
			r.Items, r.shape = r.Items[:0], nil
			err = decodeItems(&s, r)
		default:
			_, err = s.value()
		}
		return err
	})
	if err != nil {
		return err
	}
	return s.end()
}

func decodeItems(s *scanner, r *rawTxn) error {
	problem := func(field, reason string) {
		if r.shape == nil {
			r.shape = &fieldProblem{field, reason}
		}
	}
	switch s.peek() {
	case '[':
	case 'n':
		_, err := s.value() // null: no items
		return err
	default:
		problem("line_items", "want an array")
		_, err := s.value()
		return err
	}
	return s.array(func(i int) error {
		if s.peek() != '{' {
			problem("line_items["+strconv.Itoa(i)+"]", "want an object")
			_, err := s.value()
			return err
		}
		r.Items = append(r.Items, rawItem{})
		it := &r.Items[len(r.Items)-1]
		return s.object(func(key []byte) error {
			var err error
			switch string(key) {
			case "item_name":
				it.ItemName, err = s.value()
			case "variant_name":
				it.VariantName, err = s.value()
			case "sku":
				it.SKU, err = s.value()
			case "quantity":
				it.Quantity, err = s.value()
			case "price":
				it.Price, err = s.value()
			case "discount_amount":
				it.DiscountAmount, err = s.value()
			case "modifiers":
				it.Modifiers = it.Modifiers[:0]
				err = decodeModifiers(s, it, func(field, reason string) {
					problem("line_items["+strconv.Itoa(i)+"]."+field, reason)
				})
			default:
				_, err = s.value()
			}
			return err
		})
	})
}

func decodeModifiers(s *scanner, it *rawItem, problem func(field, reason string)) error {
	switch s.peek() {
	case '[':
	case 'n':
		_, err := s.value()
		return err
	default:
		problem("modifiers", "want an array")
		_, err := s.value()
		return err
	}
	return s.array(func(j int) error {
		if s.peek() != '{' {
			problem("modifiers["+strconv.Itoa(j)+"]", "want an object")
			_, err := s.value()
			return err
		}
		var m rawModifier
		err := s.object(func(key []byte) error {
			var err error
			switch string(key) {
			case "name":
				m.Name, err = s.value()
			case "price":
				m.Price, err = s.value()
			default:
				_, err = s.value()
			}
			return err
		})
		it.Modifiers = append(it.Modifiers, m)
		return err
	})
}

func decodeProduct(raw []byte, r *rawProduct) error {
	s := scanner{b: raw}
	if s.peek() != '{' {
		return errNotObject
	}
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			r.ID, err = s.value()
		case "name":
			r.Name, err = s.value()
		case "price":
			r.Price, err = s.value()
		case "category":
			r.Category, err = s.value()
		case "outlet_id":
			r.OutletID, err = s.value()
		case "sku":
			r.SKU, err = s.value()
		default:
			_, err = s.value()
		}
		return err
	})
	if err != nil {
		return err
	}
	return s.end()
}

// decodeProblem is the MapError reason of a decodeTxn/decodeProduct error.
func decodeProblem(err error) string {
	if errors.Is(err, errNotObject) {
		return "not a JSON object"
	}
	return err.Error()
}

// MapTransaction maps one raw Moka transaction (an element of the data
// array of /v1/transactions) to the unified transaction.
//
// Mapping (see the package documentation for the reasons):
//
//	id                 → external_id (required; a JSON string or number)
//	outlet_id          → outlet_id (else MapContext.DefaultOutletID; one is required)
//	receipt_no, payment_no → receipt_no (first present; else "")
//	grand_total        → amount (required)
//	tax_amount         → tax_amount ("0" when absent)
//	service_charge_amount → service_charge_amount ("0" when absent)
//	discount_amount    → discount_amount ("0" when absent)
//	subtotal           → subtotal; when absent, amount − tax − service charge
//	payment_type       → payment_method ("unknown" when absent or empty)
//	created_at         → timestamp (RFC 3339 in Location) and business_date
//	line_items[]       → items[]: item_name → name, variant_name → variant,
//	                     sku, quantity, price → unit_price (both required),
//	                     total = quantity × unit_price exactly,
//	                     discount_amount, modifiers[{name, price}]
//
// status is always "completed" and refund_amount "0": the apikey dialect
// carries neither. Numbers may be JSON strings or numbers; they must be plain
// decimals (no exponent, NaN, Inf, "+", "," or spaces inside) of at most 32
// characters. A bad record gives a *MapError.
func MapTransaction(raw json.RawMessage, m MapContext) (unified.Transaction, error) {
	if m.BusinessID == "" {
		return unified.Transaction{}, ErrNoBusinessID
	}
	var r rawTxn
	if err := decodeTxn(raw, &r); err != nil {
		return unified.Transaction{}, &MapError{Kind: "transaction", Reason: decodeProblem(err)}
	}
	outlet, _ := idField(r.OutletID) // for the error's context only
	fail := func(id, field, reason string) (unified.Transaction, error) {
		return unified.Transaction{}, &MapError{Kind: "transaction", ID: id, OutletID: outlet, Field: field, Reason: reason}
	}

	id, err := idField(r.ID)
	if err != nil {
		return fail("", "id", err.Error())
	}
	if id == "" {
		return fail("", "id", "missing")
	}
	t := unified.Transaction{
		ExternalID:   id,
		SourceSystem: unified.SourceMoka,
		BusinessID:   m.BusinessID,
		Status:       unified.StatusCompleted,
		Currency:     m.Currency,
	}
	if t.Currency == "" {
		t.Currency = "IDR"
	}
	if t.OutletID, err = idField(r.OutletID); err != nil {
		return fail(id, "outlet_id", err.Error())
	}
	if t.OutletID == "" {
		t.OutletID = m.DefaultOutletID
	}
	if t.OutletID == "" {
		return fail(id, "outlet_id", "missing")
	}
	if t.ReceiptNo, err = idField(r.ReceiptNo); err != nil {
		return fail(id, "receipt_no", err.Error())
	}
	if t.ReceiptNo == "" {
		if t.ReceiptNo, err = idField(r.PaymentNo); err != nil {
			return fail(id, "payment_no", err.Error())
		}
	}

	var ok bool
	if t.Amount, ok, err = number(r.GrandTotal); err != nil {
		return fail(id, "grand_total", err.Error())
	} else if !ok {
		return fail(id, "grand_total", "missing")
	}
	if t.TaxAmount, _, err = number(r.TaxAmount); err != nil {
		return fail(id, "tax_amount", err.Error())
	}
	if t.ServiceChargeAmount, _, err = number(r.ServiceCharge); err != nil {
		return fail(id, "service_charge_amount", err.Error())
	}
	if t.DiscountAmount, _, err = number(r.DiscountAmount); err != nil {
		return fail(id, "discount_amount", err.Error())
	}
	if t.Subtotal, ok, err = number(r.Subtotal); err != nil {
		return fail(id, "subtotal", err.Error())
	} else if !ok {
		t.Subtotal = t.Amount.Sub(t.TaxAmount).Sub(t.ServiceChargeAmount)
	}

	if t.PaymentMethod, err = textField(r.PaymentType); err != nil {
		return fail(id, "payment_type", err.Error())
	}
	if t.PaymentMethod = strings.TrimSpace(t.PaymentMethod); t.PaymentMethod == "" {
		t.PaymentMethod = "unknown"
	}

	loc := m.Location
	if loc == nil {
		loc = time.UTC
	}
	if t.Timestamp, err = createdAt(r.CreatedAt, loc); err != nil {
		return fail(id, "created_at", err.Error())
	}
	t.BusinessDate = t.Timestamp.Format(unified.BusinessDateLayout)

	if r.shape != nil {
		return fail(id, r.shape.field, r.shape.reason)
	}
	t.Items = make([]unified.Item, 0, len(r.Items))
	for i := range r.Items {
		it, field, err := mapItem(&r.Items[i])
		if err != nil {
			return fail(id, "line_items["+strconv.Itoa(i)+"]."+field, err.Error())
		}
		t.Items = append(t.Items, it)
	}
	return t, nil
}

func mapItem(r *rawItem) (it unified.Item, field string, err error) {
	if it.Name, err = textField(r.ItemName); err != nil {
		return it, "item_name", err
	}
	if it.Variant, err = textField(r.VariantName); err != nil {
		return it, "variant_name", err
	}
	if it.SKU, err = idField(r.SKU); err != nil {
		return it, "sku", err
	}
	var ok bool
	if it.Quantity, ok, err = number(r.Quantity); err != nil {
		return it, "quantity", err
	} else if !ok {
		return it, "quantity", errMissing
	}
	if it.UnitPrice, ok, err = number(r.Price); err != nil {
		return it, "price", err
	} else if !ok {
		return it, "price", errMissing
	}
	it.Total = it.Quantity.Mul(it.UnitPrice)
	if it.DiscountAmount, _, err = number(r.DiscountAmount); err != nil {
		return it, "discount_amount", err
	}
	it.Modifiers = make([]unified.Modifier, 0, len(r.Modifiers))
	for j := range r.Modifiers {
		var mod unified.Modifier
		f := "modifiers[" + strconv.Itoa(j) + "]."
		if mod.Name, err = textField(r.Modifiers[j].Name); err != nil {
			return it, f + "name", err
		}
		if mod.Price, _, err = number(r.Modifiers[j].Price); err != nil {
			return it, f + "price", err
		}
		it.Modifiers = append(it.Modifiers, mod)
	}
	return it, "", nil
}

// MapProduct maps one raw Moka product (an element of the data array of
// /v1/products): id (required) → external_id, name, price ("0" when
// absent), category, sku, outlet_id (else MapContext.DefaultOutletID, else
// "" for a business-wide item).
func MapProduct(raw json.RawMessage, m MapContext) (unified.Product, error) {
	if m.BusinessID == "" {
		return unified.Product{}, ErrNoBusinessID
	}
	var r rawProduct
	if err := decodeProduct(raw, &r); err != nil {
		return unified.Product{}, &MapError{Kind: "product", Reason: decodeProblem(err)}
	}
	outlet, _ := idField(r.OutletID) // for the error's context only
	fail := func(id, field, reason string) (unified.Product, error) {
		return unified.Product{}, &MapError{Kind: "product", ID: id, OutletID: outlet, Field: field, Reason: reason}
	}
	id, err := idField(r.ID)
	if err != nil {
		return fail("", "id", err.Error())
	}
	if id == "" {
		return fail("", "id", "missing")
	}
	p := unified.Product{
		ExternalID:   id,
		SourceSystem: unified.SourceMoka,
		BusinessID:   m.BusinessID,
		Currency:     m.Currency,
	}
	if p.Currency == "" {
		p.Currency = "IDR"
	}
	if p.OutletID, err = idField(r.OutletID); err != nil {
		return fail(id, "outlet_id", err.Error())
	}
	if p.OutletID == "" {
		p.OutletID = m.DefaultOutletID
	}
	if p.Name, err = textField(r.Name); err != nil {
		return fail(id, "name", err.Error())
	}
	if p.Category, err = textField(r.Category); err != nil {
		return fail(id, "category", err.Error())
	}
	if p.SKU, err = idField(r.SKU); err != nil {
		return fail(id, "sku", err.Error())
	}
	if p.Price, _, err = number(r.Price); err != nil {
		return fail(id, "price", err.Error())
	}
	return p, nil
}

var (
	errMissing     = errors.New("missing")
	errWantString  = errors.New("want a string")
	errWantIDValue = errors.New("want a string or a number")
	errWantNumber  = errors.New("want a decimal number or a string holding one")
)

// jsonReason shortens a decoding error to something that fits a dead-letter
// reason without echoing the input.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "invalid JSON at byte " + strconv.FormatInt(se.Offset, 10)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return te.Field + ": unexpected JSON " + te.Value
		}
		return "unexpected JSON " + te.Value
	}
	return err.Error()
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw []byte) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// jsonString decodes a raw JSON string. The raw bytes were validated by the
// decoder that produced them; without escapes they are the string itself
// (invalid UTF-8 included, which the canonical encoder turns into U+FFFD
// exactly as encoding/json would).
func jsonString(raw []byte) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && !hasBackslash(raw) {
		return string(raw[1 : len(raw)-1]), nil
	}
	return unquote(raw)
}

// unquote decodes a JSON string literal with escapes.
func unquote(raw []byte) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errWantString
	}
	return s, nil
}

// textField reads an optional text field: a JSON string, or null/absent.
func textField(raw []byte) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	if raw[0] != '"' {
		return "", errWantString
	}
	return jsonString(raw)
}

// idField reads an optional identifier: a JSON string or a JSON number
// (kept as its literal text), or null/absent. Surrounding spaces are
// trimmed.
func idField(raw []byte) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	switch c := raw[0]; {
	case c == '"':
		s, err := jsonString(raw)
		return strings.TrimSpace(s), err
	case c == '-' || ('0' <= c && c <= '9'):
		return string(raw), nil
	}
	return "", errWantIDValue
}

// number reads an optional decimal field: a JSON string or JSON number in
// the plain grammar of unified.ParseDecimal, or null/absent (ok false, 0).
// The literal never goes through float64.
func number(raw []byte) (d unified.Decimal, ok bool, err error) {
	if isNull(raw) {
		return d, false, nil
	}
	text := raw
	switch c := raw[0]; {
	case c == '"':
		if hasBackslash(raw) { // escapes in a number: decode, then check
			s, err := unquote(raw)
			if err != nil {
				return d, false, errWantNumber
			}
			text = []byte(s)
		} else {
			text = raw[1 : len(raw)-1]
		}
		text = trimSpace(text)
		if len(text) == 0 {
			return d, false, errors.New("empty string, want a decimal number")
		}
	case c == '-' || isDigit(c):
	default:
		return d, false, errWantNumber
	}
	if d, ok := smallDecimal(text); ok {
		return d, true, nil
	}
	s := string(text)
	if err := unified.CheckDecimalText(s, maxNumberLen); err != nil {
		return d, false, fmt.Errorf("bad number %s", quoteShort(s))
	}
	d, err = unified.ParseDecimal(s)
	if err != nil {
		return d, false, fmt.Errorf("bad number %s", quoteShort(s))
	}
	return d, true, nil
}

// smallDecimal parses the common case without allocating a string: a plain
// decimal ([-]digits[.digits]) of at most 18 digits. ok is false for
// anything else, which the general path then accepts or rejects.
func smallDecimal(b []byte) (unified.Decimal, bool) {
	i, neg := 0, false
	if len(b) > 0 && b[0] == '-' {
		neg, i = true, 1
	}
	var v int64
	digits, frac, intDigits := 0, 0, 0
	dot := false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case isDigit(c):
			digits++
			if digits > 18 {
				return unified.Decimal{}, false
			}
			v = v*10 + int64(c-'0')
			if dot {
				frac++
			} else {
				intDigits++
			}
		case c == '.' && !dot && intDigits > 0:
			dot = true
		default:
			return unified.Decimal{}, false
		}
	}
	if intDigits == 0 || (dot && frac == 0) {
		return unified.Decimal{}, false
	}
	if neg {
		v = -v
	}
	return unified.NewDecimal(decimal.New(v, int32(-frac))), true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func createdAt(raw []byte, loc *time.Location) (time.Time, error) {
	if isNull(raw) {
		return time.Time{}, errMissing
	}
	if raw[0] != '"' {
		return time.Time{}, errors.New("want a date-time string")
	}
	s, err := jsonString(raw)
	if err != nil {
		return time.Time{}, err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errMissing
	}
	if len(s) > maxCreatedAtLen {
		return time.Time{}, errors.New("too long for a date-time")
	}
	var t time.Time
	parsed := false
	for _, layout := range createdAtLayouts {
		if t, err = time.ParseInLocation(layout, s, loc); err == nil {
			parsed = true
			break
		}
	}
	if !parsed {
		if t, err = time.Parse(time.RFC3339, s); err != nil {
			return time.Time{}, fmt.Errorf("bad date-time %s, want \"YYYY-MM-DD HH:MM:SS\" or RFC 3339", quoteShort(s))
		}
	}
	t = t.In(loc)
	if y := t.Year(); y < minYear || y > maxYear {
		return time.Time{}, fmt.Errorf("year %d outside %d-%d", y, minYear, maxYear)
	}
	return t, nil
}

func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}
