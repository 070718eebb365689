package jurnalfake

import (
	"net/http"
	"strings"
	"testing"
)

func TestInvoiceTotalsAreExact(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.post("sales_invoices", invoice("moka-1-p1",
		map[string]any{"product_code": "KOPI-01", "quantity": 3, "rate": 25000, "discount": 10},            // 67500
		map[string]any{"product_name": "croissant", "quantity": "2", "rate": "18500.50"},                   // 37001 (name is case-insensitive)
		map[string]any{"product_name": "Air Mineral", "quantity": 1, "rate": 8000, "line_tax_name": "PB1"}, // 8000 + 800
		map[string]any{"product_code": "PAS-02", "quantity": 0.5, "rate": 3333.33, "discount": "12.5"},     // 1458.33 (1458.331875)
	)).want(t, http.StatusCreated)
	got := a.obj(t, "sales_invoice")
	if got["original_amount"] != "114759.33" || got["subtotal"] != "113959.33" || got["tax_amount"] != "800.0" {
		t.Errorf("amounts %v / %v / %v, want 114759.33 / 113959.33 / 800.0", got["original_amount"], got["subtotal"], got["tax_amount"])
	}
	if got["original_amount_currency_format"] != "Rp. 114.759,33" {
		t.Errorf("currency format %v", got["original_amount_currency_format"])
	}
	if got["transaction_date"] != "16/09/2026" {
		t.Errorf("transaction_date %v, want DD/MM/YYYY", got["transaction_date"])
	}
	inv, ok := e.s.Invoice("moka-1-p1")
	if !ok {
		t.Fatal("invoice not recorded")
	}
	if !inv.Total.Equal(dec("114759.33")) || !inv.Remaining.Equal(inv.Total) || len(inv.Lines) != 4 {
		t.Errorf("recorded total %v remaining %v lines %d", inv.Total, inv.Remaining, len(inv.Lines))
	}
	if inv.Lines[1].ProductName != "Croissant" || !inv.Lines[1].Amount.Equal(dec("37001")) {
		t.Errorf("line 2: %+v", inv.Lines[1])
	}
	if inv.TransactionDate != "2026-09-16" || inv.Tags[0] != "Kemang" || inv.CustomID != "moka-1-p1" {
		t.Errorf("header: %+v", inv)
	}
}

func TestRepeatedCustomIDIs409WithTheExistingID(t *testing.T) {
	e := newEnv(t, Options{})
	first := e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusCreated).obj(t, "sales_invoice")
	a := e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusConflict)
	if a.body["id"] != first["id"] || a.body["errors"] != MsgDuplicateCustomID {
		t.Errorf("409 body %s, want id %v", a.raw, first["id"])
	}
	if n := len(e.s.Invoices()); n != 1 {
		t.Errorf("%d invoices, want 1", n)
	}
}

func TestGetInvoiceByCustomIDAndNotFound(t *testing.T) {
	e := newEnv(t, Options{})
	created := e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusCreated).obj(t, "sales_invoice")
	for _, key := range []string{"moka-1-p1", created["transaction_no"].(string)} {
		got := e.get("sales_invoices/"+key).want(t, http.StatusOK).obj(t, "sales_invoice")
		if got["id"] != created["id"] {
			t.Errorf("GET %s: id %v, want %v", key, got["id"], created["id"])
		}
	}
	a := e.get("sales_invoices/moka-1-p2").want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(strings.ToLower(a.raw), "not found") {
		t.Errorf("422 without \"not found\": %s", a.raw)
	}
	e.s.SetNotFoundStatus(http.StatusNotFound)
	e.get("sales_invoices/moka-1-p2").want(t, http.StatusNotFound)
}

// A '#' in a custom_id breaks both halves of idempotency, as seen live:
// two invoices with one custom_id, and a lookup that finds neither.
func TestHashInCustomIDBreaksUniquenessAndLookup(t *testing.T) {
	e := newEnv(t, Options{})
	e.post("sales_invoices", invoice("shop-#10892")).want(t, http.StatusCreated)
	e.post("sales_invoices", invoice("shop-#10892")).want(t, http.StatusCreated)
	if n := len(e.s.Invoices()); n != 2 {
		t.Errorf("%d invoices, want the duplicate", n)
	}
	e.get("sales_invoices/shop-%2310892").want(t, http.StatusNotFound)
}

func TestBatchCreateDoesNotDeduplicate(t *testing.T) {
	e := newEnv(t, Options{})
	e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusCreated)
	batch := map[string]any{"sales_invoices": []any{invoice("moka-1-p1"), invoice("moka-1-p2")["sales_invoice"], invoice("moka-1-p2")}}
	a := e.post("sales_invoices/batch_create", batch).want(t, http.StatusOK)
	if n := len(a.body["sales_invoices"].([]any)); n != 3 {
		t.Errorf("batch created %d, want 3", n)
	}
	byID := map[string]int{}
	for _, inv := range e.s.Invoices() {
		byID[inv.CustomID]++
	}
	if byID["moka-1-p1"] != 2 || byID["moka-1-p2"] != 2 {
		t.Errorf("invoices per custom_id %v, want the duplicates", byID)
	}
}

func TestInvoiceValidation(t *testing.T) {
	e := newEnv(t, Options{})
	long := strings.Repeat("x", AddressLimit+1)
	cases := []struct {
		name  string
		edit  func(inv map[string]any)
		field string
		msg   string
	}{
		{"emoji in memo", func(m map[string]any) { m["memo"] = "Thanks! ☕😀" }, "memo", MsgMemoEmoji},
		{"address too long", func(m map[string]any) { m["address"] = long }, "address", "Address is too long (maximum is 250 characters)"},
		{"memo too long", func(m map[string]any) { m["memo"] = strings.Repeat("m", MemoLimit+1) }, "memo", "Memo is too long (maximum is 1000 characters)"},
		{"custom_id too long", func(m map[string]any) { m["custom_id"] = strings.Repeat("c", StringLimit+1) }, "custom_id", "Custom id is too long (maximum is 255 characters)"},
		{"unknown contact", func(m map[string]any) { m["person_name"] = "Budi" }, "person_name", `Contact "Budi" does not exist`},
		{"no contact", func(m map[string]any) { delete(m, "person_name") }, "person_name", "Person name can't be blank"},
		{"unknown product name", func(m map[string]any) {
			m["transaction_lines_attributes"] = []any{map[string]any{"product_name": "Teh Tarik", "quantity": 1, "rate": 1}}
		}, "transaction_lines_attributes", `Product "Teh Tarik" does not exist`},
		{"unknown product code", func(m map[string]any) {
			m["transaction_lines_attributes"] = []any{map[string]any{"product_code": "NOPE", "product_name": "Croissant", "quantity": 1, "rate": 1}}
		}, "transaction_lines_attributes", `Product code "NOPE" does not exist`},
		{"discount over 100 %", func(m map[string]any) {
			m["transaction_lines_attributes"] = []any{map[string]any{"product_code": "KOPI-01", "quantity": 1, "rate": 125000, "discount": 125000}}
		}, "transaction_lines_attributes", MsgDiscountTooLarge},
		{"quantity not a number", func(m map[string]any) {
			m["transaction_lines_attributes"] = []any{map[string]any{"product_code": "KOPI-01", "quantity": "dua", "rate": 1}}
		}, "transaction_lines_attributes", "Quantity must be greater than 0"},
		{"no rate", func(m map[string]any) {
			m["transaction_lines_attributes"] = []any{map[string]any{"product_code": "KOPI-01", "quantity": 1}}
		}, "transaction_lines_attributes", "Rate can't be blank"},
		{"unknown tax", func(m map[string]any) {
			m["transaction_lines_attributes"] = []any{map[string]any{"product_code": "KOPI-01", "quantity": 1, "rate": 1, "line_tax_name": "VAT"}}
		}, "transaction_lines_attributes", `Tax "VAT" does not exist`},
		{"bad date", func(m map[string]any) { m["transaction_date"] = "2026-13-01" }, "transaction_date", "Transaction date is invalid"},
		{"unknown warehouse", func(m map[string]any) { m["warehouse_name"] = "Gudang Bali" }, "warehouse_name", `Warehouse "Gudang Bali" does not exist`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := invoice("moka-v-" + string(rune('a'+i)))
			c.edit(body["sales_invoice"].(map[string]any))
			a := e.post("sales_invoices", body).want(t, http.StatusUnprocessableEntity)
			msgs, _ := a.obj(t, "errors")[c.field].([]any)
			if len(msgs) == 0 || msgs[0] != c.msg {
				t.Errorf("errors %s, want %s: %q", a.raw, c.field, c.msg)
			}
		})
	}
	if n := len(e.s.Invoices()); n != 0 {
		t.Errorf("%d invalid invoices created", n)
	}
}

func TestRejectCustomIDKnob(t *testing.T) {
	e := newEnv(t, Options{})
	e.s.RejectCustomID("moka-1-p1", "Tanggal transaksi sudah dikunci")
	a := e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(a.raw, "Tanggal transaksi sudah dikunci") {
		t.Errorf("body %s", a.raw)
	}
	e.s.RejectCustomID("moka-1-p1", "")
	e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusCreated)
}

// Numbers a client chose are skipped by the automatic numbering, and a
// taken number is refused.
func TestTransactionNumbers(t *testing.T) {
	e := newEnv(t, Options{})
	body := invoice("moka-1-p1")
	body["sales_invoice"].(map[string]any)["transaction_no"] = "10001"
	e.post("sales_invoices", body).want(t, http.StatusCreated)
	got := e.post("sales_invoices", invoice("moka-1-p2")).want(t, http.StatusCreated).obj(t, "sales_invoice")
	if got["transaction_no"] != "10002" {
		t.Errorf("automatic number %v, want 10002", got["transaction_no"])
	}
	body = invoice("moka-1-p3")
	body["sales_invoice"].(map[string]any)["transaction_no"] = "10002"
	a := e.post("sales_invoices", body).want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(a.raw, "Transaction no has already been taken") {
		t.Errorf("taken number: %s", a.raw)
	}
	list := e.get("sales_invoices?sort_order=asc&page_size=1&page=2").want(t, http.StatusOK)
	if items := list.body["sales_invoices"].([]any); len(items) != 1 || items[0].(map[string]any)["custom_id"] != "moka-1-p2" ||
		list.body["total_pages"] != float64(2) {
		t.Errorf("list page 2: %s", list.raw)
	}
}
