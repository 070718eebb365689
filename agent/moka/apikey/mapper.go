package apikey

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
	"github.com/pwbi/edge-agent/agent/unified"
)

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
	ItemID         []byte // item_id, else product_id
	ProductID      []byte
	VariantID      []byte
	Category       []byte
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
	s := wire.NewScanner(raw)
	if s.Peek() != '{' {
		return errNotObject
	}
	err := s.Object(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			r.ID, err = s.Value()
		case "outlet_id":
			r.OutletID, err = s.Value()
		case "receipt_no":
			r.ReceiptNo, err = s.Value()
		case "payment_no":
			r.PaymentNo, err = s.Value()
		case "grand_total":
			r.GrandTotal, err = s.Value()
		case "subtotal":
			r.Subtotal, err = s.Value()
		case "tax_amount":
			r.TaxAmount, err = s.Value()
		case "service_charge_amount":
			r.ServiceCharge, err = s.Value()
		case "discount_amount":
			r.DiscountAmount, err = s.Value()
		case "payment_type":
			r.PaymentType, err = s.Value()
		case "created_at":
			r.CreatedAt, err = s.Value()
		case "line_items":
			r.Items, r.shape = r.Items[:0], nil
			err = decodeItems(s, r)
		default:
			_, err = s.Value()
		}
		return err
	})
	if err != nil {
		return err
	}
	return s.End()
}

func decodeItems(s *wire.Scanner, r *rawTxn) error {
	problem := func(field, reason string) {
		if r.shape == nil {
			r.shape = &fieldProblem{field, reason}
		}
	}
	return s.EachObject("line_items", problem, func(i int) error {
		r.Items = append(r.Items, rawItem{})
		it := &r.Items[len(r.Items)-1]
		return s.Object(func(key []byte) error {
			var err error
			switch string(key) {
			case "item_name":
				it.ItemName, err = s.Value()
			case "variant_name":
				it.VariantName, err = s.Value()
			case "item_id":
				it.ItemID, err = s.Value()
			case "product_id":
				it.ProductID, err = s.Value()
			case "variant_id":
				it.VariantID, err = s.Value()
			case "category":
				it.Category, err = s.Value()
			case "sku":
				it.SKU, err = s.Value()
			case "quantity":
				it.Quantity, err = s.Value()
			case "price":
				it.Price, err = s.Value()
			case "discount_amount":
				it.DiscountAmount, err = s.Value()
			case "modifiers":
				it.Modifiers = it.Modifiers[:0]
				err = decodeModifiers(s, it, func(field, reason string) {
					problem("line_items["+strconv.Itoa(i)+"]."+field, reason)
				})
			default:
				_, err = s.Value()
			}
			return err
		})
	})
}

func decodeModifiers(s *wire.Scanner, it *rawItem, problem func(field, reason string)) error {
	return s.EachObject("modifiers", problem, func(int) error {
		var m rawModifier
		err := s.Object(func(key []byte) error {
			var err error
			switch string(key) {
			case "name":
				m.Name, err = s.Value()
			case "price":
				m.Price, err = s.Value()
			default:
				_, err = s.Value()
			}
			return err
		})
		it.Modifiers = append(it.Modifiers, m)
		return err
	})
}

func decodeProduct(raw []byte, r *rawProduct) error {
	s := wire.NewScanner(raw)
	if s.Peek() != '{' {
		return errNotObject
	}
	err := s.Object(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			r.ID, err = s.Value()
		case "name":
			r.Name, err = s.Value()
		case "price":
			r.Price, err = s.Value()
		case "category":
			r.Category, err = s.Value()
		case "outlet_id":
			r.OutletID, err = s.Value()
		case "sku":
			r.SKU, err = s.Value()
		default:
			_, err = s.Value()
		}
		return err
	})
	if err != nil {
		return err
	}
	return s.End()
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
//	                     discount_amount, modifiers[{name, price}], and
//	                     item_id (else product_id), variant_id, category
//	                     when a line carries them (the guide shows none;
//	                     "" otherwise)
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
	outlet, _ := wire.IDField(r.OutletID) // for the error's context only
	fail := func(id, field, reason string) (unified.Transaction, error) {
		return unified.Transaction{}, &MapError{Kind: "transaction", ID: id, OutletID: outlet, Field: field, Reason: reason}
	}

	id, err := wire.IDField(r.ID)
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
	if t.OutletID, err = wire.IDField(r.OutletID); err != nil {
		return fail(id, "outlet_id", err.Error())
	}
	if t.OutletID == "" {
		t.OutletID = m.DefaultOutletID
	}
	if t.OutletID == "" {
		return fail(id, "outlet_id", "missing")
	}
	if t.ReceiptNo, err = wire.IDField(r.ReceiptNo); err != nil {
		return fail(id, "receipt_no", err.Error())
	}
	if t.ReceiptNo == "" {
		if t.ReceiptNo, err = wire.IDField(r.PaymentNo); err != nil {
			return fail(id, "payment_no", err.Error())
		}
	}

	var ok bool
	if t.Amount, ok, err = wire.DecimalField(r.GrandTotal); err != nil {
		return fail(id, "grand_total", err.Error())
	} else if !ok {
		return fail(id, "grand_total", "missing")
	}
	if t.TaxAmount, _, err = wire.DecimalField(r.TaxAmount); err != nil {
		return fail(id, "tax_amount", err.Error())
	}
	if t.ServiceChargeAmount, _, err = wire.DecimalField(r.ServiceCharge); err != nil {
		return fail(id, "service_charge_amount", err.Error())
	}
	if t.DiscountAmount, _, err = wire.DecimalField(r.DiscountAmount); err != nil {
		return fail(id, "discount_amount", err.Error())
	}
	if t.Subtotal, ok, err = wire.DecimalField(r.Subtotal); err != nil {
		return fail(id, "subtotal", err.Error())
	} else if !ok {
		t.Subtotal = t.Amount.Sub(t.TaxAmount).Sub(t.ServiceChargeAmount)
	}

	if t.PaymentMethod, err = wire.TextField(r.PaymentType); err != nil {
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
	if it.Name, err = wire.TextField(r.ItemName); err != nil {
		return it, "item_name", err
	}
	if it.Variant, err = wire.TextField(r.VariantName); err != nil {
		return it, "variant_name", err
	}
	if it.SKU, err = wire.IDField(r.SKU); err != nil {
		return it, "sku", err
	}
	if it.ItemID, err = wire.IDField(r.ItemID); err != nil {
		return it, "item_id", err
	}
	if it.ItemID == "" {
		if it.ItemID, err = wire.IDField(r.ProductID); err != nil {
			return it, "product_id", err
		}
	}
	if it.VariantID, err = wire.IDField(r.VariantID); err != nil {
		return it, "variant_id", err
	}
	if it.Category, err = wire.TextField(r.Category); err != nil {
		return it, "category", err
	}
	var ok bool
	if it.Quantity, ok, err = wire.DecimalField(r.Quantity); err != nil {
		return it, "quantity", err
	} else if !ok {
		return it, "quantity", wire.ErrMissing
	}
	if it.UnitPrice, ok, err = wire.DecimalField(r.Price); err != nil {
		return it, "price", err
	} else if !ok {
		return it, "price", wire.ErrMissing
	}
	it.Total = it.Quantity.Mul(it.UnitPrice)
	if it.DiscountAmount, _, err = wire.DecimalField(r.DiscountAmount); err != nil {
		return it, "discount_amount", err
	}
	it.Modifiers = make([]unified.Modifier, 0, len(r.Modifiers))
	for j := range r.Modifiers {
		var mod unified.Modifier
		f := "modifiers[" + strconv.Itoa(j) + "]."
		if mod.Name, err = wire.TextField(r.Modifiers[j].Name); err != nil {
			return it, f + "name", err
		}
		if mod.Price, _, err = wire.DecimalField(r.Modifiers[j].Price); err != nil {
			return it, f + "price", err
		}
		it.Modifiers = append(it.Modifiers, mod)
	}
	return it, "", nil
}

// MapProduct maps one raw Moka product (an element of the data array of
// /v1/products): id (required) → external_id and item_id (a product of
// this dialect is a catalogue item without variants: variant_id and
// variant stay ""), name, price ("0" when absent), category, sku,
// outlet_id (else MapContext.DefaultOutletID, else "" for a business-wide
// item).
func MapProduct(raw json.RawMessage, m MapContext) (unified.Product, error) {
	if m.BusinessID == "" {
		return unified.Product{}, ErrNoBusinessID
	}
	var r rawProduct
	if err := decodeProduct(raw, &r); err != nil {
		return unified.Product{}, &MapError{Kind: "product", Reason: decodeProblem(err)}
	}
	outlet, _ := wire.IDField(r.OutletID) // for the error's context only
	fail := func(id, field, reason string) (unified.Product, error) {
		return unified.Product{}, &MapError{Kind: "product", ID: id, OutletID: outlet, Field: field, Reason: reason}
	}
	id, err := wire.IDField(r.ID)
	if err != nil {
		return fail("", "id", err.Error())
	}
	if id == "" {
		return fail("", "id", "missing")
	}
	p := unified.Product{
		ExternalID:   id,
		ItemID:       id,
		SourceSystem: unified.SourceMoka,
		BusinessID:   m.BusinessID,
		Currency:     m.Currency,
	}
	if p.Currency == "" {
		p.Currency = "IDR"
	}
	if p.OutletID, err = wire.IDField(r.OutletID); err != nil {
		return fail(id, "outlet_id", err.Error())
	}
	if p.OutletID == "" {
		p.OutletID = m.DefaultOutletID
	}
	if p.Name, err = wire.TextField(r.Name); err != nil {
		return fail(id, "name", err.Error())
	}
	if p.Category, err = wire.TextField(r.Category); err != nil {
		return fail(id, "category", err.Error())
	}
	if p.SKU, err = wire.IDField(r.SKU); err != nil {
		return fail(id, "sku", err.Error())
	}
	if p.Price, _, err = wire.DecimalField(r.Price); err != nil {
		return fail(id, "price", err.Error())
	}
	return p, nil
}

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

func createdAt(raw []byte, loc *time.Location) (time.Time, error) {
	s, err := wire.DateTimeText(raw)
	if err != nil {
		return time.Time{}, err
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
			return time.Time{}, fmt.Errorf("bad date-time %s, want \"YYYY-MM-DD HH:MM:SS\" or RFC 3339", wire.QuoteShort(s))
		}
	}
	t = t.In(loc)
	if y := t.Year(); y < minYear || y > maxYear {
		return time.Time{}, fmt.Errorf("year %d outside %d-%d", y, minYear, maxYear)
	}
	return t, nil
}
