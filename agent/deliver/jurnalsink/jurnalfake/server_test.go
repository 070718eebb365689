package jurnalfake

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// New listens at once, like httptest.NewServer; Close stops it.
func TestNewListensAtOnce(t *testing.T) {
	s := New(Options{})
	url := s.URL()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("URL %q", url)
	}
	resp, err := http.Get(url + APIPrefix + "products")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned request: %d", resp.StatusCode)
	}
	s.Close()
	if resp, err := http.Get(url + APIPrefix + "products"); err == nil {
		resp.Body.Close()
		t.Error("closed server answered")
	}
}

func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, Options{})
	cases := []struct {
		name   string
		method string
		path   string
		body   []byte
		status int
	}{
		{"not JSON", http.MethodPost, "sales_invoices", []byte(`{"sales_invoice":`), http.StatusBadRequest},
		{"no envelope", http.MethodPost, "sales_invoices", []byte(`{"transaction_date":"2026-09-16"}`), http.StatusBadRequest},
		{"empty body", http.MethodPost, "receive_payments", nil, http.StatusBadRequest},
		{"wrong type", http.MethodPost, "journal_entries", []byte(`{"journal_entry":{"memo":5}}`), http.StatusBadRequest},
		{"method not allowed", http.MethodDelete, "sales_invoices/1", nil, http.StatusMethodNotAllowed},
		{"too large", http.MethodPost, "sales_invoices", bytes.Repeat([]byte(" "), maxBodyBytes+1), http.StatusRequestEntityTooLarge},
		{"batch of invalid invoices", http.MethodPost, "sales_invoices/batch_create",
			[]byte(`{"sales_invoices":[{"person_name":"Budi"}]}`), http.StatusUnprocessableEntity},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.callRaw(c.method, c.path, c.body, nil).want(t, c.status)
		})
	}
	if len(e.s.Invoices())+len(e.s.Payments())+len(e.s.JournalEntries()) != 0 {
		t.Error("a malformed request created a document")
	}
}
