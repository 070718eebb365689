package jurnalfake

import (
	"net/http"
	"strings"
	"testing"
)

func payment(customID, invoiceNo string, amount any) map[string]any {
	return map[string]any{"receive_payment": map[string]any{
		"transaction_date": "2026-09-16", "payment_method_name": "QRIS", "deposit_to_name": "Bank BCA",
		"custom_id": customID, "memo": "QRIS", "tags": []string{"Kemang"},
		"records_attributes": []any{map[string]any{"transaction_no": invoiceNo, "amount": amount}},
	}}
}

func TestPaymentPaysTheInvoice(t *testing.T) {
	e := newEnv(t, Options{})
	inv := e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusCreated).obj(t, "sales_invoice")
	no := inv["transaction_no"].(string)
	e.post("receive_payments", payment("moka-1-p1-pay", no, "30000")).want(t, http.StatusCreated)
	got := e.get("sales_invoices/moka-1-p1").want(t, http.StatusOK).obj(t, "sales_invoice")
	if got["remaining"] != "20000.0" || got["transaction_status"].(map[string]any)["name"] != "Partial" {
		t.Errorf("after a part payment: remaining %v status %v", got["remaining"], got["transaction_status"])
	}
	// A repeat is 409; paying more than remains is 422.
	e.post("receive_payments", payment("moka-1-p1-pay", no, 20000)).want(t, http.StatusConflict)
	e.post("receive_payments", payment("moka-1-p1-pay2", no, 20000.01)).want(t, http.StatusUnprocessableEntity)
	e.post("receive_payments", payment("moka-1-p1-pay2", no, 20000)).want(t, http.StatusCreated)
	ps := e.s.Payments()
	if len(ps) != 2 || !ps[0].Total.Equal(dec("30000")) || ps[1].DepositTo != "Bank BCA" || ps[1].PaymentMethod != "QRIS" {
		t.Errorf("payments %+v", ps)
	}
	if inv, _ := e.s.Invoice("moka-1-p1"); !inv.Remaining.IsZero() || !inv.Paid.Equal(dec("50000")) {
		t.Errorf("invoice paid %v remaining %v", inv.Paid, inv.Remaining)
	}
	e.get("receive_payments/moka-1-p1-pay2").want(t, http.StatusOK)
}

func TestPaymentValidation(t *testing.T) {
	e := newEnv(t, Options{})
	no := e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusCreated).obj(t, "sales_invoice")["transaction_no"].(string)
	cases := []struct {
		name  string
		edit  func(map[string]any)
		field string
		msg   string
	}{
		{"no payment method", func(m map[string]any) { delete(m, "payment_method_name") }, "payment_method", MsgPaymentMethodMissing},
		{"unknown deposit account", func(m map[string]any) { m["deposit_to_name"] = "Bank Jago" }, "deposit_to_name", `Account "Bank Jago" does not exist`},
		{"unknown invoice", func(m map[string]any) {
			m["records_attributes"] = []any{map[string]any{"transaction_no": "99999", "amount": 1}}
		}, "records_attributes", `Sales invoice "99999" does not exist`},
		{"emoji in memo", func(m map[string]any) { m["memo"] = "lunas 👍" }, "memo", MsgMemoEmoji},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := payment("pay-"+c.name, no, 1000)
			c.edit(body["receive_payment"].(map[string]any))
			a := e.post("receive_payments", body).want(t, http.StatusUnprocessableEntity)
			msgs, _ := a.obj(t, "errors")[c.field].([]any)
			if len(msgs) == 0 || msgs[0] != c.msg {
				t.Errorf("errors %s, want %s: %q", a.raw, c.field, c.msg)
			}
		})
	}
	if len(e.s.Payments()) != 0 {
		t.Error("an invalid payment was recorded")
	}
}

func TestDepositPaysAtCreation(t *testing.T) {
	e := newEnv(t, Options{})
	body := invoice("moka-1-p1")
	body["sales_invoice"].(map[string]any)["deposit"] = 50000
	body["sales_invoice"].(map[string]any)["deposit_to_name"] = "Kas"
	got := e.post("sales_invoices", body).want(t, http.StatusCreated).obj(t, "sales_invoice")
	if got["remaining"] != "0.0" || got["transaction_status"].(map[string]any)["name"] != "Paid" {
		t.Errorf("remaining %v status %v", got["remaining"], got["transaction_status"])
	}
}

func TestSalesReturnReversesInvoiceLines(t *testing.T) {
	e := newEnv(t, Options{})
	created := e.post("sales_invoices", invoice("moka-1-p1",
		map[string]any{"product_code": "KOPI-01", "quantity": 3, "rate": 25000, "discount": 10, "line_tax_name": "PB1"},
		map[string]any{"product_code": "PAS-02", "quantity": 1, "rate": 18500},
	)).want(t, http.StatusCreated).obj(t, "sales_invoice")
	ret := func(customID string, qty any) map[string]any {
		return map[string]any{"sales_return": map[string]any{
			"transaction_date": "2026-09-17", "sales_invoice_id": created["id"], "custom_id": customID,
			"memo": "refund", "transaction_lines_attributes": []any{map[string]any{"product_code": "KOPI-01", "quantity": qty}},
		}}
	}
	a := e.post("sales_returns", ret("moka-1-p1-r1", 1)).want(t, http.StatusCreated)
	// One unit at the invoice line's rate, discount and tax: 22500 + 2250.
	if got := a.obj(t, "sales_return")["original_amount"]; got != "24750.0" {
		t.Errorf("return total %v, want 24750.0", got)
	}
	e.post("sales_returns", ret("moka-1-p1-r1", 1)).want(t, http.StatusConflict)
	e.post("sales_returns", ret("moka-1-p1-r2", 3)).want(t, http.StatusUnprocessableEntity) // only 2 left
	e.post("sales_returns", ret("moka-1-p1-r2", 2)).want(t, http.StatusCreated)
	inv, _ := e.s.Invoice("moka-1-p1")
	// Total 67500 + 6750 + 18500 = 92750; returned 74250.
	if !inv.Total.Equal(dec("92750")) || !inv.Returned.Equal(dec("74250")) || !inv.Remaining.Equal(dec("18500")) {
		t.Errorf("invoice total %v returned %v remaining %v", inv.Total, inv.Returned, inv.Remaining)
	}
	rs := e.s.Returns()
	if len(rs) != 2 || rs[1].InvoiceCustomID != "moka-1-p1" || !rs[1].Total.Equal(dec("49500")) {
		t.Errorf("returns %+v", rs)
	}
	bad := ret("moka-1-p1-r3", 1)
	bad["sales_return"].(map[string]any)["sales_invoice_id"] = 424242
	a = e.post("sales_returns", bad).want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(a.raw, "does not exist") {
		t.Errorf("unknown invoice: %s", a.raw)
	}
}

func TestJournalEntry(t *testing.T) {
	e := newEnv(t, Options{})
	entry := func(customID string, debit, credit any) map[string]any {
		return map[string]any{"journal_entry": map[string]any{
			"transaction_date": "2026-09-16", "custom_id": customID, "memo": "Selisih kas",
			"transaction_account_lines_attributes": []any{
				map[string]any{"account_name": "Beban Lain-lain", "debit": debit},
				map[string]any{"account_name": "Kas", "credit": credit},
			},
		}}
	}
	a := e.post("journal_entries", entry("moka-1-adj", "1500.50", 1500.5)).want(t, http.StatusCreated)
	lines := a.obj(t, "journal_entry")["transaction_account_lines"].([]any)
	if acct := lines[1].(map[string]any)["account"].(map[string]any); acct["name"] != "Kas" || acct["number"] != "1-10001" {
		t.Errorf("line account %v", acct)
	}
	e.post("journal_entries", entry("moka-1-adj", 1, 1)).want(t, http.StatusConflict)
	a = e.post("journal_entries", entry("moka-1-adj2", 2, 1)).want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(a.raw, "Total debit must equal total credit") {
		t.Errorf("unbalanced: %s", a.raw)
	}
	js := e.s.JournalEntries()
	if len(js) != 1 || !js[0].TotalDebit.Equal(dec("1500.5")) {
		t.Errorf("journal entries %+v", js)
	}
	e.get("journal_entries/moka-1-adj").want(t, http.StatusOK)
	e.get("journal_entries/moka-1-nope").want(t, http.StatusUnprocessableEntity)
}
