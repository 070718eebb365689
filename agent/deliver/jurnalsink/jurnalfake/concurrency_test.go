package jurnalfake

import (
	"net/http"
	"sync"
	"testing"
)

// Concurrent creates of one custom_id: exactly one invoice, the others 409
// naming it.
func TestConcurrentCreatesOfOneCustomID(t *testing.T) {
	e := newEnv(t, Options{})
	const n = 8
	statuses := make([]int, n)
	ids := make([]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := e.post("sales_invoices", invoice("moka-1-p1"))
			statuses[i] = a.status
			if a.status == http.StatusCreated {
				ids[i] = a.obj(t, "sales_invoice")["id"]
			} else {
				ids[i] = a.body["id"]
			}
		}()
	}
	wg.Wait()
	created := 0
	for i, st := range statuses {
		switch st {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Errorf("request %d: status %d", i, st)
		}
		if ids[i] != ids[0] {
			t.Errorf("request %d names invoice %v, request 0 %v", i, ids[i], ids[0])
		}
	}
	if created != 1 || len(e.s.Invoices()) != 1 {
		t.Errorf("%d created answers, %d invoices; want 1", created, len(e.s.Invoices()))
	}
}

// The truth reconciles: what was invoiced, paid and returned adds up to
// what the answers said.
func TestTruthReconciles(t *testing.T) {
	e := newEnv(t, Options{})
	want := dec("0")
	for i, qty := range []string{"1", "2", "3"} {
		a := e.post("sales_invoices", invoice("moka-1-s"+qty,
			map[string]any{"product_code": "KOPI-01", "quantity": qty, "rate": "25000", "line_tax_name": "PB1"})).
			want(t, http.StatusCreated).obj(t, "sales_invoice")
		want = want.Add(dec(a["original_amount"].(string)))
		e.post("receive_payments", payment("moka-1-s"+qty+"-pay", a["transaction_no"].(string), a["original_amount"])).
			want(t, http.StatusCreated)
		if i == 2 {
			e.post("sales_returns", map[string]any{"sales_return": map[string]any{
				"transaction_date": "2026-09-16", "sales_invoice_id": a["id"], "custom_id": "moka-1-s3-void",
				"transaction_lines_attributes": []any{map[string]any{"product_code": "KOPI-01", "quantity": 3}},
			}}).want(t, http.StatusCreated)
		}
	}
	invoiced, paid, returned := dec("0"), dec("0"), dec("0")
	for _, inv := range e.s.Invoices() {
		invoiced = invoiced.Add(inv.Total)
	}
	for _, p := range e.s.Payments() {
		paid = paid.Add(p.Total)
	}
	for _, r := range e.s.Returns() {
		returned = returned.Add(r.Total)
	}
	// 6 × 25000 × 1.1 = 165000 invoiced and paid; the 3-cup sale returned.
	if !invoiced.Equal(want) || !invoiced.Equal(dec("165000")) || !paid.Equal(invoiced) || !returned.Equal(dec("82500")) {
		t.Errorf("invoiced %v (answers %v), paid %v, returned %v", invoiced, want, paid, returned)
	}
}
