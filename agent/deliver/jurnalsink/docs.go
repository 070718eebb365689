package jurnalsink

import (
	"github.com/pwbi/edge-agent/agent/unified"
)

// A line of a Jurnal document: a product reference, a quantity and a rate
// whose product is exact to the cent (Jurnal rounds quantity × rate to
// cents; every line the sink builds has a product that needs no rounding).
type line struct {
	Product     string          `json:"product_name"` // the Jurnal product's name
	Quantity    unified.Decimal `json:"quantity"`
	Rate        unified.Decimal `json:"rate"`
	Description string          `json:"description,omitempty"`
}

func (l line) amount() unified.Decimal { return l.Quantity.Mul(l.Rate) }

// Names of the products that carry what is not an item: tax, service charge
// and the rest (order discounts, rounding) that makes a document's total
// equal what Moka collected. They are created in Jurnal like any product.
const (
	productTax        = "Pajak Penjualan (Moka)"
	productService    = "Service Charge (Moka)"
	productAdjustment = "Diskon & Pembulatan (Moka)"
)

// invoiceDoc is {"sales_invoice": …}.
type invoiceDoc struct {
	SalesInvoice invoiceBody `json:"sales_invoice"`
}

type invoiceBody struct {
	TransactionDate string     `json:"transaction_date"`
	DueDate         string     `json:"due_date"`
	PersonName      string     `json:"person_name"`
	CustomID        string     `json:"custom_id"`
	ReferenceNo     string     `json:"reference_no,omitempty"`
	Memo            string     `json:"memo,omitempty"`
	Tags            []string   `json:"tags,omitempty"`
	WarehouseName   string     `json:"warehouse_name,omitempty"`
	Lines           []lineBody `json:"transaction_lines_attributes"`
}

type lineBody struct {
	Quantity    string `json:"quantity"`
	Rate        string `json:"rate"`
	Discount    string `json:"discount"`
	ProductName string `json:"product_name"`
	Description string `json:"description,omitempty"`
}

func lineBodies(ls []line) []lineBody {
	out := make([]lineBody, len(ls))
	for i, l := range ls {
		out[i] = lineBody{Quantity: l.Quantity.String(), Rate: l.Rate.String(), Discount: "0", ProductName: l.Product, Description: clip(l.Description, 255)}
	}
	return out
}

// returnDoc is {"sales_return": …}, the reversing document of a voided or
// refunded sale, linked to its invoice.
type returnDoc struct {
	SalesReturn returnBody `json:"sales_return"`
}

type returnBody struct {
	TransactionDate string     `json:"transaction_date"`
	CustomID        string     `json:"custom_id"`
	InvoiceID       int64      `json:"sales_invoice_id"`
	Memo            string     `json:"memo,omitempty"`
	Tags            []string   `json:"tags,omitempty"`
	Lines           []lineBody `json:"transaction_lines_attributes"`
}

// paymentDoc is {"receive_payment": …}.
type paymentDoc struct {
	ReceivePayment paymentBody `json:"receive_payment"`
}

type paymentBody struct {
	TransactionDate   string          `json:"transaction_date"`
	Records           []paymentRecord `json:"records_attributes"`
	PaymentMethodName string          `json:"payment_method_name"`
	DepositToName     string          `json:"deposit_to_name"`
	CustomID          string          `json:"custom_id"`
	Memo              string          `json:"memo,omitempty"`
	Tags              []string        `json:"tags,omitempty"`
	IsDraft           bool            `json:"is_draft"`
}

type paymentRecord struct {
	TransactionNo string `json:"transaction_no"`
	Amount        string `json:"amount"`
}

// docAnswer is what the sink reads of a created or found document.
type docAnswer struct {
	ID            int64  `json:"id"`
	TransactionNo string `json:"transaction_no"`
	CustomID      string `json:"custom_id"`
}
