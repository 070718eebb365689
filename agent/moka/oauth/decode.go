package oauth

import (
	"errors"
	"strconv"

	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
)

// This file decodes a payment of get_latest_transactions in one pass over
// the shared scanner: the raw value of every field the mapper reads (a
// sub-slice of the input), nothing else.

// rawPayment is a payment as it arrives: each field is its raw JSON value
// (a sub-slice of the input; nil when absent).
type rawPayment struct {
	ID, GUID, PaymentNo, OutletID        []byte
	TotalCollected, TotalCollectedAmount []byte
	Taxes, TotalTaxAmount                []byte
	Gratuities, TotalGratuityAmount      []byte
	Discounts, TotalDiscountAmount       []byte
	IsDeleted, IsRefunded                []byte
	RefundAmount, RefundType             []byte
	PaymentType, CreatedAt               []byte
	UpdatedAt, SynchronizedAt            []byte
	ParentPaymentID                      []byte
	// The date-time fallbacks of a payment without created_at: GoBiz's
	// transaction_date (a whole ISO 8601 date-time there; a bare date in
	// v3, never used) and payment_date.
	TransactionDate, PaymentDate []byte

	TaxTotals      [][]byte // payment_taxes[].total
	GratuityTotals [][]byte // payment_gratuities[].total
	DiscountLines  []rawDiscount
	Refunds        []rawRefund
	Checkouts      []rawCheckout
	sawCheckouts   bool // "checkouts" seen: it wins over GoBiz "items"
	notObject      bool // the page element is not an object

	shape *fieldProblem // first structural problem in a nested list
}

type rawDiscount struct{ Amount, IsDeleted []byte }

type rawRefund struct{ ID, Amount, Type, IsDeleted []byte }

// rawCheckout is a line: checkouts[] of the v3 reports, or items[] of the
// GoBiz reporting API, whose names differ (name, variant_name, variant_id,
// modifiers[].option_name). Both spellings are read in both lists; the v3
// one wins when a line has both.
type rawCheckout struct {
	ItemName, Name              []byte // item_name (v3), name (GoBiz)
	VariantName, GoVariantName  []byte // item_variant_name (v3), variant_name (GoBiz)
	ItemID                      []byte
	VariantID, GoVariantID      []byte // item_variant_id (v3), variant_id (GoBiz)
	CategoryName, Category      []byte // category_name; category (a name)
	SKU                         []byte
	Quantity, Price, ItemPrice  []byte
	DiscountAmount, IsDeleted   []byte
	Discounts                   [][]byte // discounts[].discount_amount
	Modifiers                   []rawModifier
	sawDiscountAmount, sawLines bool
}

// rawModifier is a modifier of a line: modifier_option_name (v3),
// option_name (GoBiz), else modifier_name (the group).
type rawModifier struct{ OptionName, GoOptionName, Name, Price []byte }

type fieldProblem struct{ field, reason string }

// decodePayment scans raw into r in one pass. Keys match exactly; a
// repeated key takes the last value; unknown keys (customer data among
// them) are skipped without being read.
func decodePayment(raw []byte, r *rawPayment) error {
	s := wire.NewScanner(raw)
	if s.Peek() != '{' {
		return errNotObject
	}
	if err := decodePaymentAt(s, r); err != nil {
		return err
	}
	return s.End()
}

// decodePaymentAt decodes the object at s into r (the page decoder calls it
// on the page's scanner, so that a page is scanned once).
func decodePaymentAt(s *wire.Scanner, r *rawPayment) error {
	problem := func(field, reason string) {
		if r.shape == nil {
			r.shape = &fieldProblem{field, reason}
		}
	}
	return s.Object(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			r.ID, err = s.Value()
		case "guid":
			r.GUID, err = s.Value()
		case "payment_no":
			r.PaymentNo, err = s.Value()
		case "outlet_id":
			r.OutletID, err = s.Value()
		case "total_collected":
			r.TotalCollected, err = s.Value()
		case "total_collected_amount":
			r.TotalCollectedAmount, err = s.Value()
		case "taxes":
			r.Taxes, err = s.Value()
		case "total_tax_amount":
			r.TotalTaxAmount, err = s.Value()
		case "gratuities":
			r.Gratuities, err = s.Value()
		case "total_gratuity_amount":
			r.TotalGratuityAmount, err = s.Value()
		case "discounts":
			r.Discounts, err = s.Value()
		case "total_discount_amount":
			r.TotalDiscountAmount, err = s.Value()
		case "is_deleted":
			r.IsDeleted, err = s.Value()
		case "is_refunded":
			r.IsRefunded, err = s.Value()
		case "refund_amount":
			r.RefundAmount, err = s.Value()
		case "refund_type":
			r.RefundType, err = s.Value()
		case "payment_type":
			r.PaymentType, err = s.Value()
		case "created_at":
			r.CreatedAt, err = s.Value()
		case "updated_at":
			r.UpdatedAt, err = s.Value()
		case "synchronized_at":
			r.SynchronizedAt, err = s.Value()
		case "parent_payment_id":
			r.ParentPaymentID, err = s.Value()
		case "transaction_date":
			r.TransactionDate, err = s.Value()
		case "payment_date":
			r.PaymentDate, err = s.Value()
		case "payment_taxes":
			r.TaxTotals = r.TaxTotals[:0]
			err = s.EachObject("payment_taxes", problem, func(int) error {
				r.TaxTotals = append(r.TaxTotals, nil)
				return pick(s, want{"total", &r.TaxTotals[len(r.TaxTotals)-1]})
			})
		case "payment_gratuities":
			r.GratuityTotals = r.GratuityTotals[:0]
			err = s.EachObject("payment_gratuities", problem, func(int) error {
				r.GratuityTotals = append(r.GratuityTotals, nil)
				return pick(s, want{"total", &r.GratuityTotals[len(r.GratuityTotals)-1]})
			})
		case "payment_discounts":
			r.DiscountLines = r.DiscountLines[:0]
			err = s.EachObject("payment_discounts", problem, func(int) error {
				r.DiscountLines = append(r.DiscountLines, rawDiscount{})
				d := &r.DiscountLines[len(r.DiscountLines)-1]
				return pick(s, want{"discount_amount", &d.Amount}, want{"is_deleted", &d.IsDeleted})
			})
		case "payment_refunds":
			r.Refunds = r.Refunds[:0]
			err = s.EachObject("payment_refunds", problem, func(int) error {
				r.Refunds = append(r.Refunds, rawRefund{})
				d := &r.Refunds[len(r.Refunds)-1]
				return pick(s, want{"id", &d.ID}, want{"refund_amount", &d.Amount}, want{"refund_type", &d.Type},
					want{"is_deleted", &d.IsDeleted})
			})
		case "checkouts":
			r.sawCheckouts = true
			r.Checkouts = r.Checkouts[:0]
			err = decodeCheckouts(s, "checkouts", r, problem)
		case "items": // GoBiz name of checkouts
			if r.sawCheckouts {
				_, err = s.Value()
				break
			}
			r.Checkouts = r.Checkouts[:0]
			err = decodeCheckouts(s, "items", r, problem)
		default:
			_, err = s.Value()
		}
		return err
	})
}

var errNotObject = errors.New("not a JSON object")

// want is one member pick wants: its key and where its raw value goes.
type want struct {
	key string
	dst *[]byte
}

// pick consumes an object, storing the raw values of the wanted keys.
func pick(s *wire.Scanner, wants ...want) error {
	return s.Object(func(key []byte) error {
		v, err := s.Value()
		for _, w := range wants {
			if string(key) == w.key {
				*w.dst = v
			}
		}
		return err
	})
}

func decodeCheckouts(s *wire.Scanner, field string, r *rawPayment, problem func(field, reason string)) error {
	return s.EachObject(field, problem, func(i int) error {
		r.Checkouts = append(r.Checkouts, rawCheckout{})
		c := &r.Checkouts[len(r.Checkouts)-1]
		at := field + "[" + strconv.Itoa(i) + "]."
		sub := func(f, reason string) { problem(at+f, reason) }
		return s.Object(func(key []byte) error {
			var err error
			switch string(key) {
			case "item_name":
				c.ItemName, err = s.Value()
			case "name":
				c.Name, err = s.Value()
			case "item_variant_name":
				c.VariantName, err = s.Value()
			case "variant_name":
				c.GoVariantName, err = s.Value()
			case "item_id":
				c.ItemID, err = s.Value()
			case "item_variant_id":
				c.VariantID, err = s.Value()
			case "variant_id":
				c.GoVariantID, err = s.Value()
			case "category_name":
				c.CategoryName, err = s.Value()
			case "category":
				c.Category, err = s.Value()
			case "sku":
				c.SKU, err = s.Value()
			case "quantity":
				c.Quantity, err = s.Value()
			case "price":
				c.Price, err = s.Value()
			case "item_price":
				c.ItemPrice, err = s.Value()
			case "discount_amount":
				c.sawDiscountAmount = true
				c.DiscountAmount, err = s.Value()
			case "is_deleted":
				c.IsDeleted, err = s.Value()
			case "discounts":
				c.Discounts = c.Discounts[:0]
				err = s.EachObject("discounts", sub, func(int) error {
					c.Discounts = append(c.Discounts, nil)
					return pick(s, want{"discount_amount", &c.Discounts[len(c.Discounts)-1]})
				})
			case "modifiers":
				c.Modifiers = c.Modifiers[:0]
				err = s.EachObject("modifiers", sub, func(int) error {
					c.Modifiers = append(c.Modifiers, rawModifier{})
					m := &c.Modifiers[len(c.Modifiers)-1]
					return pick(s, want{"modifier_option_name", &m.OptionName}, want{"option_name", &m.GoOptionName},
						want{"modifier_name", &m.Name}, want{"price", &m.Price})
				})
			default:
				_, err = s.Value()
			}
			return err
		})
	})
}
