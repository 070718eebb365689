package oauthfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 10, 7, 0, 0, 0, time.UTC)

const cb = "http://127.0.0.1:8687/oauth/moka/callback"

type client struct {
	t   *testing.T
	s   *Server
	now *time.Time
}

func start(t *testing.T, o Options) *client {
	t.Helper()
	now := t0
	c := &client{t: t, now: &now}
	o.Now = func() time.Time { return *c.now }
	c.s = New(o)
	c.s.Start()
	t.Cleanup(c.s.Close)
	return c
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (c *client) code() string {
	c.t.Helper()
	resp, err := noRedirect.Get(c.s.URL() + "/oauth/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {c.s.ClientID()}, "redirect_uri": {cb}, "state": {"st"},
	}.Encode())
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc.Query().Get("state") != "st" || !strings.HasPrefix(loc.String(), cb) {
		c.t.Fatalf("authorize: %d %s", resp.StatusCode, loc.Redacted())
	}
	return loc.Query().Get("code")
}

type tokenAnswer struct {
	Status  int
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
	Error   string `json:"error"`
	Expires int    `json:"expires_in"`
}

func (c *client) token(form url.Values) tokenAnswer {
	c.t.Helper()
	form.Set("client_id", c.s.ClientID())
	if !form.Has("client_secret") {
		form.Set("client_secret", c.s.ClientSecret())
	}
	resp, err := http.PostForm(c.s.URL()+"/oauth/token", form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a tokenAnswer
	_ = json.NewDecoder(resp.Body).Decode(&a)
	a.Status = resp.StatusCode
	return a
}

func (c *client) get(tok, path string) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.s.URL()+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestAuthorizationCodeAndRotation(t *testing.T) {
	c := start(t, Options{})
	code := c.code()
	if a := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://other/cb"}}); a.Error != "invalid_grant" {
		t.Fatalf("code with another redirect_uri: %+v", a)
	}
	a := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cb}})
	if a.Status != 200 || a.Access == "" || a.Refresh == "" || a.Expires != int(DefaultAccessTTL/time.Second) {
		t.Fatalf("exchange: %+v", a)
	}
	if again := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cb}}); again.Error != "invalid_grant" {
		t.Fatal("code accepted twice")
	}
	if bad := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.Refresh}, "client_secret": {"x"}}); bad.Status != 401 || bad.Error != "invalid_client" {
		t.Fatalf("wrong secret: %+v", bad)
	}

	// Refresh: the old pair stays valid until the new access token is used.
	b := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.Refresh}})
	if b.Status != 200 || b.Refresh == a.Refresh || b.Access == a.Access {
		t.Fatalf("refresh: %+v", b)
	}
	if st, _ := c.get(a.Access, "/v1/profile/self"); st != 200 {
		t.Fatalf("old access token before the new one is used: %d", st)
	}
	if st, _ := c.get(b.Access, "/v1/profile/self"); st != 200 {
		t.Fatalf("new access token: %d", st)
	}
	if st, _ := c.get(a.Access, "/v1/profile/self"); st != 401 {
		t.Fatalf("old access token after the new one was used: %d", st)
	}
	if x := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.Refresh}}); x.Error != "invalid_grant" {
		t.Fatalf("old refresh token after use: %+v", x)
	}

	// Expiry, then revocation.
	*c.now = c.now.Add(DefaultAccessTTL)
	st, body := c.get(b.Access, "/v1/profile/self")
	if st != 401 || !bytes.Contains(body, []byte("expired")) {
		t.Fatalf("expired: %d %s", st, body)
	}
	d := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {b.Refresh}})
	c.s.Revoke()
	if st, _ := c.get(d.Access, "/v1/profile/self"); st != 401 {
		t.Fatal("revoked access token accepted")
	}
	if x := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {d.Refresh}}); x.Error != "invalid_grant" {
		t.Fatalf("revoked refresh token: %+v", x)
	}
	if len(c.s.IssuedSecrets()) != 6 {
		t.Errorf("secrets %d", len(c.s.IssuedSecrets()))
	}
}

func TestStrictRotation(t *testing.T) {
	c := start(t, Options{StrictRotation: true})
	a := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {c.code()}, "redirect_uri": {cb}})
	c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.Refresh}})
	if x := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.Refresh}}); x.Error != "invalid_grant" {
		t.Fatal("old refresh token valid after a strict rotation")
	}
}

func TestConsentPage(t *testing.T) {
	c := start(t, Options{ConsentPage: true})
	resp, err := http.Get(c.s.URL() + "/oauth/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {c.s.ClientID()}, "redirect_uri": {cb}, "state": {"s1"},
	}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	i := bytes.Index(page, []byte(`id="deny" href="`))
	if i < 0 {
		t.Fatalf("no deny link: %s", page)
	}
	href := string(page[i+len(`id="deny" href="`):])
	href = strings.ReplaceAll(href[:strings.IndexByte(href, '"')], "&amp;", "&")
	resp, err = noRedirect.Get(c.s.URL() + href)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "s1" {
		t.Fatalf("deny redirect %s", loc)
	}
	resp, err = noRedirect.Get(c.s.URL() + "/oauth/authorize?client_id=wrong&redirect_uri=" + url.QueryEscape(cb))
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("unknown client: %v %d", err, resp.StatusCode)
	}
	resp.Body.Close()
}

func TestDataIsValidDeterministicAndPaged(t *testing.T) {
	opts := Options{Seed: 4, Outlets: 3, Days: 9, TxPerDay: 30}
	c := start(t, opts)
	other := New(Options{Seed: 4, Outlets: 3, Days: 9, TxPerDay: 30, Now: func() time.Time { return t0 }})
	p1, p2 := c.s.Payments(""), other.Payments("")
	if len(p1) != 3*9*30 && len(p1) < 3*8*30 {
		t.Fatalf("%d payments", len(p1))
	}
	for i := range p1 {
		if !json.Valid(p1[i]) || !bytes.Equal(p1[i], p2[i]) {
			t.Fatalf("payment %d invalid or not deterministic:\n%s", i, p1[i])
		}
	}
	a := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {c.code()}, "redirect_uri": {cb}})
	o := c.s.OutletIDs()[2]
	// DESC (the default), walked by following next_url with its token.
	next := "/v3/outlets/" + o + "/reports/get_latest_transactions?per_page=40&access_token=" + url.QueryEscape(a.Access)
	seen := map[string]bool{}
	pages := 0
	for {
		st, body := c.get("", next[strings.Index(next, "/v3/"):])
		if st != 200 {
			t.Fatalf("page %d: %d %s", pages, st, body)
		}
		var env struct {
			Data struct {
				Payments []struct {
					ID        string `json:"id"`
					CreatedAt string `json:"created_at"`
				} `json:"payments"`
				NextURL   string `json:"next_url"`
				Completed bool   `json:"completed"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatal(err)
		}
		pages++
		for _, p := range env.Data.Payments {
			seen[p.ID] = true
			if !strings.HasSuffix(p.CreatedAt, "+08:00") {
				t.Fatalf("Bali outlet time %s", p.CreatedAt)
			}
		}
		if !strings.Contains(env.Data.NextURL, "access_token="+url.QueryEscape(a.Access)) {
			t.Fatal("next_url without the access token")
		}
		if env.Data.Completed {
			break
		}
		next = env.Data.NextURL
		if pages > 50 {
			t.Fatal("no end")
		}
	}
	if len(seen) != len(c.s.Payments(o)) || pages < 6 {
		t.Fatalf("%d of %d payments in %d pages", len(seen), len(c.s.Payments(o)), pages)
	}
	// Bad parameters are a 400 with a meta body.
	st, body := c.get(a.Access, "/v3/outlets/"+o+"/reports/get_latest_transactions?since=yesterday")
	if st != 400 || !bytes.Contains(body, []byte(`"meta"`)) {
		t.Fatalf("bad since: %d %s", st, body)
	}
}

func TestUpdatedAtFindsOldChanges(t *testing.T) {
	c := start(t, Options{Seed: 2, Outlets: 1, Days: 12, TxPerDay: 10, NoEvents: true})
	a := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {c.code()}, "redirect_uri": {cb}})
	old := c.s.Truth()[3]
	if err := c.s.Refund(old.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := c.s.Void("nope"); err == nil {
		t.Fatal("unknown payment voided")
	}
	since := strconvEpoch(t0.Add(-time.Hour))
	path := "/v3/outlets/" + c.s.OutletIDs()[0] + "/reports/get_latest_transactions?reorder_type=ASC&since=" + since
	_, created := c.get(a.Access, path)
	_, updated := c.get(a.Access, path+"&time_filter=updated_at")
	if bytes.Contains(created, []byte(old.ID)) || !bytes.Contains(updated, []byte(old.ID)) {
		t.Fatal("the refund of an old sale is not found by updated_at only")
	}
	if !bytes.Contains(updated, []byte(`"refund_type":"partial"`)) {
		t.Fatal("no partial refund in the answer")
	}
}

func strconvEpoch(t time.Time) string { return fmtEpoch(t) }

func TestFaultsAndLimits(t *testing.T) {
	c := start(t, Options{Outlets: 1, Days: 1, TxPerDay: 3, RequestsPerMinute: 3})
	a := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {c.code()}, "redirect_uri": {cb}})
	c.s.FailNext(1, 429, "")
	resp, err := http.Get(c.s.URL() + "/v1/profile/self?access_token=" + a.Access) // legacy parameter
	if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("429 without Retry-After: %v %d", err, resp.StatusCode)
	}
	resp.Body.Close()
	for range 3 {
		if st, _ := c.get(a.Access, "/v1/profile/self"); st != 200 {
			t.Fatalf("within the limit: %d", st)
		}
	}
	st, _ := c.get(a.Access, "/v1/profile/self")
	if st != 429 {
		t.Fatalf("over the limit: %d", st)
	}
	*c.now = c.now.Add(time.Minute)
	c.s.TruncateNext(1)
	if st, body := c.get(a.Access, "/v1/profile/self"); st != 200 || json.Valid(body) {
		t.Fatal("truncation")
	}
	c.s.ExpireAccessTokens()
	if st, _ := c.get(a.Access, "/v1/profile/self"); st != 401 {
		t.Fatal("expired token accepted")
	}
	reqs := c.s.Requests()
	if reqs[len(reqs)-1].Status != 401 || !reqs[len(reqs)-1].Bearer || strings.Contains(reqs[len(reqs)-1].Token, a.Access) {
		t.Fatalf("log %+v", reqs[len(reqs)-1])
	}
}

// pageOf is one answer of get_latest_transactions, as a client sees it.
type pageOf struct {
	Data struct {
		Payments []struct {
			ID        string  `json:"id"`
			CreatedAt string  `json:"created_at"`
			UpdatedAt string  `json:"updated_at"`
			Parent    *string `json:"parent_payment_id"`
			Refund    float64 `json:"refund_amount"`
			Type      *string `json:"refund_type"`
		} `json:"payments"`
		NextURL   *string `json:"next_url"`
		Completed bool    `json:"completed"`
	} `json:"data"`
}

func (c *client) page(tok, path string) pageOf {
	c.t.Helper()
	st, body := c.get(tok, path)
	if st != 200 {
		c.t.Fatalf("%s: %d %s", path, st, body)
	}
	var p pageOf
	if err := json.Unmarshal(body, &p); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// TestNextURLStyles: each style of next_url has its shape; completed is
// right in all of them.
func TestNextURLStyles(t *testing.T) {
	c := start(t, Options{Seed: 6, Outlets: 1, Days: 2, TxPerDay: 30})
	a := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {c.code()}, "redirect_uri": {cb}})
	since := fmtEpoch(t0.AddDate(0, 0, -3))
	base := "/v3/outlets/" + c.s.OutletIDs()[0] + "/reports/get_latest_transactions?reorder_type=ASC&since=" + since
	path := base + "&per_page=10"
	for _, tc := range []struct {
		style NextURLStyle
		check func(q url.Values, last time.Time) bool
	}{
		{NextURLSince, func(q url.Values, last time.Time) bool { return q.Get("since") == fmtEpoch(last) && !q.Has("until") }},
		{NextURLUntil, func(q url.Values, last time.Time) bool {
			return q.Get("since") == since && q.Get("until") == fmtEpoch(last.Add(-time.Microsecond))
		}},
		{NextURLRepeat, func(q url.Values, _ time.Time) bool { return q.Get("since") == since && !q.Has("until") }},
	} {
		c.s.SetNextURLStyle(tc.style)
		p := c.page(a.Access, path)
		if p.Data.NextURL == nil || p.Data.Completed || len(p.Data.Payments) != 10 {
			t.Fatalf("%s: %+v", tc.style, p.Data)
		}
		u, _ := url.Parse(*p.Data.NextURL)
		last, _ := time.Parse(time.RFC3339Nano, p.Data.Payments[9].CreatedAt)
		if !tc.check(u.Query(), last) || u.Query().Get("access_token") != a.Access {
			t.Errorf("%s: next_url query %v", tc.style, u.Query())
		}
	}
	c.s.SetNextURLStyle(NextURLMissing)
	if p := c.page(a.Access, path); p.Data.NextURL != nil || p.Data.Completed {
		t.Errorf("missing: %+v", p.Data)
	}
	if p := c.page(a.Access, base+"&per_page=100"); !p.Data.Completed {
		t.Error("the whole answer is not completed")
	}
}

// TestSameTimeSalesStraddlePages: with SameTimeSales some sales share a
// time to the millisecond, and BoundaryTies counts the pages cut inside
// such a group.
func TestSameTimeSalesStraddlePages(t *testing.T) {
	c := start(t, Options{Seed: 6, Outlets: 1, Days: 2, TxPerDay: 200, SameTimeSales: 30})
	a := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {c.code()}, "redirect_uri": {cb}})
	truth := c.s.Truth()
	ties := 0
	for i := 1; i < len(truth); i++ {
		if truth[i].CreatedAt.Equal(truth[i-1].CreatedAt) {
			ties++
		}
	}
	if ties < len(truth)/5 {
		t.Fatalf("%d ties among %d sales", ties, len(truth))
	}
	path := "/v3/outlets/" + c.s.OutletIDs()[0] + "/reports/get_latest_transactions?reorder_type=ASC&since=" + fmtEpoch(t0.AddDate(0, 0, -3))
	for per := 2; per < 40; per++ {
		c.page(a.Access, path+"&per_page="+strconv.Itoa(per))
	}
	if c.s.BoundaryTies() == 0 {
		t.Fatal("no page cut inside a group of one time")
	}
}

// TestRefundRows: a refund made as a row of its own is listed with
// parent_payment_id, when the refund was made (created_at and updated_at);
// the sale's own JSON does not change; Expected shows the sale refunded.
func TestRefundRows(t *testing.T) {
	c := start(t, Options{Seed: 2, Outlets: 1, Days: 12, TxPerDay: 10, NoEvents: true})
	a := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {c.code()}, "redirect_uri": {cb}})
	old := c.s.Truth()[3]
	before, _ := c.s.Payment(old.ID)
	*c.now = c.now.Add(time.Minute)
	row, err := c.s.RefundRow(old.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := c.s.Payment(old.ID)
	if !bytes.Equal(before, after) {
		t.Fatal("the sale's JSON changed")
	}
	since := fmtEpoch(t0.Add(-time.Hour))
	path := "/v3/outlets/" + c.s.OutletIDs()[0] + "/reports/get_latest_transactions?reorder_type=ASC&since=" + since
	for _, filter := range []string{"", "&time_filter=updated_at"} {
		p := c.page(a.Access, path+filter)
		found := false
		for _, pay := range p.Data.Payments {
			if pay.ID == old.ID {
				t.Fatalf("%q: the sale itself is listed", filter)
			}
			if pay.ID == row {
				found = true
				if pay.Parent == nil || *pay.Parent != old.ID || pay.Refund <= 0 || pay.Type == nil || *pay.Type != "partial" {
					t.Fatalf("refund row %+v", pay)
				}
			}
		}
		if !found {
			t.Fatalf("%q: no refund row", filter)
		}
	}
	for _, tx := range c.s.Expected() {
		if tx.ExternalID == old.ID && tx.Status != "partially_refunded" {
			t.Fatalf("expected %s", tx.Status)
		}
		if tx.ExternalID == row {
			t.Fatal("a refund row is expected as a sale")
		}
	}
	// RefundMixed gives both kinds among the automatic refunds.
	m := New(Options{Seed: 8, Outlets: 2, Days: 14, TxPerDay: 40, RefundStyle: RefundMixed, Now: func() time.Time { return t0 }})
	rows, flags := 0, 0
	for _, p := range m.Payments("") {
		if bytes.Contains(p, []byte(`"is_refunded":true`)) {
			flags++
		}
	}
	for _, p := range m.payments {
		for _, e := range p.events {
			if e.asRow {
				rows++
			}
		}
	}
	if rows == 0 || flags == 0 {
		t.Fatalf("mixed: %d rows, %d flagged sales", rows, flags)
	}
}

// TestCatalogueIDs: the ids a sale's checkouts carry are those of the
// products, in the served JSON and in Expected/ExpectedProducts.
func TestCatalogueIDs(t *testing.T) {
	s := New(Options{Seed: 3, Outlets: 2, Days: 2, TxPerDay: 10, Now: func() time.Time { return t0 }})
	products := map[string]bool{}
	for _, p := range s.ExpectedProducts() {
		if p.VariantID != "" {
			products[p.OutletID+"/"+p.ItemID+"/"+p.VariantID] = true
		}
	}
	n := 0
	for _, tx := range s.Expected() {
		for _, it := range tx.Items {
			n++
			if !products[tx.OutletID+"/"+it.ItemID+"/"+it.VariantID] || it.Category == "" {
				t.Fatalf("line %+v of %s joins no product", it, tx.ExternalID)
			}
		}
	}
	if n == 0 {
		t.Fatal("no lines")
	}
}
