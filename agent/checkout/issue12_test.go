package checkout

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/checkout/mokkafake"
)

// Issue 12: real Mokka as it is (number and date forms, unsigned
// callbacks, two credential pairs) and tablets on shared Wi-Fi (failed
// token attempts limited per address).

// TestIssue12MokkaNumberForms: a tablet written from Mokka's docs (amounts
// as JSON numbers, 51000.0, 4999.0, 300) used to get code 30 from the
// gateway. The value counts now: the docs' own example goes to Mokka byte
// for byte and is tracked with its amount; values Mokka refuses are still
// refused locally.
func TestIssue12MokkaNumberForms(t *testing.T) {
	h := newHarness(t)
	body := mokkafake.DocsCheckoutRequest(h.callbackURL())
	st, m := h.post(MethodCheckout, body, testToken)
	if st != 200 || code(m) != CodeOK {
		t.Fatalf("the docs' example: HTTP %d %v", st, m)
	}
	r := h.fake.RequestsFor(MethodCheckout)[0]
	if string(r.Body) != body || r.Signature != Sign([]byte(body), h.fake.SecretKey()) {
		t.Fatal("the body was not sent (and signed) as the tablet wrote it")
	}
	if o := h.order("120R"); o.Amount != "51000.00" || o.Prepayment != "1000.00" || o.State != StatePending {
		t.Fatalf("order %+v", o)
	}
	if fo, _ := h.fake.Order("120R"); fo.Amount != "51000.00" {
		t.Fatalf("Mokka's order %+v", fo)
	}

	// The Bitrix plugin's integer and an RFC 3339 valid_till.
	bitrix := `{"callback_url":"` + h.callbackURL() + `","redirect_url":"https://shop.example/r",` +
		`"current_order":{"order_id":"s1:65f0c","amount":300,"valid_till":"2030-07-21T12:08:01+07:00"}}`
	if st, m := h.post(MethodCheckout, bitrix, testToken); st != 200 || code(m) != CodeOK {
		t.Fatalf("300: HTTP %d %v", st, m)
	}
	if o := h.order("s1:65f0c"); o.Amount != "300.00" {
		t.Fatalf("order %+v", o)
	}
	// The docs' Finish example form (4999.0) after a hold.
	h.checkout("F-4999", "4999.00", "333000001")
	h.complete("F-4999", "")
	h.refreshDue()
	if st, m := h.post(MethodFinish, `{"order_id":"F-4999","amount":4999.0,"check_number":"sdfhk"}`, testToken); st != 200 || code(m) != CodeOK {
		t.Fatalf("finish 4999.0: HTTP %d %v", st, m)
	}
	// A return written as the docs do (2010.00 as a number), partial.
	h.clock.Advance(statusEvery)
	h.refreshDue()
	if st, m := h.post(MethodReturn, `{"order_id":"F-4999","amount":2010.00}`, testToken); st != 200 || code(m) != CodeOK {
		t.Fatalf("return: HTTP %d %v", st, m)
	}
	if o := h.order("F-4999"); o.State != StateFinished || o.ReturnedAmount != "2010.00" {
		t.Fatalf("order %+v", o)
	}

	calls := len(h.fake.Requests())
	for _, bad := range []string{`10.005`, `"10,00"`, `-5`, `0`, `1e3`, `"1 000.00"`, `true`} {
		b := strings.Replace(bitrix, `"amount":300`, `"amount":`+bad, 1)
		if st, m := h.post(MethodCheckout, b, testToken); st != 400 || code(m) != CodeAmountFormat {
			t.Errorf("amount %s: HTTP %d %v", bad, st, m)
		}
	}
	for _, bad := range []string{`"21.07.2030 12:08:01"`, `"2030-07-21 12:08:01"`, `"21.07.2030"`, `1900000000`} {
		b := strings.Replace(bitrix, `"2030-07-21T12:08:01+07:00"`, bad, 1)
		if st, m := h.post(MethodCheckout, b, testToken); st != 400 || code(m) != CodeTimeFormat {
			t.Errorf("valid_till %s: HTTP %d %v", bad, st, m)
		}
	}
	if n := len(h.fake.Requests()); n != calls {
		t.Fatalf("refused requests reached Mokka: %d calls", n-calls)
	}
}

// unsigned posts a callback body without a signature.
func unsigned(t testing.TB, url, query, body string) (int, int) {
	t.Helper()
	resp, err := http.Post(url+query, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("answer is not JSON (HTTP %d): %v", resp.StatusCode, err)
	}
	return resp.StatusCode, code(m)
}

// TestUnsignedCallbackIsAHint: Mokka may call callback_url without a
// signature. Such a callback is answered 200 and only makes the gateway
// ask Status about an open order it tracks: nothing of it is recorded or
// believed, a forged "approved" changes nothing, replays cost at most the
// order's rate-limited Status calls, and hints about other orders cost
// nothing at all.
func TestUnsignedCallbackIsAHint(t *testing.T) {
	h := newHarness(t)
	h.checkout("H-1", "100.00", "333000001")
	recs := len(h.records())
	forged := `{"order_id":"H-1","decision":"approved","amount":"100.00"}`
	for _, q := range []string{"", "?signature=", "?other=1"} {
		if st, c := unsigned(t, h.callbackURL(), q, forged); st != 200 || c != CodeOK {
			t.Fatalf("hint %q: HTTP %d code %d", q, st, c)
		}
	}
	// Nothing recorded, nothing believed.
	o := h.order("H-1")
	if o.Callbacks != 0 || len(o.Receipts) != 0 || o.State != StatePending || o.Decision != "" || len(h.records()) != recs {
		t.Fatalf("a hint was recorded: %+v", o)
	}
	// One Status check, though three hints came: Mokka says pending.
	if n := h.refreshDue(); n != 1 {
		t.Fatalf("%d due after the hints", n)
	}
	if n := len(h.fake.RequestsFor(MethodStatus)); n != 1 {
		t.Fatalf("%d Status calls", n)
	}
	if o := h.order("H-1"); o.State != StatePending || o.Decision != "" || len(o.History) != 1 {
		t.Fatalf("the forged approval changed the order: %+v", o)
	}
	writes := h.cs.writes(h.cfg.StoreID, "H-1")

	// A flood of replays within one rate-limit window: at most the
	// order's burst of Status calls, however often the loop runs.
	for range 50 {
		unsigned(t, h.callbackURL(), "", forged)
		h.refreshDue()
	}
	if n := len(h.fake.RequestsFor(MethodStatus)); n > statusBurst {
		t.Fatalf("%d Status calls for 50 replays in one window (burst %d)", n, statusBurst)
	}
	if n := h.cs.writes(h.cfg.StoreID, "H-1"); n != writes {
		t.Fatalf("replayed hints wrote the order %d times", n-writes)
	}

	// Hints about orders that are not open here: no Status, no adoption.
	h.checkout("H-2", "100.00", "333000001")
	h.complete("H-2", "")
	h.clock.Advance(time.Minute)
	h.refreshDue()
	h.post(MethodCancel, `{"order_id":"H-2"}`, testToken)
	h.clock.Advance(time.Minute)
	h.refreshDue()
	if o := h.order("H-2"); o.State != StateCanceled {
		t.Fatalf("H-2 %s", o.State)
	}
	h.clock.Advance(time.Minute)
	h.refreshDue() // H-1's own refresh, which is due
	before := len(h.fake.RequestsFor(MethodStatus))
	for _, id := range []string{"H-2", "NEVER-SEEN", "12345"} {
		body := fmt.Sprintf(`{"order_id":%q,"decision":"approved"}`, id)
		if st, c := unsigned(t, h.callbackURL(), "", body); st != 200 || c != CodeOK {
			t.Fatalf("hint about %s: HTTP %d code %d", id, st, c)
		}
	}
	h.refreshDue()
	if n := len(h.fake.RequestsFor(MethodStatus)) - before; n != 0 {
		t.Fatalf("hints about closed or unknown orders made %d Status calls", n)
	}
	if _, ok, _ := h.gw.Order("NEVER-SEEN"); ok {
		t.Fatal("a hint adopted an order")
	}
	// Not a callback at all.
	if st, c := unsigned(t, h.callbackURL(), "", `{"order_id":`); st != 400 || c != CodeJSON {
		t.Errorf("not JSON: HTTP %d code %d", st, c)
	}
	if st, c := unsigned(t, h.callbackURL(), "", `{"decision":"approved"}`); st != 400 || c != CodeOrderIDMissing {
		t.Errorf("no order_id: HTTP %d code %d", st, c)
	}

	// Mokka's real decision, sent unsigned: Status confirms it.
	h.fake.SetUnsignedCallbacks(true)
	h.clock.Advance(time.Minute)
	cb := h.complete("H-1", "")
	if cb.Signature != "" {
		t.Fatal("the fake signed")
	}
	h.refreshDue()
	o = h.order("H-1")
	if o.State != StateHold || o.Decision != "approved" || o.Callbacks != 0 || len(o.Receipts) != 0 {
		t.Fatalf("after Mokka's unsigned callback: %+v", o)
	}
	if states := checkRecordsForward(t, h.orderRecords("H-1")); fmt.Sprint(states) != "[pending hold]" {
		t.Fatalf("records %v", states)
	}
	// Its body (the customer's phone, name, e-mail) is nowhere.
	for _, leak := range []string{"333000001", "Kowalski", "jan.kowalski"} {
		if strings.Contains(h.logs.String(), leak) {
			t.Errorf("the log holds %q", leak)
		}
	}
}

// TestCallbackSignedWithRegistrationKey: with a second credential pair,
// callbacks signed with either key verify; any other key is refused.
func TestCallbackSignedWithRegistrationKey(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RegistrationStoreID, c.RegistrationSecretKey = "71", "reg-key" })
	h.checkout("RK-1", "100.00", "333000001")
	body := []byte(`{"order_id":"RK-1","decision":"approved","amount":"100.00"}`)
	if st, c := postCallback(t, h.callbackURL(), body, Sign(body, "reg-key")); st != 200 || c != CodeOK {
		t.Fatalf("registration key: HTTP %d code %d", st, c)
	}
	if o := h.order("RK-1"); o.Callbacks != 1 {
		t.Fatalf("not recorded: %+v", o)
	}
	other := []byte(`{"order_id":"RK-1","decision":"declined","amount":"0"}`)
	if st, c := postCallback(t, h.callbackURL(), other, Sign(other, "not-a-key")); st != 403 || c != CodeSignatureWrong {
		t.Fatalf("other key: HTTP %d code %d", st, c)
	}
	if o := h.order("RK-1"); o.Callbacks != 1 {
		t.Fatalf("a forged callback was recorded: %+v", o)
	}
}

// TestRegistrationCredentials: Registration and Limit go with the
// registration store and key when both are set (a Mokka that issued two
// stores refuses anything else), every other method with the main pair;
// without the pair, everything goes with the main one.
func TestRegistrationCredentials(t *testing.T) {
	opts := mokkafake.Options{RegistrationStoreID: "71", RegistrationSecretKey: "reg-key"}
	h := newHarnessWith(t, opts, func(c *Config) { c.RegistrationStoreID, c.RegistrationSecretKey = "71", "reg-key" })
	limit := `{"client":{"mobile_phone":"333000001"}}`
	if st, m := h.post(MethodLimit, limit, testToken); st != 200 || code(m) != CodeOK {
		t.Fatalf("limit: HTTP %d %v", st, m)
	}
	reg := `{"callback_url":"` + h.callbackURL() + `","redirect_url":"https://shop.example/r","primary_phone":"8882200001","current_order":{"order_id":"REG-1"}}`
	if st, m := h.post(MethodRegistration, reg, testToken); st != 200 || code(m) != CodeOK {
		t.Fatalf("registration: HTTP %d %v", st, m)
	}
	h.checkout("MAIN-1", "100.00", "333000001")
	if st, m := h.post(MethodStatus, `{"order_id":"MAIN-1"}`, testToken); st != 200 || code(m) != CodeOK {
		t.Fatalf("status: HTTP %d %v", st, m)
	}
	for _, r := range h.fake.Requests() {
		want, key := h.fake.StoreID(), h.fake.SecretKey()
		if r.Method == MethodLimit || r.Method == MethodRegistration {
			want, key = "71", "reg-key"
		}
		if r.StoreID != want || r.Signature != Sign(r.Body, key) || r.Code != CodeOK {
			t.Errorf("%s went with store %s (code %d)", r.Method, r.StoreID, r.Code)
		}
	}
	// Mokka signs the registration's callback with the registration key:
	// the gateway takes it.
	if cb := h.complete("REG-1", ""); cb.HTTPStatus != 200 {
		t.Fatalf("registration callback: %+v", cb)
	}

	// Without the second pair (or with half of it), the main pair.
	for _, c := range []Config{{StoreID: "72", SecretKey: "k"}, {StoreID: "72", SecretKey: "k", RegistrationStoreID: "71"}} {
		for _, m := range Methods {
			if id, key := c.Credentials(m); id != "72" || key != "k" {
				t.Errorf("%+v: %s goes with %s", c, m, id)
			}
		}
	}
}

// TestTokenGuessingRateLimit: failed token attempts are limited per
// address. After guardBurst failures the address gets 429 with
// Retry-After, even with the right token (so a lucky guess is not even
// checked), until the budget refills; the right token never counts, and
// other addresses are not affected.
func TestTokenGuessingRateLimit(t *testing.T) {
	h := newHarness(t)
	try := func(token string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/mokka/"+MethodStatus, strings.NewReader(`{"order_id":"G1"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	// Successful requests never count.
	for range 3 * guardBurst {
		if st, _ := try(testToken); st != 200 {
			t.Fatalf("right token: HTTP %d", st)
		}
	}
	for i := range guardBurst {
		if st, _ := try(fmt.Sprintf("guess-%d", i)); st != http.StatusUnauthorized {
			t.Fatalf("guess %d: HTTP %d", i, st)
		}
	}
	st, hdr := try("guess-next")
	if st != http.StatusTooManyRequests || hdr.Get("Retry-After") != fmt.Sprint(int(guardEvery/time.Second)) {
		t.Fatalf("over the limit: HTTP %d Retry-After %q", st, hdr.Get("Retry-After"))
	}
	if st, _ := try(testToken); st != http.StatusTooManyRequests {
		t.Fatalf("right token from a blocked address: HTTP %d", st)
	}
	if !strings.Contains(h.logs.String(), "Tablet address paused after failed token attempts") {
		t.Error("no log line about the paused address")
	}
	// The budget refills: one attempt per guardEvery.
	h.clock.Advance(guardEvery / 2)
	st, hdr = try(testToken)
	if st != http.StatusTooManyRequests || hdr.Get("Retry-After") != fmt.Sprint(int(guardEvery/2/time.Second)) {
		t.Fatalf("half-way: HTTP %d Retry-After %q", st, hdr.Get("Retry-After"))
	}
	h.clock.Advance(guardEvery / 2)
	if st, _ := try(testToken); st != 200 {
		t.Fatalf("refilled, right token: HTTP %d", st)
	}
	if st, _ := try("guess-again"); st != http.StatusUnauthorized {
		t.Fatalf("refilled, wrong token: HTTP %d", st)
	}
	if st, _ := try(testToken); st != http.StatusTooManyRequests {
		t.Fatalf("after the refill was used: HTTP %d", st)
	}
	if n := len(h.fake.RequestsFor(MethodStatus)); n != 3*guardBurst+1 {
		t.Fatalf("Mokka got %d Status calls, want %d", n, 3*guardBurst+1)
	}

	// Per address: another address has its own budget.
	g := newAuthGuard()
	now := h.clock.Now()
	for range guardBurst {
		g.fail("192.168.1.20:5000", now)
	}
	if g.wait("192.168.1.20:5001", now) == 0 {
		t.Error("another port of a blocked address is not blocked")
	}
	for _, other := range []string{"192.168.1.21:5000", "[fd00::20]:5000", "[fd00::21]:5000"} {
		if g.wait(other, now) != 0 {
			t.Errorf("%s is blocked", other)
		}
	}
	for range guardBurst {
		g.fail("[fd00::20]:5000", now)
	}
	if g.wait("[fd00::20]:1", now) == 0 || g.wait("[fd00::21]:1", now) != 0 {
		t.Error("IPv6 addresses of one LAN are not told apart")
	}
	if g.wait("[::ffff:192.168.1.20]:5000", now) == 0 {
		t.Error("an IPv4-mapped address escapes its IPv4 budget")
	}
}

// TestAuthGuardBounded: the memory of failing addresses is bounded; beyond
// it new addresses share one budget, and addresses whose budget is whole
// again are forgotten first.
func TestAuthGuardBounded(t *testing.T) {
	g := newAuthGuard()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	addr := func(i int) string { return fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255) }
	for i := range maxGuarded {
		g.fail(addr(i), now)
	}
	if len(g.addrs) != maxGuarded {
		t.Fatalf("%d addresses", len(g.addrs))
	}
	// Full: new addresses share the overflow budget.
	for i := range guardBurst {
		g.fail(addr(maxGuarded+i), now)
	}
	if len(g.addrs) != maxGuarded {
		t.Fatalf("the map grew to %d", len(g.addrs))
	}
	if g.wait(addr(maxGuarded+guardBurst), now) == 0 {
		t.Fatal("the shared budget of new addresses is not limited")
	}
	// Once the old budgets are whole again, they are forgotten and a new
	// address has its own budget.
	later := now.Add(guardBurst * guardEvery)
	if g.wait(addr(2*maxGuarded), later) != 0 {
		t.Fatal("a new address is blocked after the flood")
	}
	g.fail(addr(2*maxGuarded), later)
	if len(g.addrs) != 1 {
		t.Fatalf("%d addresses remembered after the flood", len(g.addrs))
	}
}
