package jurnalfake

import (
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Product is a product in the fake's Jurnal company.
type Product struct {
	ID   int64
	Name string
	// Code is the product_code (SKU); may be empty.
	Code string
	// SellPrice is sell_price_per_unit.
	SellPrice decimal.Decimal
	Unit      string   // unit_name; "Pcs" when not sent
	Category  []string // product_categories_string, split at commas
}

// Contact is a contact (customer); invoices name it by display name
// (person_name).
type Contact struct {
	ID          int64
	DisplayName string
	Email       string
}

// Account is an account of the chart of accounts (deposit accounts of
// payments, lines of journal entries).
type Account struct {
	ID       int64
	Name     string
	Number   string
	Category string
}

// Tax is a tax a line may name (line_tax_name), with its rate in percent.
type Tax struct {
	ID   int64
	Name string
	Rate decimal.Decimal
}

// Line is a line of a sales invoice or a sales return, with its exact
// amounts: Amount = Quantity × Rate × (100 − Discount) / 100 rounded to
// cents, Tax = Amount × the tax rate / 100 rounded to cents.
type Line struct {
	ProductID   int64
	ProductName string
	ProductCode string
	Description string
	Quantity    decimal.Decimal
	Rate        decimal.Decimal
	Discount    decimal.Decimal // percent
	Amount      decimal.Decimal
	TaxName     string
	TaxRate     decimal.Decimal
	Tax         decimal.Decimal
}

// Invoice is a sales invoice as the fake holds it.
type Invoice struct {
	ID              int64
	TransactionNo   string
	CustomID        string
	ReferenceNo     string
	TransactionDate string // YYYY-MM-DD
	DueDate         string // YYYY-MM-DD; the transaction date when not sent
	TermName        string // the term sent if known, else "Custom"
	PersonName      string
	Memo            string
	Tags            []string
	Warehouse       string
	Lines           []Line
	// Subtotal is the sum of the lines' amounts, Tax of their taxes;
	// Total = Subtotal + Tax.
	Subtotal, Tax, Total decimal.Decimal
	// Deposit was paid at creation into DepositTo.
	Deposit   decimal.Decimal
	DepositTo string
	// Paid is what payments (and the deposit) received; Returned what
	// sales returns took back; Remaining = Total − Paid − Returned, never
	// below zero.
	Paid, Returned, Remaining decimal.Decimal
	// Batch: created by batch_create.
	Batch     bool
	CreatedAt time.Time // the fake's clock
}

// PaymentRecord is one invoice a receive payment pays.
type PaymentRecord struct {
	InvoiceID     int64
	TransactionNo string
	Amount        decimal.Decimal
}

// Payment is a receive payment.
type Payment struct {
	ID              int64
	TransactionNo   string
	CustomID        string
	TransactionDate string
	PaymentMethod   string
	DepositTo       string
	Memo            string
	Tags            []string
	Records         []PaymentRecord
	Total           decimal.Decimal
	Draft           bool
	CreatedAt       time.Time
}

// Return is a sales return (the reversing document of a voided or refunded
// sale).
type Return struct {
	ID              int64
	TransactionNo   string
	CustomID        string
	TransactionDate string
	InvoiceID       int64
	InvoiceCustomID string
	Memo            string
	Tags            []string
	Lines           []Line
	Subtotal, Tax   decimal.Decimal
	Total           decimal.Decimal
	CreatedAt       time.Time
}

// JournalLine is a line of a journal entry: one of Debit and Credit is
// positive, the other zero.
type JournalLine struct {
	Account     string
	Debit       decimal.Decimal
	Credit      decimal.Decimal
	Description string
}

// JournalEntry is a journal entry (an adjustment).
type JournalEntry struct {
	ID              int64
	TransactionNo   string
	CustomID        string
	TransactionDate string
	Memo            string
	Tags            []string
	Lines           []JournalLine
	TotalDebit      decimal.Decimal
	TotalCredit     decimal.Decimal
	CreatedAt       time.Time
}

// Seeds: the master data a new fake holds unless Options say otherwise.
var (
	// DefaultContacts are the contacts of a new fake.
	DefaultContacts = []string{"Pelanggan Umum"}
	// DefaultAccounts are typical Indonesian cash, bank and sales accounts.
	DefaultAccounts = []Account{
		{Name: "Kas", Number: "1-10001", Category: "Cash & Bank"},
		{Name: "Kas Kecil", Number: "1-10002", Category: "Cash & Bank"},
		{Name: "Bank BCA", Number: "1-10003", Category: "Cash & Bank"},
		{Name: "Bank Mandiri", Number: "1-10004", Category: "Cash & Bank"},
		{Name: "Bank BRI", Number: "1-10005", Category: "Cash & Bank"},
		{Name: "Bank BNI", Number: "1-10006", Category: "Cash & Bank"},
		{Name: "Piutang Usaha", Number: "1-10100", Category: "Accounts Receivable (A/R)"},
		{Name: "Pendapatan", Number: "4-40000", Category: "Income"},
		{Name: "Diskon Penjualan", Number: "4-40100", Category: "Income"},
		{Name: "Retur Penjualan", Number: "4-40200", Category: "Income"},
		{Name: "Pendapatan Lain-lain", Number: "7-70099", Category: "Other Income"},
		{Name: "Beban Lain-lain", Number: "8-80999", Category: "Other Expense"},
	}
	// DefaultPaymentMethods are Jurnal's usual payment methods.
	DefaultPaymentMethods = []string{"Cash", "Bank Transfer", "Credit Card", "Debit Card", "QRIS", "E-Wallet", "Cheque"}
	// DefaultTaxes: PPN 11 % and the restaurant tax PB1 10 %.
	DefaultTaxes = []Tax{
		{Name: "PPN", Rate: decimal.NewFromInt(11)},
		{Name: "PB1", Rate: decimal.NewFromInt(10)},
	}
	// DefaultWarehouses are the warehouses of a new fake.
	DefaultWarehouses = []string{"Gudang Utama"}
	// DefaultTerms are the payment terms a new fake knows.
	DefaultTerms = []string{"Cash on Delivery", "Net 7", "Net 14", "Net 30", "Net 60"}
)

// master is the fake company's master data. Guarded by Server.mu.
type master struct {
	products   []Product
	contacts   []Contact
	accounts   []Account
	taxes      []Tax
	warehouses []string
	methods    []string
	terms      []string
}

func (m *master) clone() master {
	c := master{
		products:   slices.Clone(m.products),
		contacts:   slices.Clone(m.contacts),
		accounts:   slices.Clone(m.accounts),
		taxes:      slices.Clone(m.taxes),
		warehouses: slices.Clone(m.warehouses),
		methods:    slices.Clone(m.methods),
		terms:      slices.Clone(m.terms),
	}
	for i := range c.products {
		c.products[i].Category = slices.Clone(c.products[i].Category)
	}
	return c
}

// sameName compares names as Jurnal does: trimmed, case-insensitive.
func sameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

func (m *master) productByName(name string) (Product, bool) {
	for _, p := range m.products {
		if sameName(p.Name, name) {
			return p, true
		}
	}
	return Product{}, false
}

func (m *master) productByCode(code string) (Product, bool) {
	if strings.TrimSpace(code) == "" {
		return Product{}, false
	}
	for _, p := range m.products {
		if sameName(p.Code, code) {
			return p, true
		}
	}
	return Product{}, false
}

func (m *master) productByID(id int64) (Product, bool) {
	for _, p := range m.products {
		if p.ID == id {
			return p, true
		}
	}
	return Product{}, false
}

func (m *master) contact(name string) (Contact, bool) {
	for _, c := range m.contacts {
		if sameName(c.DisplayName, name) {
			return c, true
		}
	}
	return Contact{}, false
}

func (m *master) account(name string) (Account, bool) {
	for _, a := range m.accounts {
		if sameName(a.Name, name) {
			return a, true
		}
	}
	return Account{}, false
}

func (m *master) tax(name string) (Tax, bool) {
	for _, t := range m.taxes {
		if sameName(t.Name, name) {
			return t, true
		}
	}
	return Tax{}, false
}

func containsName(list []string, name string) (string, bool) {
	for _, n := range list {
		if sameName(n, name) {
			return n, true
		}
	}
	return "", false
}
