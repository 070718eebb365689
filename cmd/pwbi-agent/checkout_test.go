package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/checkout/mokkafake"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// The Mokka checkout gateway through the real binary, against the fake
// Mokka: the seed's test scenarios (registration, checkout with an existing
// and a new customer, cancel, return, the special phone numbers), tablet
// tokens added and removed with the CLI while the agent runs, callbacks,
// failures, and what reaches the upstream and the logs.

const firstTabletToken = "pwbt_e2e-first-tablet-0123456789abcdefghijklmnopq"

var tokenRE = regexp.MustCompile(`pwbt_[A-Za-z0-9_-]{43}`)

type checkoutEnv struct {
	*testEnv
	fake *mokkafake.Server
	addr string // checkout.listen
}

func newCheckoutEnv(t *testing.T) *checkoutEnv {
	t.Helper()
	fake := mokkafake.NewServer(t, mokkafake.Options{StoreID: "store-e2e", SecretKey: "e2e-mokka-secret-key-0f3a9c"})
	addr := testutil.FreeAddr(t)
	sum := sha256.Sum256([]byte(firstTabletToken))
	e := newEnvWith(t, fmt.Sprintf(`[moka]
enabled = false
[checkout]
enabled = true
listen = %q
base_url = %q
store_id = %q
secret_key_file = "mokka.key"
timeout = "3s"
[[checkout.tablets]]
name = "Front counter"
token_sha256 = %q
`, addr, fake.URL(), fake.StoreID(), hex.EncodeToString(sum[:])))
	if err := os.WriteFile(filepath.Join(e.dir, "mokka.key"), []byte(fake.SecretKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &checkoutEnv{testEnv: e, fake: fake, addr: addr}
}

func (c *checkoutEnv) gen(t *testing.T) uint64 {
	t.Helper()
	st, err := c.status(t)
	if err != nil {
		t.Fatal(err)
	}
	return st.Config.Generation
}

// tablet calls the gateway like a tablet.
func (c *checkoutEnv) tablet(t *testing.T, method, path, token, contentType string, body io.Reader) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+c.addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func (c *checkoutEnv) call(t *testing.T, method, body string) (int, map[string]any) {
	t.Helper()
	return c.tablet(t, http.MethodPost, "/mokka/"+method, firstTabletToken, "application/json", strings.NewReader(body))
}

func mokkaCode(m map[string]any) int {
	if f, ok := m["status"].(float64); ok {
		return int(f)
	}
	if meta, ok := m["meta"].(map[string]any); ok {
		if f, ok := meta["status"].(float64); ok {
			return int(f)
		}
	}
	return -1
}

func (c *checkoutEnv) mustOK(t *testing.T, what, method, body string) map[string]any {
	t.Helper()
	st, m := c.call(t, method, body)
	if st != 200 || mokkaCode(m) != 0 {
		t.Fatalf("%s: HTTP %d %v", what, st, m)
	}
	return m
}

// Customer data the agent must never log or forward.
const (
	custEmail = "agnieszka.wojcik@example.pl"
	custFirst = "Agnieszka"
	custLast  = "Wójcik-Łęcka"
	custBirth = "15.01.1975"
)

func (c *checkoutEnv) checkoutBody(orderID, amount, phone string) string {
	return fmt.Sprintf(`{"terms_url":"https://mokka.pl/landings/demostore/","callback_url":"http://%s/mokka/callback",`+
		`"redirect_url":"https://cafe.example/back","authorized_client":true,"primary_phone":%q,"primary_email":%q,`+
		`"current_order":{"order_id":%q,"amount":%q,"valid_till":"21.07.2030 12:08:01+02:00"},`+
		`"person":{"first_name":%q,"surname":%q,"patronymic":"","birth_date":%q},`+
		`"cart_items":[{"sku":"KOPI-1","name":"Es Kopi Susu — duża","price":%s,"quantity":1,"category":"Kawa"}]}`,
		c.addr, phone, custEmail, orderID, amount, custFirst, custLast, custBirth, amount)
}

// order is the gateway's view of an order (GET /mokka/orders/{id}).
func (c *checkoutEnv) order(t *testing.T, id string) map[string]any {
	t.Helper()
	st, m := c.tablet(t, http.MethodGet, "/mokka/orders/"+id, firstTabletToken, "", nil)
	if st != 200 {
		return nil
	}
	o, _ := m["order"].(map[string]any)
	return o
}

func (c *checkoutEnv) waitState(t *testing.T, id, state string) map[string]any {
	t.Helper()
	var o map[string]any
	testutil.WaitFor(t, "order "+id+" "+state, 30*time.Second, func() bool {
		o = c.order(t, id)
		return o != nil && o["state"] == state
	})
	return o
}

func (c *checkoutEnv) complete(t *testing.T, id, phone string) {
	t.Helper()
	cb, err := c.fake.Complete(id, phone)
	if err != nil {
		t.Fatal(err)
	}
	if cb.HTTPStatus != 200 {
		t.Fatalf("the agent answered the callback for %s with %d (%s)", id, cb.HTTPStatus, cb.Err)
	}
}

func (c *checkoutEnv) finish(t *testing.T, id, amount string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("body", fmt.Sprintf(`{"order_id":%q,"amount":%q,"check_number":"PAR-%s"}`, id, amount, id))
	fw, _ := mw.CreateFormFile("check", "check.pdf")
	fw.Write([]byte("%PDF-1.4\n% receipt " + id + "\n%%EOF\n"))
	mw.Close()
	st, m := c.tablet(t, http.MethodPost, "/mokka/factoring/v1/precheck/finish", firstTabletToken, mw.FormDataContentType(), &buf)
	if st != 200 || mokkaCode(m) != 0 {
		t.Fatalf("finish %s: HTTP %d %v", id, st, m)
	}
	if o, _ := c.fake.Order(id); o.Status != "finished" || !strings.HasPrefix(string(o.Receipt), "%PDF") {
		t.Fatalf("fake after finish: %+v", o)
	}
}

func TestCheckoutGateway(t *testing.T) {
	c := newCheckoutEnv(t)
	p := c.start(t)
	testutil.WaitFor(t, "checkout gateway up", 60*time.Second, func() bool {
		st, _ := c.tablet(t, http.MethodGet, "/mokka/orders/none", firstTabletToken, "", nil)
		return st == 404
	})
	st, err := c.status(t)
	if err != nil || !st.Checkout.Enabled || st.Checkout.Listen != c.addr {
		t.Fatalf("status: %v %+v", err, st.Checkout)
	}

	t.Run("tablets without the right token never reach Mokka", func(t *testing.T) {
		for _, tok := range []string{"", "wrong-token", firstTabletToken[:20]} {
			st, m := c.tablet(t, http.MethodPost, "/mokka/factoring/v1/status", tok, "application/json", strings.NewReader(`{"order_id":"X"}`))
			if st != 401 || mokkaCode(m) != 401 {
				t.Errorf("token %q: HTTP %d %v", tok, st, m)
			}
		}
		if n := len(c.fake.Requests()); n != 0 {
			t.Fatalf("Mokka got %d requests", n)
		}
	})

	t.Run("invalid requests are answered locally", func(t *testing.T) {
		for _, tc := range []struct {
			method, body string
			code         int
		}{
			{"factoring/v1/status", `{"order_id":`, 10},
			{"factoring/v1/precheck/cancel", `{}`, 20},
			{"factoring/v1/return", `{"order_id":"A","amount":"10.505"}`, 30},
			{"factoring/v1/precheck/auth", strings.Replace(c.checkoutBody("V1", "10.00", "333000001"), `"valid_till"`, `"prepayment_amount":"5,00","valid_till"`, 1), 31},
			{"factoring/v1/precheck/auth", strings.Replace(c.checkoutBody("V1", "10.00", "333000001"), `"callback_url"`, `"callback"`, 1), 40},
			{"factoring/v1/limit/auth", `{"callback_url":"https://a/b","current_order":{"order_id":"R"}}`, 41},
		} {
			st, m := c.call(t, tc.method, tc.body)
			if st != 400 || mokkaCode(m) != tc.code {
				t.Errorf("%s: HTTP %d %v, want code %d", tc.method, st, m, tc.code)
			}
		}
		if st, _ := c.tablet(t, http.MethodPost, "/mokka/factoring/v1/nothing", firstTabletToken, "application/json", strings.NewReader(`{}`)); st != 404 {
			t.Errorf("unknown method: %d", st)
		}
		if n := len(c.fake.Requests()); n != 0 {
			t.Fatalf("Mokka got %d requests", n)
		}
	})

	t.Run("registration", func(t *testing.T) {
		// Seed: +7 (888) 22XXXXX gets a limit, 221XXXX does not.
		for _, tc := range []struct{ id, phone, decision, limitStatus string }{
			{"REG-OK", "8882255555", "approved", "active"},
			{"REG-NO", "8882211234", "declined", "inactive"},
		} {
			body := fmt.Sprintf(`{"terms_url":"https://mokka.pl/t","callback_url":"http://%s/mokka/callback","redirect_url":"https://cafe.example/back",`+
				`"authorized_client":true,"primary_phone":%q,"primary_email":%q,"current_order":{"order_id":%q},`+
				`"person":{"first_name":%q,"surname":%q,"patronymic":"","birth_date":%q}}`,
				c.addr, tc.phone, custEmail, tc.id, custFirst, custLast, custBirth)
			m := c.mustOK(t, "registration "+tc.id, "factoring/v1/limit/auth", body)
			if u, _ := m["iframe_url"].(string); !strings.Contains(u, "/form/v1/") {
				t.Fatalf("iframe_url %v", m["iframe_url"])
			}
			c.complete(t, tc.id, "")
			if o, _ := c.fake.Order(tc.id); o.Decision != tc.decision {
				t.Fatalf("%s: decision %q", tc.id, o.Decision)
			}
			m = c.mustOK(t, "limit", "api/external/v1/client/limit", fmt.Sprintf(`{"client":{"mobile_phone":%q}}`, tc.phone))
			cl, _ := m["client"].(map[string]any)
			if cl["status"] != tc.limitStatus {
				t.Fatalf("%s: limit %v", tc.id, cl)
			}
		}
	})

	t.Run("checkout with an existing customer", func(t *testing.T) {
		c.mustOK(t, "checkout", "factoring/v1/precheck/auth", c.checkoutBody("ORD-EXIST", "5000.00", "8882255555"))
		if o := c.order(t, "ORD-EXIST"); o == nil || o["state"] != "pending" || o["tablet"] != "Front counter" {
			t.Fatalf("tracked order %v", o)
		}
		c.complete(t, "ORD-EXIST", "")
		o := c.waitState(t, "ORD-EXIST", "hold")
		if o["decision"] != "approved" || o["amount"] != "5000.00" || o["callbacks"] != float64(1) {
			t.Fatalf("order %v", o)
		}
		c.finish(t, "ORD-EXIST", "5000.00")
		c.waitState(t, "ORD-EXIST", "finished")
	})

	t.Run("checkout with a new customer", func(t *testing.T) {
		c.mustOK(t, "checkout", "factoring/v1/precheck/auth", c.checkoutBody("ORD-NEW", "1250.50", ""))
		c.complete(t, "ORD-NEW", "333 000 002")
		c.waitState(t, "ORD-NEW", "hold")
		m := c.mustOK(t, "schedule", "factoring/v1/schedule", `{"amount":"1250.50"}`)
		if _, ok := m["payment_schedule"].([]any); !ok {
			t.Fatalf("schedule %v", m)
		}
		c.finish(t, "ORD-NEW", "1250.50")
		c.waitState(t, "ORD-NEW", "finished")
	})

	t.Run("cancel", func(t *testing.T) {
		c.mustOK(t, "checkout", "factoring/v1/precheck/auth", c.checkoutBody("ORD-CANCEL", "300.00", "333000003"))
		c.complete(t, "ORD-CANCEL", "")
		c.waitState(t, "ORD-CANCEL", "hold")
		c.mustOK(t, "cancel", "factoring/v1/precheck/cancel", `{"order_id":"ORD-CANCEL"}`)
		m := c.mustOK(t, "status", "factoring/v1/status", `{"order_id":"ORD-CANCEL"}`)
		co, _ := m["current_order"].(map[string]any)
		if co["decision"] != "approved" || co["status"] != "canceled" {
			t.Fatalf("status after cancel: %v", co)
		}
		c.waitState(t, "ORD-CANCEL", "canceled")
	})

	t.Run("return", func(t *testing.T) {
		c.mustOK(t, "return", "factoring/v1/return", `{"order_id":"ORD-NEW","amount":"1250.50"}`)
		m := c.mustOK(t, "status", "factoring/v1/status", `{"order_id":"ORD-NEW"}`)
		co, _ := m["current_order"].(map[string]any)
		if co["decision"] != "approved" || co["status"] != "refunded" {
			t.Fatalf("status after return: %v", co)
		}
		o := c.waitState(t, "ORD-NEW", "refunded")
		if o["returned_amount"] != "1250.50" {
			t.Fatalf("order %v", o)
		}
	})

	t.Run("special phone numbers", func(t *testing.T) {
		for _, tc := range []struct{ id, phone, decision string }{
			{"ORD-BLOCKED", "333 123 610", "declined"},
			{"ORD-NOLIMIT", "333 123 630", "approved"},
			{"ORD-OVERDUE", "333 123 681", "declined"},
		} {
			c.mustOK(t, "checkout", "factoring/v1/precheck/auth", c.checkoutBody(tc.id, "900.00", tc.phone))
			c.complete(t, tc.id, "")
			if o := c.waitState(t, tc.id, "declined"); o["decision"] != tc.decision {
				t.Errorf("%s: decision %v", tc.id, o["decision"])
			}
		}
	})

	t.Run("forged callbacks change nothing", func(t *testing.T) {
		c.mustOK(t, "checkout", "factoring/v1/precheck/auth", c.checkoutBody("ORD-FORGED", "100.00", "333000004"))
		body := `{"order_id":"ORD-FORGED","decision":"approved","amount":"100.00"}`
		post := func(q, body string) int {
			t.Helper()
			resp, err := http.Post("http://"+c.addr+"/mokka/callback"+q, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		// A wrong signature is refused.
		for _, q := range []string{"?signature=" + strings.Repeat("ab", 20), "?signature=nothex"} {
			if st := post(q, body); st != 403 {
				t.Errorf("callback %q: HTTP %d", q, st)
			}
		}
		// No signature: Mokka may send none, so it is a hint, answered
		// 200, only ever confirmed with Status, which says pending.
		statusBefore := len(c.fake.RequestsFor("factoring/v1/status"))
		for _, q := range []string{"", "?signature="} {
			if st := post(q, body); st != 200 {
				t.Errorf("unsigned callback %q: HTTP %d", q, st)
			}
		}
		testutil.WaitFor(t, "the hint checked with Status", 30*time.Second, func() bool {
			for _, r := range c.fake.RequestsFor("factoring/v1/status")[statusBefore:] {
				if strings.Contains(string(r.Body), "ORD-FORGED") {
					return true
				}
			}
			return false
		})
		if o := c.order(t, "ORD-FORGED"); o["state"] != "pending" || o["callbacks"] != nil || o["decision"] != nil {
			t.Fatalf("order after forged callbacks: %v", o)
		}
		// An unsigned hint about an order the agent does not track costs
		// nothing: no Status call, no adoption.
		if st := post("", `{"order_id":"ORD-NOT-OURS","decision":"approved"}`); st != 200 {
			t.Errorf("hint about an unknown order: HTTP %d", st)
		}
		if st, _ := c.tablet(t, http.MethodGet, "/mokka/orders/ORD-NOT-OURS", firstTabletToken, "", nil); st != 404 {
			t.Errorf("unknown order adopted: HTTP %d", st)
		}
		for _, r := range c.fake.RequestsFor("factoring/v1/status") {
			if strings.Contains(string(r.Body), "ORD-NOT-OURS") {
				t.Fatal("an unsigned hint made the agent look up an unknown order")
			}
		}
	})

	t.Run("unsigned callbacks from Mokka", func(t *testing.T) {
		c.fake.SetUnsignedCallbacks(true)
		defer c.fake.SetUnsignedCallbacks(false)
		c.mustOK(t, "checkout", "factoring/v1/precheck/auth", c.checkoutBody("ORD-UNSIGNED", "450.00", "333000005"))
		cb, err := c.fake.Complete("ORD-UNSIGNED", "")
		if err != nil || cb.HTTPStatus != 200 || cb.Signature != "" {
			t.Fatalf("unsigned callback: %v %+v", err, cb)
		}
		o := c.waitState(t, "ORD-UNSIGNED", "hold")
		if o["decision"] != "approved" || o["callbacks"] != nil || o["callback_receipts"] != nil {
			t.Fatalf("order %v", o)
		}
		c.mustOK(t, "cancel", "factoring/v1/precheck/cancel", `{"order_id":"ORD-UNSIGNED"}`)
		c.waitState(t, "ORD-UNSIGNED", "canceled")
	})

	t.Run("Mokka's number and date forms", func(t *testing.T) {
		// The docs' own Checkout example: amounts as JSON numbers with one
		// decimal (51000.0), valid_till as dd.mm.yyyy hh:mm:ss+hh:mm.
		body := mokkafake.DocsCheckoutRequest("http://" + c.addr + "/mokka/callback")
		c.mustOK(t, "docs example", "factoring/v1/precheck/auth", body)
		reqs := c.fake.RequestsFor("factoring/v1/precheck/auth")
		if got := string(reqs[len(reqs)-1].Body); got != body {
			t.Fatalf("Mokka got other bytes than the tablet sent:\n%s", got)
		}
		if o := c.order(t, "120R"); o["amount"] != "51000.00" || o["prepayment_amount"] != "1000.00" {
			t.Fatalf("order %v", o)
		}
		c.mustOK(t, "cancel", "factoring/v1/precheck/cancel", `{"order_id":"120R"}`)
		// The Bitrix plugin's integer amount, an RFC 3339 valid_till.
		bitrix := fmt.Sprintf(`{"callback_url":"http://%s/mokka/callback","redirect_url":"https://cafe.example/back",`+
			`"current_order":{"order_id":"bx1:65f0c2","amount":300,"valid_till":"2030-07-21T12:08:01+07:00"}}`, c.addr)
		c.mustOK(t, "bitrix form", "factoring/v1/precheck/auth", bitrix)
		if o := c.order(t, "bx1:65f0c2"); o["amount"] != "300.00" {
			t.Fatalf("order %v", o)
		}
		c.mustOK(t, "cancel", "factoring/v1/precheck/cancel", `{"order_id":"bx1:65f0c2"}`)
		c.waitState(t, "120R", "canceled")
		c.waitState(t, "bx1:65f0c2", "canceled")
		// What Mokka refuses is still refused, before Mokka.
		calls := len(c.fake.Requests())
		for _, tc := range []struct {
			from, to string
			code     int
		}{
			{`"amount":300`, `"amount":10.005`, 30}, {`"amount":300`, `"amount":"300,00"`, 30},
			{`"amount":300`, `"amount":-300`, 30}, {`"amount":300`, `"amount":3e2`, 30}, {`"amount":300`, `"amount":0`, 30},
			{`"2030-07-21T12:08:01+07:00"`, `"21.07.2030 12:08"`, 110}, {`"2030-07-21T12:08:01+07:00"`, `"2030-07-21 12:08:01"`, 110},
		} {
			st, m := c.call(t, "factoring/v1/precheck/auth", strings.Replace(bitrix, tc.from, tc.to, 1))
			if st != 400 || mokkaCode(m) != tc.code {
				t.Errorf("%s: HTTP %d %v, want code %d", tc.to, st, m, tc.code)
			}
		}
		if n := len(c.fake.Requests()) - calls; n != 0 {
			t.Fatalf("refused requests reached Mokka: %d", n)
		}
	})

	t.Run("mokka slow or down", func(t *testing.T) {
		c.fake.SetDelay(time.Minute)
		start := time.Now()
		st, m := c.call(t, "factoring/v1/status", `{"order_id":"ORD-NEW"}`)
		if st != 504 || mokkaCode(m) != 100 {
			t.Errorf("slow: HTTP %d %v", st, m)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("slow Mokka held the tablet %v (timeout 3s)", d)
		}
		c.fake.SetDelay(0)
		c.fake.SetDown(true)
		if st, m := c.call(t, "factoring/v1/status", `{"order_id":"ORD-NEW"}`); st != 502 || mokkaCode(m) != 100 {
			t.Errorf("down: HTTP %d %v", st, m)
		}
		c.fake.SetDown(false)
	})

	var added string
	t.Run("tablet add while running", func(t *testing.T) {
		out, err := runCLI(t, "tablet", "add", "Terrace tablet", "--config", c.cfgPath)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		added = tokenRE.FindString(string(out))
		if added == "" || strings.Count(string(out), added) != 1 {
			t.Fatalf("token not printed exactly once:\n%s", out)
		}
		if !strings.Contains(string(out), "▀") && !strings.Contains(string(out), "▄") {
			t.Errorf("no QR code:\n%s", out)
		}
		cfg, _ := os.ReadFile(c.cfgPath)
		sum := sha256.Sum256([]byte(added))
		if strings.Contains(string(cfg), added) || !strings.Contains(string(cfg), hex.EncodeToString(sum[:])) {
			t.Fatal("the config holds the token, or not its hash")
		}
		if fi, _ := os.Stat(c.cfgPath); fi.Mode().Perm() != 0o600 {
			t.Errorf("config mode %v", fi.Mode().Perm())
		}
		testutil.WaitFor(t, "new token accepted", 30*time.Second, func() bool {
			st, _ := c.tablet(t, http.MethodGet, "/mokka/orders/ORD-NEW", added, "", nil)
			return st == 200
		})
		if out, err := runCLI(t, "tablet", "add", "terrace TABLET ", "--config", c.cfgPath); exitCode(err) != 1 || !strings.Contains(string(out), "exists") {
			t.Fatalf("duplicate name: %v\n%s", err, out)
		}
		out, err = runCLI(t, "tablet", "list", "--config", c.cfgPath)
		if err != nil || !strings.Contains(string(out), "Front counter") || !strings.Contains(string(out), "Terrace tablet") ||
			strings.Contains(string(out), hex.EncodeToString(sum[:])) {
			t.Fatalf("list: %v\n%s", err, out)
		}
	})

	t.Run("tablet remove while running", func(t *testing.T) {
		out, err := runCLI(t, "tablet", "remove", "Terrace tablet", "--config", c.cfgPath)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		testutil.WaitFor(t, "removed token refused", 30*time.Second, func() bool {
			st, _ := c.tablet(t, http.MethodGet, "/mokka/orders/ORD-NEW", added, "", nil)
			return st == 401
		})
		if st, _ := c.tablet(t, http.MethodGet, "/mokka/orders/ORD-NEW", firstTabletToken, "", nil); st != 200 {
			t.Fatalf("the other tablet lost access: %d", st)
		}
	})

	t.Run("listener moves on reload", func(t *testing.T) {
		cfg, _ := os.ReadFile(c.cfgPath)
		newAddr := testutil.FreeAddr(t)
		gen := c.gen(t)
		if err := os.WriteFile(c.cfgPath, []byte(strings.Replace(string(cfg), c.addr, newAddr, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, "reload", 30*time.Second, func() bool { return c.gen(t) > gen })
		old := c.addr
		c.addr = newAddr
		if st, _ := c.tablet(t, http.MethodGet, "/mokka/orders/ORD-NEW", firstTabletToken, "", nil); st != 200 {
			t.Fatalf("new address: %d", st)
		}
		if _, err := http.Get("http://" + old + "/mokka/orders/ORD-NEW"); err == nil {
			t.Fatal("the old address still answers")
		}

		// An address that cannot be bound: the reload is refused as a
		// whole and the gateway stays where it is.
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		cfg, _ = os.ReadFile(c.cfgPath)
		bad := strings.Replace(string(cfg), c.addr, busy.Addr().String(), 1)
		bad = strings.Replace(bad, `timeout = "3s"`, `timeout = "4s"`, 1)
		if err := os.WriteFile(c.cfgPath, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		var st localapi.Status
		testutil.WaitFor(t, "reload refused", 30*time.Second, func() bool {
			st, _ = c.status(t)
			return strings.Contains(st.Config.Error, "checkout.listen")
		})
		if st.Checkout.Listen != c.addr {
			t.Fatalf("status shows listen %s", st.Checkout.Listen)
		}
		if st, _ := c.tablet(t, http.MethodGet, "/mokka/orders/ORD-NEW", firstTabletToken, "", nil); st != 200 {
			t.Fatalf("the gateway moved or stopped: %d", st)
		}
		if err := os.WriteFile(c.cfgPath, cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, "config error cleared", 30*time.Second, func() bool {
			st, _ = c.status(t)
			return st.Config.Error == ""
		})
	})

	t.Run("status and upstream records", func(t *testing.T) {
		st, _ := c.status(t)
		if st.Checkout.OpenOrders != 1 { // ORD-FORGED is pending
			t.Errorf("open orders %d", st.Checkout.OpenOrders)
		}
		raw := mustGet(t, "http://"+c.apiAddr+"/v1/status")
		if strings.Contains(raw, c.fake.SecretKey()) || strings.Contains(raw, firstTabletToken) {
			t.Fatal("the status leaks a secret")
		}
		var recs []store.Record
		testutil.WaitFor(t, "mokka_order records upstream", 30*time.Second, func() bool {
			recs = nil
			for _, r := range c.up.Records() {
				if r.Kind == store.KindMokkaOrder {
					recs = append(recs, r)
				}
			}
			states := map[string]bool{}
			for _, r := range recs {
				var d map[string]any
				json.Unmarshal(r.Data, &d)
				states[r.Key+"="+fmt.Sprint(d["state"])] = true
			}
			return states["mokka/store-e2e/ORD-NEW=refunded"] && states["mokka/store-e2e/ORD-CANCEL=canceled"] &&
				states["mokka/store-e2e/ORD-EXIST=finished"] && states["mokka/store-e2e/ORD-OVERDUE=declined"]
		})
		var seq []string
		for _, r := range recs {
			if r.Key == "mokka/store-e2e/ORD-NEW" {
				var d map[string]any
				json.Unmarshal(r.Data, &d)
				seq = append(seq, d["state"].(string))
			}
		}
		if got := strings.Join(seq, ","); !strings.HasPrefix(got, "pending,hold,finished") || !strings.HasSuffix(got, "refunded") {
			t.Errorf("ORD-NEW records: %s", got)
		}
		for _, r := range recs {
			checkNoPII(t, "record "+r.Key, string(r.Data))
		}
	})

	p.stop(t)
	t.Run("logs hold no secrets or personal data", func(t *testing.T) {
		logFile, err := os.ReadFile(filepath.Join(c.dataDir, "logs", "agent.log"))
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{c.fake.SecretKey(), firstTabletToken, added}
		for _, r := range c.fake.Requests() {
			secrets = append(secrets, r.Signature)
		}
		for _, cb := range c.fake.Callbacks() {
			secrets = append(secrets, cb.Signature)
		}
		for name, text := range map[string]string{"stderr": p.stderr.String(), "agent.log": string(logFile)} {
			if !strings.Contains(text, "Mokka request relayed") || !strings.Contains(text, "Mokka callback received") {
				t.Errorf("%s lacks the gateway's log lines", name)
			}
			for _, s := range secrets {
				if s != "" && strings.Contains(text, s) {
					t.Errorf("%s holds a secret (%.8s…)", name, s)
				}
			}
			checkNoPII(t, name, text)
		}
	})
}

// checkNoPII fails if text holds any of the customers' personal data.
func checkNoPII(t *testing.T, where, text string) {
	t.Helper()
	for _, pii := range []string{custEmail, custFirst, custLast, "Wójcik", custBirth, "654456546", "john.connor", "Connor", "333000005",
		"8882255555", "8882211234", "333000002", "333 000 002", "333000003", "333000004", "333 123 610", "333123610", "333123630", "333123681"} {
		if strings.Contains(text, pii) {
			t.Errorf("%s holds personal data %q", where, pii)
		}
	}
}

// TestCheckoutSignsLikeTheRubySDK: the real binary, with a second
// credential pair for Registration and Limit (store "1", secret "secret",
// the official Ruby SDK's test settings), sends exactly the requests the
// SDK's recorded fixtures hold (RevoTechnology/revo-sdk-ruby,
// spec/fixtures/limit/phone_new.yml and phone_success.yml, commit
// 5a2814c5ceae49828f36100e243f8a17e42da6f5): same body, same store_id, same
// signature. Every other method goes with the main pair.
func TestCheckoutSignsLikeTheRubySDK(t *testing.T) {
	fake := mokkafake.NewServer(t, mokkafake.Options{StoreID: "store-main", SecretKey: "main-mokka-secret-9d1e",
		RegistrationStoreID: "1", RegistrationSecretKey: "secret"})
	addr := testutil.FreeAddr(t)
	sum := sha256.Sum256([]byte(firstTabletToken))
	e := newEnvWith(t, fmt.Sprintf(`[moka]
enabled = false
[checkout]
enabled = true
listen = %q
base_url = %q
store_id = %q
secret_key = %q
registration_store_id = "1"
registration_secret_key_file = "registration.key"
[[checkout.tablets]]
name = "Front counter"
token_sha256 = %q
`, addr, fake.URL(), fake.StoreID(), fake.SecretKey(), hex.EncodeToString(sum[:])))
	if err := os.WriteFile(filepath.Join(e.dir, "registration.key"), []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &checkoutEnv{testEnv: e, fake: fake, addr: addr}
	c.start(t)
	testutil.WaitFor(t, "checkout gateway up", 60*time.Second, func() bool {
		st, _ := c.tablet(t, http.MethodGet, "/mokka/orders/none", firstTabletToken, "", nil)
		return st == 404
	})
	for _, tc := range []struct{ fixture, body, query string }{
		{"limit/phone_new.yml", `{"client":{"mobile_phone":"9111111111"}}`, "signature=7246de5d143570434aa414c9e57ea84e919ccd5e&store_id=1"},
		{"limit/phone_success.yml", `{"client":{"mobile_phone":"9031234567"}}`, "signature=f184c3de30ca2772b13b804a69db58fb3a5da588&store_id=1"},
	} {
		c.mustOK(t, tc.fixture, "api/external/v1/client/limit", tc.body)
		reqs := fake.RequestsFor("api/external/v1/client/limit")
		r := reqs[len(reqs)-1]
		want, _ := url.ParseQuery(tc.query)
		if string(r.Body) != tc.body || r.Query.Get("store_id") != want.Get("store_id") || r.Query.Get("signature") != want.Get("signature") {
			t.Errorf("%s: Mokka got %s?%s", tc.fixture, r.Body, r.Query.Encode())
		}
	}
	// Status goes with the main pair (the fake refuses anything else).
	if st, m := c.call(t, "factoring/v1/status", `{"order_id":"X-1"}`); st != 200 || mokkaCode(m) != 24 {
		t.Fatalf("status: HTTP %d %v", st, m)
	}
	if r := fake.RequestsFor("factoring/v1/status"); len(r) != 1 || r[0].StoreID != "store-main" {
		t.Fatalf("status went with %+v", r)
	}
}
