package checkout

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRelaySignsExactBytes(t *testing.T) {
	h := newHarness(t)
	// Spaces, escaped slashes, raw UTF-8 and \u escapes: sent as is.
	body := `{ "callback_url": "https:\/\/shop.example\/cb", "redirect_url":"https://shop.example/back",` +
		` "primary_phone":"333000001", "current_order": {"order_id":"UTF8-1","amount":"8300.00"},` +
		` "person":{"first_name":"Łukasz","surname":"Żółć-Ionuț","patronymic":"\u041f\u0451\u0442\u0440"},` +
		` "cart_items":[{"name":"Kawa <b>&</b>","price":8300.00,"quantity":1}] }`
	st, m := h.post(MethodCheckout, body, testToken)
	if st != 200 || code(m) != 0 || m["iframe_url"] == "" {
		t.Fatalf("HTTP %d %v", st, m)
	}
	reqs := h.fake.RequestsFor(MethodCheckout)
	if len(reqs) != 1 {
		t.Fatalf("fake got %d checkout requests", len(reqs))
	}
	r := reqs[0]
	if !bytes.Equal(r.Body, []byte(body)) {
		t.Fatalf("body changed on the way:\n got %q\nwant %q", r.Body, body)
	}
	sum := sha1.Sum(append([]byte(body), h.fake.SecretKey()...))
	if r.Signature != hex.EncodeToString(sum[:]) {
		t.Fatalf("signature %s is not SHA-1(body+key)", r.Signature)
	}
	if r.StoreID != h.fake.StoreID() || r.Query.Get("store_id") != h.fake.StoreID() {
		t.Fatalf("store_id in query: %v", r.Query)
	}
	if r.ContentType != "application/json" {
		t.Errorf("content type %q", r.ContentType)
	}
	if o := h.order("UTF8-1"); o.State != StatePending || o.Amount != "8300.00" || o.Tablet != "Front counter" {
		t.Errorf("order %+v", o)
	}
}

func TestValidationNeverReachesMokka(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		method, body string
		code         int
	}{
		{MethodStatus, `{"order_id":`, CodeJSON},
		{MethodStatus, `{}`, CodeOrderIDMissing},
		{MethodReturn, `{"order_id":"A","amount":"10.001"}`, CodeAmountFormat},
		{MethodReturn, `{"order_id":"A","amount":0}`, CodeAmountFormat},
		{MethodCheckout, `{"callback_url":"https://a/b","redirect_url":"https://a/c","current_order":{"order_id":"A","amount":"1.00","prepayment_amount":"1,5"}}`, CodePrepaymentFormat},
		{MethodCheckout, `{"callback_url":"https://a/b","redirect_url":"https://a/c","current_order":{"order_id":"A","amount":1,"valid_till":"tomorrow"}}`, CodeTimeFormat},
		{MethodCheckout, `{"redirect_url":"https://a/c","current_order":{"order_id":"A","amount":"1.00"}}`, CodeCallbackURLMissing},
		{MethodRegistration, `{"callback_url":"https://a/b","current_order":{"order_id":"A"}}`, CodeRedirectURLMissing},
		{MethodChange, `{"order_id":"A","amount":"1.00"}`, CodeCartMissing},
	} {
		st, m := h.post(tc.method, tc.body, testToken)
		if st != http.StatusBadRequest || code(m) != tc.code || m["message"] != Message(tc.code) {
			t.Errorf("%s %s: HTTP %d %v, want 400 code %d", tc.method, tc.body, st, m, tc.code)
		}
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Fatalf("Mokka got %d requests", n)
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t)
	body := `{"order_id":"A1"}`
	for name, header := range map[string]string{
		"none":        "",
		"wrong token": "Bearer " + testToken2,
		"basic":       "Basic " + testToken,
		"no scheme":   testToken,
		"empty":       "Bearer ",
		"hash itself": "Bearer " + tokenHash(testToken),
	} {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/mokka/"+MethodStatus, strings.NewReader(body))
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		st, m := h.send(req)
		if st != http.StatusUnauthorized || code(m) != CodeUnauthorized {
			t.Errorf("%s: HTTP %d %v", name, st, m)
		}
	}
	// An unauthenticated request is refused before its body is read:
	// even an oversized or invalid one gets 401, not 400/413.
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/mokka/"+MethodStatus, strings.NewReader(strings.Repeat("x", 2<<20)))
	if st, _ := h.send(req); st != http.StatusUnauthorized {
		t.Errorf("big unauthenticated body: HTTP %d", st)
	}
	// The orders endpoint needs a token too.
	req, _ = http.NewRequest(http.MethodGet, h.srv.URL+"/mokka/orders/A1", nil)
	if st, _ := h.send(req); st != http.StatusUnauthorized {
		t.Errorf("orders without token: HTTP %d", st)
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Fatalf("Mokka got %d requests from unauthenticated tablets", n)
	}
	if strings.Contains(h.logs.String(), testToken) || strings.Contains(h.logs.String(), testToken2) {
		t.Fatal("a token is in the log")
	}
	// The right token works, and a reload replaces the tablet list.
	if st, m := h.post(MethodStatus, body, testToken); st != 200 || code(m) != CodeOrderNotFound {
		t.Fatalf("right token: HTTP %d %v", st, m)
	}
	cfg := h.cfg
	cfg.Tablets = []Tablet{{Name: "Terrace", TokenSHA256: tokenHash(testToken2)}}
	h.gw.Update(cfg)
	if st, _ := h.post(MethodStatus, body, testToken); st != http.StatusUnauthorized {
		t.Errorf("removed tablet: HTTP %d", st)
	}
	if st, _ := h.post(MethodStatus, body, testToken2); st != 200 {
		t.Errorf("added tablet: HTTP %d", st)
	}
}

func TestRoutes(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"POST", "/mokka/factoring/v1/other", 404},
		{"POST", "/mokka/factoring/v1/status/", 404},
		{"POST", "/mokka/factoring/v1/../v1/status", 404},
		{"POST", "/mokka/", 404},
		{"POST", "/", 404},
		{"GET", "/v1/status", 404},
		{"GET", "/mokka/factoring/v1/status", 405},
		{"GET", "/mokka/callback", 405},
		{"POST", "/mokka/orders/A1", 405},
	} {
		req, _ := http.NewRequest(tc.method, h.srv.URL+tc.path, strings.NewReader(`{"order_id":"A1"}`))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Fatalf("Mokka got %d requests", n)
	}
}

func TestBodyLimit(t *testing.T) {
	h := newHarness(t)
	big := `{"order_id":"A1","pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	st, m := h.post(MethodStatus, big, testToken)
	if st != http.StatusRequestEntityTooLarge || code(m) != CodeJSON {
		t.Fatalf("HTTP %d %v", st, m)
	}
	if len(h.fake.Requests()) != 0 {
		t.Fatal("an oversized body reached Mokka")
	}
}

func TestRelayMokkaAnswers(t *testing.T) {
	h := newHarness(t)
	// Mokka's own refusal is relayed as it is (code and HTTP status).
	st, m := h.post(MethodCancel, `{"order_id":"NOPE"}`, testToken)
	if st != 200 || code(m) != CodeOrderNotFound || m["message"] != "Order with specified ID not found" {
		t.Fatalf("HTTP %d %v", st, m)
	}
	// A Mokka 5xx is relayed too.
	h.fake.FailNext(1, http.StatusServiceUnavailable)
	if st, m := h.post(MethodStatus, `{"order_id":"A"}`, testToken); st != 503 || code(m) != CodeServer {
		t.Fatalf("HTTP %d %v", st, m)
	}
	// Limit answers in its own envelope.
	if st, m := h.post(MethodLimit, `{"client":{"mobile_phone":"333000001"}}`, testToken); st != 200 || code(m) != 0 {
		t.Fatalf("limit: HTTP %d %v", st, m)
	}
	// Wrong store credentials: Mokka says so, the tablet sees it.
	cfg := h.cfg
	cfg.SecretKey = "not-the-key"
	h.gw.Update(cfg)
	if st, m := h.post(MethodStatus, `{"order_id":"A"}`, testToken); st != 200 || code(m) != CodeSignatureWrong {
		t.Fatalf("wrong key: HTTP %d %v", st, m)
	}
	cfg.SecretKey, cfg.StoreID = h.cfg.SecretKey, "73"
	h.gw.Update(cfg)
	if st, m := h.post(MethodStatus, `{"order_id":"A"}`, testToken); st != 200 || code(m) != CodeStoreNotFound {
		t.Fatalf("wrong store: HTTP %d %v", st, m)
	}
}

func TestMokkaDownOrSlow(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Timeout = 300 * time.Millisecond })
	h.fake.SetDown(true)
	start := time.Now()
	st, m := h.post(MethodStatus, `{"order_id":"A"}`, testToken)
	if st != http.StatusBadGateway || code(m) != CodeServer {
		t.Fatalf("down: HTTP %d %v", st, m)
	}
	h.fake.SetDown(false)
	h.fake.SetDelay(10 * time.Second)
	st, m = h.post(MethodStatus, `{"order_id":"A"}`, testToken)
	if st != http.StatusGatewayTimeout || code(m) != CodeServer || !strings.Contains(m["detail"].(string), "300ms") {
		t.Fatalf("slow: HTTP %d %v", st, m)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v: the timeout did not hold", d)
	}
	// Not configured: a clear refusal, nothing sent.
	cfg := h.cfg
	cfg.SecretKey = ""
	h.gw.Update(cfg)
	if st, m := h.post(MethodStatus, `{"order_id":"UNCONFIGURED"}`, testToken); st != 503 || code(m) != CodeServer {
		t.Fatalf("unconfigured: HTTP %d %v", st, m)
	}
	for _, r := range h.fake.Requests() {
		if strings.Contains(string(r.Body), "UNCONFIGURED") {
			t.Fatal("an unconfigured gateway called Mokka")
		}
	}
}

func multipartFinish(t *testing.T, body string, receipt []byte, extra map[string]string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if body != "" {
		mw.WriteField("body", body)
	}
	if receipt != nil {
		fw, _ := mw.CreateFormFile("check", "../../receipt 1.pdf")
		fw.Write(receipt)
	}
	for k, v := range extra {
		mw.WriteField(k, v)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func TestFinishMultipart(t *testing.T) {
	h := newHarness(t)
	h.checkout("F1", "6700.00", "333000001")
	h.complete("F1", "")
	h.refreshDue()
	if o := h.order("F1"); o.State != StateHold {
		t.Fatalf("state %s", o.State)
	}
	receipt := []byte("%PDF-1.4\n receipt \x00\x01\x02")
	finish := `{"order_id":"F1","amount":"6700.00","check_number":"ZDDS3123F"}`
	buf, ct := multipartFinish(t, finish, receipt, nil)
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/mokka/"+MethodFinish, buf)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if st, m := h.send(req); st != 200 || code(m) != 0 {
		t.Fatalf("finish: HTTP %d %v", st, m)
	}
	r := h.fake.RequestsFor(MethodFinish)[0]
	if string(r.Signed) != finish || !bytes.Equal(r.Receipt, receipt) {
		t.Fatalf("fake got body %q receipt %q", r.Signed, r.Receipt)
	}
	if r.Signature != Sign([]byte(finish), h.fake.SecretKey()) {
		t.Fatal("the signature does not cover the body field")
	}
	if !strings.Contains(string(r.Body), `filename="check.pdf"`) {
		t.Error("the receipt's file name is not normalised")
	}
	h.refreshDue()
	if o := h.order("F1"); o.State != StateFinished {
		t.Fatalf("after finish: %s", o.State)
	}

	// Malformed multiparts are refused locally.
	for name, extra := range map[string]map[string]string{"extra field": {"store_id": "1"}} {
		buf, ct := multipartFinish(t, finish, receipt, extra)
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/mokka/"+MethodFinish, buf)
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+testToken)
		if st, m := h.send(req); st != 400 || code(m) != CodeJSON {
			t.Errorf("%s: HTTP %d %v", name, st, m)
		}
	}
	buf, ct = multipartFinish(t, "", receipt, nil)
	req, _ = http.NewRequest(http.MethodPost, h.srv.URL+"/mokka/"+MethodFinish, buf)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if st, m := h.send(req); st != 400 || code(m) != CodeJSON {
		t.Errorf("no body field: HTTP %d %v", st, m)
	}
	buf, ct = multipartFinish(t, `{"order_id":"F1","amount":"6700,00"}`, receipt, nil)
	req, _ = http.NewRequest(http.MethodPost, h.srv.URL+"/mokka/"+MethodFinish, buf)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if st, m := h.send(req); st != 400 || code(m) != CodeAmountFormat {
		t.Errorf("bad amount: HTTP %d %v", st, m)
	}
	if n := len(h.fake.RequestsFor(MethodFinish)); n != 1 {
		t.Fatalf("Mokka got %d finishes", n)
	}
}

func TestOrderEndpoint(t *testing.T) {
	h := newHarness(t)
	h.checkout("O-1", "100.00", "333000001")
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/mokka/orders/O-1", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var v struct {
		Status int
		Order  map[string]any
	}
	if err := json.Unmarshal(raw, &v); err != nil || resp.StatusCode != 200 || v.Status != 0 {
		t.Fatalf("HTTP %d %s", resp.StatusCode, raw)
	}
	if v.Order["state"] != "pending" || v.Order["amount"] != "100.00" || v.Order["order_id"] != "O-1" {
		t.Errorf("view %v", v.Order)
	}
	for _, leak := range []string{"333000001", "jan.kowalski", "Kowalski", "15.01.1975", "reported"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("the order view holds %q", leak)
		}
	}
	for _, id := range []string{"NOPE", "a%2Fb", "..", strings.Repeat("x", 300)} {
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/mokka/orders/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		if st, m := h.send(req); st != 404 || code(m) != CodeOrderNotFound {
			t.Errorf("%s: HTTP %d %v", id, st, m)
		}
	}
}

// No customer data, token, secret or signature reaches the log.
func TestLogHygiene(t *testing.T) {
	h := newHarness(t)
	h.checkout("L-1", "250.00", "333000001")
	h.complete("L-1", "")
	h.refreshDue()
	h.post(MethodRegistration, `{"callback_url":"`+h.callbackURL()+`","redirect_url":"https://a/b","primary_phone":"888221555","primary_email":"ola@example.pl","current_order":{"order_id":"REG-1"},"person":{"first_name":"Ola","surname":"Nowak","birth_date":"01.02.1990"}}`, testToken)
	h.complete("REG-1", "")
	h.post(MethodStatus, `{"order_id":"L-1"}`, "wrong-token-value")
	logs := h.logs.String()
	sigs := []string{}
	for _, r := range h.fake.Requests() {
		sigs = append(sigs, r.Signature)
	}
	for _, cb := range h.fake.Callbacks() {
		sigs = append(sigs, cb.Signature)
	}
	for _, leak := range append([]string{h.fake.SecretKey(), testToken, "wrong-token-value", "333000001", "888221555",
		"jan.kowalski", "ola@example.pl", "Kowalski", "Nowak", "15.01.1975", "01.02.1990"}, sigs...) {
		if leak != "" && strings.Contains(logs, leak) {
			t.Errorf("the log holds %q", leak)
		}
	}
	if !strings.Contains(logs, "Mokka request relayed") || !strings.Contains(logs, "Mokka callback received") {
		t.Errorf("expected log lines missing:\n%s", logs)
	}
}
