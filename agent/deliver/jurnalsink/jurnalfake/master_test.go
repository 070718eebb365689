package jurnalfake

import (
	"fmt"
	"net/http"
	"testing"
)

func TestProductsSearchAndCreate(t *testing.T) {
	e := newEnv(t, Options{})
	list := func(q string) []any {
		t.Helper()
		return e.get("products?"+q).want(t, http.StatusOK).body["products"].([]any)
	}
	if n := len(list("product_code=kopi-01")); n != 1 {
		t.Errorf("by product_code: %d", n)
	}
	if n := len(list("name=Croissant")); n != 1 {
		t.Errorf("by name: %d", n)
	}
	if n := len(list("q=r")); n != 2 { // Croissant, Air Mineral
		t.Errorf("by q: %d", n)
	}
	if n := len(list("name=Teh+Tarik")); n != 0 {
		t.Errorf("missing: %d", n)
	}
	p := e.post("products", map[string]any{"product": map[string]any{
		"name": "Teh Tarik", "product_code": "TEH-03", "sell_price_per_unit": "15000", "unit_name": "Gelas",
		"product_categories_string": "Minuman, Teh",
	}}).want(t, http.StatusCreated).obj(t, "product")
	if p["sell_price_per_unit"] != "15000.0" || p["unit"].(map[string]any)["name"] != "Gelas" {
		t.Errorf("created %v", p)
	}
	e.get("products/"+jsonNumber(p["id"])).want(t, http.StatusOK)
	a := e.post("products", map[string]any{"product": map[string]any{"name": "teh tarik"}}).want(t, http.StatusUnprocessableEntity)
	if msgs := a.obj(t, "errors")["name"].([]any); msgs[0] != "Name has already been taken" {
		t.Errorf("duplicate name: %s", a.raw)
	}
	e.post("products", map[string]any{"product": map[string]any{"name": "Teh Manis", "product_code": "TEH-03"}}).
		want(t, http.StatusUnprocessableEntity)
	if got := e.s.Products(); len(got) != 4 || got[3].Category[1] != "Teh" || !got[3].SellPrice.Equal(dec("15000")) {
		t.Errorf("products %+v", got)
	}
	// The new product can be invoiced at once.
	e.post("sales_invoices", invoice("moka-1-p1", map[string]any{"product_code": "TEH-03", "quantity": 1, "rate": 15000})).
		want(t, http.StatusCreated)
}

func TestContactsSearchAndCreate(t *testing.T) {
	e := newEnv(t, Options{})
	if n := len(e.get("customers?q=umum").want(t, http.StatusOK).body["customers"].([]any)); n != 1 {
		t.Errorf("seeded walk-in contact found %d times", n)
	}
	e.post("customers", map[string]any{"customer": map[string]any{"display_name": "Kantor Maju"}}).want(t, http.StatusCreated)
	e.post("contacts", map[string]any{"contact": map[string]any{"display_name": "kantor maju"}}).want(t, http.StatusUnprocessableEntity)
	if n := len(e.get("contacts?display_name=Kantor+Maju").want(t, http.StatusOK).body["contacts"].([]any)); n != 1 {
		t.Errorf("created contact found %d times", n)
	}
	body := invoice("moka-1-p1")
	body["sales_invoice"].(map[string]any)["person_name"] = "Kantor Maju"
	e.post("sales_invoices", body).want(t, http.StatusCreated)
	if len(e.s.Contacts()) != 2 {
		t.Errorf("contacts %+v", e.s.Contacts())
	}
}

func TestMasterDataLists(t *testing.T) {
	e := newEnv(t, Options{Warehouses: []string{}})
	accounts := e.get("accounts").want(t, http.StatusOK).body["accounts"].([]any)
	if len(accounts) != len(DefaultAccounts) {
		t.Errorf("%d accounts", len(accounts))
	}
	if n := len(e.get("warehouses").want(t, http.StatusOK).body["warehouses"].([]any)); n != 0 {
		t.Errorf("Options.Warehouses empty, %d listed", n)
	}
	e.s.SeedWarehouse("Gudang Kemang")
	body := invoice("moka-1-p1")
	body["sales_invoice"].(map[string]any)["warehouse_name"] = "Gudang Kemang"
	e.post("sales_invoices", body).want(t, http.StatusCreated)
	e.s.SeedAccount(Account{Name: "Bank Jago", Number: "1-10010"})
	e.s.SeedPaymentMethod("GoPay")
	no := e.s.Invoices()[0].TransactionNo
	p := payment("moka-1-p1-pay", no, 50000)
	p["receive_payment"].(map[string]any)["deposit_to_name"] = "Bank Jago"
	p["receive_payment"].(map[string]any)["payment_method_name"] = "GoPay"
	e.post("receive_payments", p).want(t, http.StatusCreated)
}

// jsonNumber renders an id decoded from JSON.
func jsonNumber(v any) string {
	f, _ := v.(float64)
	return fmt.Sprint(int64(f))
}
