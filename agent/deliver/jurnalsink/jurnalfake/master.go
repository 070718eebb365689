package jurnalfake

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// ---- seeding and truth ----

// SeedProduct adds a product (its ID is assigned; Unit defaults to "Pcs")
// and returns it as stored. A product whose name is taken replaces nothing
// and is returned as it already was.
func (s *Server) SeedProduct(p Product) Product {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addProductLocked(p)
}

func (s *Server) addProductLocked(p Product) Product {
	if old, ok := s.master.productByName(p.Name); ok {
		return old
	}
	p.ID = s.newIDLocked()
	if p.Unit == "" {
		p.Unit = "Pcs"
	}
	p.Category = slices.Clone(p.Category)
	s.master.products = append(s.master.products, p)
	return p
}

// RenameProduct renames the product called name, as an accountant tidying
// the product list in Jurnal does: documents naming it by its old name are
// refused from then on ("Product "name" does not exist"). It reports
// whether there was such a product.
func (s *Server) RenameProduct(name, to string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.master.products {
		if s.master.products[i].Name == name {
			s.master.products[i].Name = to
			return true
		}
	}
	return false
}

// SeedContact adds a contact (customer) by display name.
func (s *Server) SeedContact(name string) Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addContactLocked(Contact{DisplayName: name})
}

func (s *Server) addContactLocked(c Contact) Contact {
	if old, ok := s.master.contact(c.DisplayName); ok {
		return old
	}
	c.ID = s.newIDLocked()
	s.master.contacts = append(s.master.contacts, c)
	return c
}

// SeedAccount adds an account (deposit accounts, journal lines).
func (s *Server) SeedAccount(a Account) Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addAccountLocked(a)
}

func (s *Server) addAccountLocked(a Account) Account {
	if old, ok := s.master.account(a.Name); ok {
		return old
	}
	a.ID = s.newIDLocked()
	s.master.accounts = append(s.master.accounts, a)
	return a
}

// SeedTax adds a tax lines may name (line_tax_name).
func (s *Server) SeedTax(t Tax) Tax {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addTaxLocked(t)
}

func (s *Server) addTaxLocked(t Tax) Tax {
	if old, ok := s.master.tax(t.Name); ok {
		return old
	}
	t.ID = s.newIDLocked()
	s.master.taxes = append(s.master.taxes, t)
	return t
}

// SeedWarehouse adds a warehouse invoices may name (warehouse_name).
func (s *Server) SeedWarehouse(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := containsName(s.master.warehouses, name); !ok {
		s.master.warehouses = append(s.master.warehouses, name)
	}
}

// SeedPaymentMethod adds a payment method (payment_method_name).
func (s *Server) SeedPaymentMethod(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := containsName(s.master.methods, name); !ok {
		s.master.methods = append(s.master.methods, name)
	}
}

// Products returns the products, in creation order.
func (s *Server) Products() []Product {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.master.clone().products
}

// Contacts returns the contacts, in creation order.
func (s *Server) Contacts() []Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.master.contacts)
}

// Accounts returns the chart of accounts.
func (s *Server) Accounts() []Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.master.accounts)
}

// ---- rendering ----

func renderProduct(p Product) map[string]any {
	cats := make([]map[string]string, 0, len(p.Category))
	for _, c := range p.Category {
		cats = append(cats, map[string]string{"name": c})
	}
	return map[string]any{
		"id":                                  p.ID,
		"name":                                p.Name,
		"product_code":                        p.Code,
		"sell_price_per_unit":                 money(p.SellPrice),
		"sell_price_per_unit_currency_format": currency(p.SellPrice),
		"unit":                                map[string]string{"name": p.Unit},
		"product_categories":                  cats,
		"is_sold":                             true,
		"archive":                             false,
	}
}

func renderContact(c Contact) map[string]any {
	return map[string]any{"id": c.ID, "display_name": c.DisplayName, "email": c.Email, "is_customer": true}
}

// page cuts a list by the page and page_size parameters (default 1 and 20,
// page_size at most 100) and returns the list envelope's counters.
func page[T any](items []T, q map[string][]string) ([]T, map[string]any) {
	get := func(k string, def int) int {
		if v := first(q, k); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return n
			}
		}
		return def
	}
	p, size := get("page", 1), min(get("page_size", 20), 100)
	total := len(items)
	pages := max(1, (total+size-1)/size)
	lo := min((p-1)*size, total)
	hi := min(lo+size, total)
	return items[lo:hi], map[string]any{"total_count": total, "current_page": p, "total_pages": pages}
}

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// filterMatchLocked is how a name or code filter matches: exactly (case
// aside), or as a substring with SetLooseFilters.
func (s *Server) filterMatchLocked() func(have, want string) bool {
	if s.looseFilters {
		return func(have, want string) bool { return strings.Contains(strings.ToLower(have), strings.ToLower(want)) }
	}
	return sameName
}

// ---- products ----

// listProducts: GET /products?q=&name=&product_code=&page=&page_size=. q
// matches a substring of the name or code (case-insensitive); name and
// product_code match exactly (case-insensitive), or as substrings with
// SetLooseFilters.
func (s *Server) listProducts(req *apiRequest) *response {
	q, name, code := strings.ToLower(first(req.query, "q")), first(req.query, "name"), first(req.query, "product_code")
	s.mu.Lock()
	match := s.filterMatchLocked()
	var found []map[string]any
	for _, p := range s.master.products {
		if q != "" && !strings.Contains(strings.ToLower(p.Name), q) && !strings.Contains(strings.ToLower(p.Code), q) {
			continue
		}
		if name != "" && !match(p.Name, name) {
			continue
		}
		if code != "" && !match(p.Code, code) {
			continue
		}
		found = append(found, renderProduct(p))
	}
	s.mu.Unlock()
	items, env := page(found, req.query)
	if items == nil {
		items = []map[string]any{}
	}
	env["products"] = items
	return jsonResponse(http.StatusOK, env)
}

func (s *Server) getProduct(key string) *response {
	id, err := strconv.ParseInt(key, 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		if p, ok := s.master.productByID(id); ok {
			return jsonResponse(http.StatusOK, map[string]any{"product": renderProduct(p)})
		}
	}
	return s.notFoundLocked()
}

// productBody is the body of POST /products.
type productBody struct {
	Product *struct {
		Name       string `json:"name"`
		Code       string `json:"product_code"`
		SellPrice  amount `json:"sell_price_per_unit"`
		Unit       string `json:"unit_name"`
		Categories string `json:"product_categories_string"`
	} `json:"product"`
}

func (s *Server) createProduct(req *apiRequest) *response {
	var b productBody
	if resp := decodeBody(req.body, &b); resp != nil {
		return resp
	}
	if b.Product == nil {
		return jurnalError(http.StatusBadRequest, "param is missing or the value is empty: product")
	}
	in := b.Product
	var errs fieldErrors
	name := strings.TrimSpace(in.Name)
	if name == "" {
		errs.add("name", "Name can't be blank")
	}
	checkLength(&errs, "name", "Name", name, StringLimit)
	checkLength(&errs, "product_code", "Product code", in.Code, StringLimit)
	if in.SellPrice.Bad || in.SellPrice.Value.IsNegative() {
		errs.add("sell_price_per_unit", "Sell price per unit is not a number")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.master.productByName(name); ok && name != "" {
		errs.add("name", "Name has already been taken")
	}
	if _, ok := s.master.productByCode(in.Code); ok {
		errs.add("product_code", "Product code has already been taken")
	}
	if !errs.empty() {
		req.log.Error = errs.first()
		return errs.response()
	}
	var cats []string
	for _, c := range strings.Split(in.Categories, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cats = append(cats, c)
		}
	}
	p := s.addProductLocked(Product{Name: name, Code: strings.TrimSpace(in.Code), SellPrice: in.SellPrice.Value,
		Unit: strings.TrimSpace(in.Unit), Category: cats})
	return jsonResponse(http.StatusCreated, map[string]any{"product": renderProduct(p)})
}

// ---- contacts ----

// envelope names the list and item keys of a contact path ("customers" or
// "contacts").
func envelope(resource string) (list, item string) {
	if resource == "contacts" {
		return "contacts", "contact"
	}
	return "customers", "customer"
}

// listContacts: GET /customers (or /contacts)?q=&display_name=. q matches a
// substring of the display name, display_name (or name) exactly; both
// case-insensitive.
func (s *Server) listContacts(req *apiRequest) *response {
	q := strings.ToLower(first(req.query, "q"))
	exact := first(req.query, "display_name")
	if exact == "" {
		exact = first(req.query, "name")
	}
	s.mu.Lock()
	match := s.filterMatchLocked()
	var found []map[string]any
	for _, c := range s.master.contacts {
		if q != "" && !strings.Contains(strings.ToLower(c.DisplayName), q) {
			continue
		}
		if exact != "" && !match(c.DisplayName, exact) {
			continue
		}
		found = append(found, renderContact(c))
	}
	s.mu.Unlock()
	items, env := page(found, req.query)
	if items == nil {
		items = []map[string]any{}
	}
	key, _ := envelope(req.segs[0])
	env[key] = items
	return jsonResponse(http.StatusOK, env)
}

func (s *Server) getContact(resource, key string) *response {
	_, item := envelope(resource)
	id, err := strconv.ParseInt(key, 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		for _, c := range s.master.contacts {
			if c.ID == id {
				return jsonResponse(http.StatusOK, map[string]any{item: renderContact(c)})
			}
		}
	}
	return s.notFoundLocked()
}

type contactFields struct {
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
}

func (s *Server) createContact(req *apiRequest) *response {
	var b struct {
		Customer *contactFields `json:"customer"`
		Contact  *contactFields `json:"contact"`
	}
	if resp := decodeBody(req.body, &b); resp != nil {
		return resp
	}
	in := b.Customer
	if in == nil {
		in = b.Contact
	}
	_, item := envelope(req.segs[0])
	if in == nil {
		return jurnalError(http.StatusBadRequest, "param is missing or the value is empty: "+item)
	}
	var errs fieldErrors
	name := strings.TrimSpace(in.DisplayName)
	if name == "" {
		errs.add("display_name", "Display name can't be blank")
	}
	checkLength(&errs, "display_name", "Display name", name, StringLimit)
	if containsEmoji(name) {
		errs.add("display_name", "Display name may not contain emoji")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.master.contact(name); ok && name != "" {
		errs.add("display_name", "Display name has already been taken")
	}
	if !errs.empty() {
		req.log.Error = errs.first()
		return errs.response()
	}
	c := s.addContactLocked(Contact{DisplayName: name, Email: strings.TrimSpace(in.Email)})
	return jsonResponse(http.StatusCreated, map[string]any{item: renderContact(c)})
}

// ---- other master data ----

// listMaster: GET /accounts, /taxes, /warehouses, /payment_methods.
func (s *Server) listMaster(resource string) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []map[string]any
	switch resource {
	case "accounts":
		for _, a := range s.master.accounts {
			items = append(items, map[string]any{"id": a.ID, "name": a.Name, "number": a.Number,
				"category": map[string]string{"name": a.Category}})
		}
	case "taxes":
		for _, t := range s.master.taxes {
			items = append(items, map[string]any{"id": t.ID, "name": t.Name, "rate": money(t.Rate)})
		}
	case "warehouses", "payment_methods":
		list := s.master.warehouses
		if resource == "payment_methods" {
			list = s.master.methods
		}
		for i, n := range list {
			items = append(items, map[string]any{"id": i + 1, "name": n})
		}
	default:
		return gatewayError(http.StatusNotFound, MsgNoRoute)
	}
	if items == nil {
		items = []map[string]any{}
	}
	return jsonResponse(http.StatusOK, map[string]any{resource: items})
}

// lineAmounts computes a line's amount and tax exactly: quantity × rate ×
// (100 − discount) / 100 and amount × rate / 100, each rounded to cents
// (half away from zero).
func lineAmounts(qty, rate, discount, taxRate decimal.Decimal) (amount, tax decimal.Decimal) {
	hundred := decimal.NewFromInt(100)
	amount = qty.Mul(rate).Mul(hundred.Sub(discount)).Div(hundred).Round(2)
	tax = amount.Mul(taxRate).Div(hundred).Round(2)
	return amount, tax
}

// mustFind is fmt-free sugar for "%s does not exist" messages.
func doesNotExist(kind, name string) string {
	return fmt.Sprintf("%s %q does not exist", kind, name)
}
