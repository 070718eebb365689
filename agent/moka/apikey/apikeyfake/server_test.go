package apikeyfake_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/moka/apikey/apikeyfake"
)

var t0 = time.Date(2025, 12, 26, 14, 0, 0, 0, time.UTC)

func newFake(t *testing.T, fc *clockwork.FakeClock, opts apikeyfake.Options) *apikeyfake.Server {
	t.Helper()
	opts.Now = fc.Now
	s := apikeyfake.New(opts)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func get(t *testing.T, s *apikeyfake.Server, path string, q url.Values, key string) resp {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+path+"?"+q.Encode(), nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, body}
}

func TestDeterministic(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	a := apikeyfake.New(apikeyfake.Options{Seed: 7, Outlets: 3, Now: fc.Now})
	b := apikeyfake.New(apikeyfake.Options{Seed: 7, Outlets: 3, Now: fc.Now})
	c := apikeyfake.New(apikeyfake.Options{Seed: 8, Outlets: 3, Now: fc.Now})
	ja, jb, jc := a.Transactions(""), b.Transactions(""), c.Transactions("")
	if len(ja) == 0 || len(ja) != len(jb) {
		t.Fatalf("%d vs %d transactions", len(ja), len(jb))
	}
	for i := range ja {
		if !bytes.Equal(ja[i], jb[i]) {
			t.Fatalf("same seed, different data:\n%s\n%s", ja[i], jb[i])
		}
	}
	if len(jc) == len(ja) && bytes.Equal(jc[0], ja[0]) {
		t.Error("different seeds, same data")
	}
}

// TestRealism checks that the untidy shapes the connector must cope with
// all occur.
func TestRealism(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := apikeyfake.New(apikeyfake.Options{Seed: 1, Outlets: 3, Days: 10, TxPerDay: 100, Now: fc.Now})
	seen := map[string]int{}
	for _, raw := range s.Transactions("") {
		var tx map[string]json.RawMessage
		if err := json.Unmarshal(raw, &tx); err != nil {
			t.Fatalf("invalid JSON %s: %v", raw, err)
		}
		gt := tx["grand_total"]
		switch {
		case gt[0] != '"':
			seen["grand_total number"]++
		case bytes.HasSuffix(gt, []byte(`.00"`)):
			seen["grand_total .00"]++
		default:
			seen["grand_total string"]++
		}
		if bytes.Contains(tx["tax_amount"], []byte(".")) && !bytes.HasSuffix(tx["tax_amount"], []byte(`.00"`)) {
			seen["fractional tax"]++
		}
		for _, k := range []string{"tax_amount", "line_items", "payment_type", "receipt_no", "payment_no", "table_no"} {
			if _, ok := tx[k]; !ok {
				seen["no "+k]++
			}
		}
		if string(tx["payment_type"]) == `""` {
			seen["empty payment_type"]++
		}
		if bytes.Contains(tx["created_at"], []byte("+07:00")) {
			seen["rfc3339"]++
		}
		if bytes.Contains(tx["line_items"], []byte(`"quantity":"`)) {
			seen["quantity string"]++
		}
		if bytes.Contains(tx["line_items"], []byte(`"quantity":1`)) || bytes.Contains(tx["line_items"], []byte(`"quantity":2`)) {
			seen["quantity number"]++
		}
		if bytes.Contains(tx["line_items"], []byte(`.5`)) {
			seen["fraction .5"]++
		}
		for _, name := range []string{"🍵", "Spésial", `\u003c`, `\"Segar\"`} {
			if bytes.Contains(raw, []byte(name)) {
				seen["name "+name]++
			}
		}
	}
	for _, k := range []string{"grand_total number", "grand_total .00", "grand_total string", "fractional tax",
		"no tax_amount", "no line_items", "no payment_type", "empty payment_type", "no receipt_no", "no payment_no",
		"rfc3339", "quantity string", "quantity number", "fraction .5", "name 🍵", "name Spésial", `name \u003c`,
		`name \"Segar\"`} {
		if seen[k] == 0 {
			t.Errorf("never seen: %s", k)
		}
	}
	edited := 0
	for _, tr := range s.Truth() {
		if tr.Edits > 0 {
			edited++
		}
		if tr.GrandTotal.Sign() <= 0 {
			t.Errorf("%s: grand total %s", tr.ID, tr.GrandTotal)
		}
	}
	if edited == 0 {
		t.Error("no automatic edits")
	}
}

func TestErrorsAndParameters(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := newFake(t, fc, apikeyfake.Options{Seed: 1})
	key := s.APIKey()
	ok := url.Values{"business_id": {"biz_1"}, "from_date": {"2025-12-20"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for kk, vv := range ok {
			q[kk] = vv
		}
		q.Set(k, v)
		return q
	}
	for _, tc := range []struct {
		name   string
		path   string
		q      url.Values
		key    string
		status int
		body   string
	}{
		{"ok", "/v1/transactions", ok, key, 200, `"data":[`},
		{"no key", "/v1/transactions", ok, "", 401, `{"error":"invalid api key"}`},
		{"wrong key", "/v1/outlets", ok, "nope", 401, `{"error":"invalid api key"}`},
		{"other business", "/v1/outlets", with("business_id", "x"), key, 403, "business"},
		{"bad from_date", "/v1/transactions", with("from_date", "20-12-2025"), key, 400, "from_date"},
		{"bad limit", "/v1/transactions", with("limit", "x"), key, 400, "limit"},
		{"bad cursor", "/v1/transactions", with("cursor", "garbage"), key, 400, "cursor"},
		{"bad product cursor", "/v1/products", with("cursor", "tx1.e30"), key, 400, "cursor"},
		{"unknown path", "/v2/things", ok, key, 404, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, s, tc.path, tc.q, tc.key)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.body) {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
	// limit is capped at 100.
	r := get(t, s, "/v1/transactions", with("limit", "1000"), key)
	var env struct {
		Data []json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(r.body, &env)
	if len(env.Data) != 100 {
		t.Errorf("limit 1000 gave %d items", len(env.Data))
	}
	// A cursor is bound to its query.
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	_ = json.Unmarshal(r.body, &page)
	q := with("from_date", "2025-12-21")
	q.Set("cursor", page.NextCursor)
	if r := get(t, s, "/v1/transactions", q, key); r.status != 400 {
		t.Errorf("cursor reused with another from_date: %d", r.status)
	}
	// The log records every request with the fake clock's time.
	reqs := s.Requests()
	if len(reqs) != 11 || reqs[0].At != t0 || reqs[1].Status != 401 || reqs[0].Query.Get("from_date") != "2025-12-20" {
		t.Errorf("log = %+v", reqs)
	}
	if err := s.Edit("nope"); !errors.Is(err, apikeyfake.ErrUnknownTransaction) {
		t.Errorf("Edit(unknown) = %v", err)
	}
}

func TestFaultKnobs(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := newFake(t, fc, apikeyfake.Options{Seed: 1})
	q := url.Values{"business_id": {"biz_1"}}
	s.FailNext(2, 429, "5")
	for range 2 {
		if r := get(t, s, "/v1/outlets", q, s.APIKey()); r.status != 429 || r.header.Get("Retry-After") != "5" {
			t.Errorf("FailNext: %d %v", r.status, r.header)
		}
	}
	if r := get(t, s, "/v1/outlets", q, s.APIKey()); r.status != 200 {
		t.Errorf("after FailNext: %d", r.status)
	}
	s.FailNext(1, 503, "")
	if r := get(t, s, "/v1/outlets", q, s.APIKey()); r.status != 503 || r.header.Get("Retry-After") != "" {
		t.Errorf("503: %d %v", r.status, r.header)
	}
	s.TruncateNext(1)
	r := get(t, s, "/v1/outlets", q, s.APIKey())
	if r.status != 200 || json.Valid(r.body) {
		t.Errorf("TruncateNext: %d %s", r.status, r.body)
	}
	s.SetUnauthorized(true)
	if r := get(t, s, "/v1/outlets", q, s.APIKey()); r.status != 401 {
		t.Errorf("SetUnauthorized: %d", r.status)
	}
	s.SetUnauthorized(false)
}

func TestServerRateLimit(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := newFake(t, fc, apikeyfake.Options{Seed: 1, RequestsPerMinute: 3})
	q := url.Values{"business_id": {"biz_1"}}
	for i := range 3 {
		if r := get(t, s, "/v1/outlets", q, s.APIKey()); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
		fc.Advance(10 * time.Second)
	}
	r := get(t, s, "/v1/outlets", q, s.APIKey())
	if r.status != 429 || r.header.Get("Retry-After") != "30" {
		t.Errorf("4th request in a minute: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	fc.Advance(30 * time.Second)
	if r := get(t, s, "/v1/outlets", q, s.APIKey()); r.status != 200 {
		t.Errorf("after Retry-After: %d", r.status)
	}
}

func TestLiveVisibility(t *testing.T) {
	start := time.Date(2025, 12, 26, 1, 0, 0, 0, time.UTC) // 08:00 in Jakarta
	fc := clockwork.NewFakeClockAt(start)
	live := apikeyfake.New(apikeyfake.Options{Seed: 3, Days: 1, TxPerDay: 50, Live: true, Now: fc.Now})
	frozen := apikeyfake.New(apikeyfake.Options{Seed: 3, Days: 1, TxPerDay: 50, Now: fc.Now})
	n0 := len(live.Truth())
	if n0 != len(frozen.Truth()) {
		t.Fatalf("live %d, frozen %d at start", n0, len(frozen.Truth()))
	}
	for _, tr := range live.Truth() {
		if tr.CreatedAt.After(start) {
			t.Errorf("%s from the future", tr.ID)
		}
	}
	fc.Advance(40 * time.Hour) // midnight after the next day
	if n := len(live.Truth()); n != 2*2*50 {
		t.Errorf("live two days later: %d, want 200 (two full days, two outlets)", n)
	}
	if n := len(frozen.Truth()); n != n0 {
		t.Errorf("frozen changed: %d → %d", n0, n)
	}
	exp := live.Expected()
	if len(exp) != 200 || exp[0].BusinessDate != "2025-12-26" || exp[199].BusinessDate != "2025-12-27" {
		t.Errorf("expected: %d, %s..%s", len(exp), exp[0].BusinessDate, exp[len(exp)-1].BusinessDate)
	}
}

// A frozen Live fake shows what it showed when frozen, however late it is
// asked: no new sale, no edit.
func TestLiveFreeze(t *testing.T) {
	start := time.Date(2025, 12, 26, 1, 0, 0, 0, time.UTC) // 08:00 in Jakarta
	fc := clockwork.NewFakeClockAt(start)
	live := apikeyfake.New(apikeyfake.Options{Seed: 3, Days: 1, TxPerDay: 50, Live: true, Now: fc.Now})
	unfrozen := apikeyfake.New(apikeyfake.Options{Seed: 3, Days: 1, TxPerDay: 50, Live: true, Now: fc.Now})
	fc.Advance(6 * time.Hour) // 14:00: the day's sales are coming in
	live.Freeze()
	before := live.Expected()
	fc.Advance(40 * time.Hour)
	after := live.Expected()
	if len(after) != len(before) {
		t.Fatalf("frozen at %d sales, %d later", len(before), len(after))
	}
	for i := range before {
		if before[i].ExternalID != after[i].ExternalID || !before[i].Amount.Equal(after[i].Amount) || before[i].Status != after[i].Status {
			t.Errorf("sale %d changed after the freeze: %+v → %+v", i, before[i], after[i])
		}
	}
	if len(unfrozen.Expected()) <= len(before) {
		t.Errorf("an unfrozen fake shows %d sales 40 h later, the frozen %d: the test shows nothing", len(unfrozen.Expected()), len(before))
	}
}

func TestBreakOutlet(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := newFake(t, fc, apikeyfake.Options{Seed: 1, Outlets: 2})
	ids := s.OutletIDs()
	q := func(outlet string) url.Values {
		return url.Values{"business_id": {s.BusinessID()}, "from_date": {"2025-12-20"}, "limit": {"100"}, "outlet_id": {outlet}}
	}
	s.BreakOutlet(ids[0], http.StatusOK)
	r := get(t, s, "/v1/transactions", q(ids[0]), s.APIKey())
	var page struct {
		Data json.RawMessage `json:"data"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &page) != nil || bytes.HasPrefix(page.Data, []byte("[")) {
		t.Errorf("broken outlet answered %d %s, want a 200 whose data is not an array", r.status, r.body)
	}
	if r := get(t, s, "/v1/transactions", q(ids[1]), s.APIKey()); r.status != 200 || !bytes.Contains(r.body, []byte(`"data":[`)) {
		t.Errorf("the other outlet: %d %s", r.status, r.body)
	}
	s.BreakOutlet(ids[0], http.StatusBadRequest)
	if r := get(t, s, "/v1/transactions", q(ids[0]), s.APIKey()); r.status != 400 {
		t.Errorf("BreakOutlet 400: %d %s", r.status, r.body)
	}
	s.BreakOutlet(ids[0], 0)
	if r := get(t, s, "/v1/transactions", q(ids[0]), s.APIKey()); r.status != 200 || !bytes.Contains(r.body, []byte(`"data":[`)) {
		t.Errorf("after repair: %d %s", r.status, r.body)
	}
}
