// Package unified defines the unified transaction and product records of
// SPEC §4: what the agent buffers and forwards for every sale and menu item,
// whatever Moka dialect it came from.
//
// Money and quantities are [Decimal] values rendered as canonical decimal
// strings (no exponent, "." separator, no trailing fractional zeros), never
// floats. Timestamps are RFC 3339 with the outlet's UTC offset. Fields a
// dialect does not provide are present with their zero value ("0", "", []).
//
// [Transaction.Canonical] and [Product.Canonical] give the deterministic JSON
// used as store.Input.Data: equal content always yields equal bytes, so the
// SHA-256 of those bytes (the record version) changes only when the content
// does. The canonical bytes are exactly what encoding/json would produce for
// the same value with nil slices replaced by empty ones; a test holds the two
// together.
//
// This package is pure data: it imports neither the store nor any connector.
package unified

import (
	"net/url"
	"strings"
	"time"
)

// SourceMoka is the source_system of every record from Moka POS.
const SourceMoka = "moka"

// Status is the state of a sale.
type Status string

// Transaction statuses (SPEC §4).
const (
	StatusCompleted         Status = "completed"
	StatusVoid              Status = "void"
	StatusRefunded          Status = "refunded"
	StatusPartiallyRefunded Status = "partially_refunded"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusCompleted, StatusVoid, StatusRefunded, StatusPartiallyRefunded:
		return true
	}
	return false
}

// BusinessDateLayout is the layout of Transaction.BusinessDate.
const BusinessDateLayout = "2006-01-02"

// Transaction is one sale (SPEC §4). Field order is the JSON order.
type Transaction struct {
	ExternalID          string    `json:"external_id"`
	SourceSystem        string    `json:"source_system"`
	BusinessID          string    `json:"business_id"`
	OutletID            string    `json:"outlet_id"`
	ReceiptNo           string    `json:"receipt_no"`
	Status              Status    `json:"status"`
	Currency            string    `json:"currency"`
	Amount              Decimal   `json:"amount"`
	Subtotal            Decimal   `json:"subtotal"`
	TaxAmount           Decimal   `json:"tax_amount"`
	ServiceChargeAmount Decimal   `json:"service_charge_amount"`
	DiscountAmount      Decimal   `json:"discount_amount"`
	RefundAmount        Decimal   `json:"refund_amount"`
	PaymentMethod       string    `json:"payment_method"`
	Timestamp           time.Time `json:"timestamp"`     // in the outlet's zone
	BusinessDate        string    `json:"business_date"` // outlet-local date, YYYY-MM-DD
	Items               []Item    `json:"items"`
}

// Item is one line of a sale.
//
// ItemID, VariantID and Category are the source's catalogue item id,
// variant id and category name ("" when the dialect does not carry them),
// so that a sale joins its Product records even after a product is
// renamed (SPEC §4). They come last in the JSON: the fields before them
// keep the order and bytes they always had.
type Item struct {
	Name           string     `json:"name"`
	Variant        string     `json:"variant"`
	SKU            string     `json:"sku"`
	Quantity       Decimal    `json:"quantity"`
	UnitPrice      Decimal    `json:"unit_price"`
	Total          Decimal    `json:"total"`
	DiscountAmount Decimal    `json:"discount_amount"`
	Modifiers      []Modifier `json:"modifiers"`
	ItemID         string     `json:"item_id"`
	VariantID      string     `json:"variant_id"`
	Category       string     `json:"category"`
}

// Modifier is an add-on of an item ("Extra shot").
type Modifier struct {
	Name  string  `json:"name"`
	Price Decimal `json:"price"`
}

// Product is one sellable entry of the catalogue: a variant where the
// source prices variants (SPEC §4 "Product records").
//
// ExternalID is the record's own id (the variant id where Moka prices
// variants); ItemID is the catalogue item it belongs to and VariantID the
// variant ("" where the source has none), the ids a sale's Item carries;
// Variant is the variant's name. ItemID, VariantID and Variant come last
// in the JSON: the fields before them keep the order and bytes they
// always had.
type Product struct {
	ExternalID   string  `json:"external_id"`
	SourceSystem string  `json:"source_system"`
	BusinessID   string  `json:"business_id"`
	OutletID     string  `json:"outlet_id"` // "" for a business-wide item
	Name         string  `json:"name"`
	Category     string  `json:"category"`
	SKU          string  `json:"sku"`
	Currency     string  `json:"currency"`
	Price        Decimal `json:"price"`
	ItemID       string  `json:"item_id"`
	VariantID    string  `json:"variant_id"`
	Variant      string  `json:"variant"`
}

// Key returns the record key of a transaction:
// "moka/{business_id}/{outlet_id}/{external_id}" (SPEC §6).
//
// Each part is escaped with url.PathEscape, so a "/" inside an id becomes
// "%2F" (and "%" becomes "%25"): the key always has exactly four segments,
// distinct ids always give distinct keys, and ordinary ids ("MOK123",
// "outlet_456", "biz_1") appear unchanged.
func Key(businessID, outletID, externalID string) string {
	var b strings.Builder
	b.Grow(len(SourceMoka) + len(businessID) + len(outletID) + len(externalID) + 3)
	b.WriteString(SourceMoka)
	for _, part := range [...]string{businessID, outletID, externalID} {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(part))
	}
	return b.String()
}

// ProductKey returns the record key of a product:
// "moka/{business_id}/{outlet_id}/products/{external_id}", escaped like
// [Key]. It has five segments, so it never equals a transaction key; a
// business-wide product has an empty outlet segment.
func ProductKey(businessID, outletID, externalID string) string {
	return Key(businessID, outletID, "") + "products/" + url.PathEscape(externalID)
}

// Key returns the transaction's record key (see [Key]).
func (t Transaction) Key() string { return Key(t.BusinessID, t.OutletID, t.ExternalID) }

// Key returns the product's record key (see [ProductKey]).
func (p Product) Key() string { return ProductKey(p.BusinessID, p.OutletID, p.ExternalID) }
