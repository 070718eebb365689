package jurnalfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/shopspring/decimal"
)

// t0 is the tests' start time: a Wednesday afternoon in Jakarta.
var t0 = time.Date(2026, 9, 16, 7, 30, 0, 0, time.UTC)

// sign signs req as the Mekari HMAC documentation says: Date, an
// Authorization header over "date: …\n<METHOD> <path+query> HTTP/1.1" and,
// with a body, Digest.
func sign(req *http.Request, body []byte, clientID, secret string, now time.Time) {
	date := now.UTC().Format(http.TimeFormat)
	line := req.Method + " " + req.URL.RequestURI() + " HTTP/1.1"
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, "date: "+date+"\n"+line)
	req.Header.Set("Date", date)
	req.Header.Set("Authorization", fmt.Sprintf(`hmac username=%q, algorithm="hmac-sha256", headers="date request-line", signature=%q`,
		clientID, base64.StdEncoding.EncodeToString(mac.Sum(nil))))
	if len(body) > 0 {
		sum := sha256.Sum256(body)
		req.Header.Set("Digest", "SHA-256="+base64.StdEncoding.EncodeToString(sum[:]))
	}
}

// env is a fake on a fake clock with a signing client.
type env struct {
	t     *testing.T
	clock *clockwork.FakeClock
	s     *Server
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	clock := clockwork.NewFakeClockAt(t0)
	opts.Clock = clock
	if opts.Products == nil {
		opts.Products = []Product{
			{Name: "Es Kopi Susu", Code: "KOPI-01", SellPrice: dec("25000")},
			{Name: "Croissant", Code: "PAS-02", SellPrice: dec("18500")},
			{Name: "Air Mineral", Code: "", SellPrice: dec("8000")},
		}
	}
	return &env{t: t, clock: clock, s: NewServer(t, opts)}
}

// answer is a decoded answer.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// call sends a signed request; mutate may change it after signing.
func (e *env) call(method, path string, body any, mutate func(*http.Request)) answer {
	e.t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			e.t.Fatal(err)
		}
	}
	return e.callRaw(method, path, b, mutate)
}

func (e *env) callRaw(method, path string, b []byte, mutate func(*http.Request)) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.s.URL()+APIPrefix+path, bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sign(req, b, e.s.ClientID(), e.s.ClientSecret(), e.clock.Now())
	if mutate != nil {
		mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			e.t.Fatalf("%s %s: answer is not a JSON object: %v: %s", method, path, err, raw)
		}
	}
	return a
}

func (e *env) get(path string) answer { e.t.Helper(); return e.call(http.MethodGet, path, nil, nil) }
func (e *env) post(path string, body any) answer {
	e.t.Helper()
	return e.call(http.MethodPost, path, body, nil)
}

// want fails unless a has the status.
func (a answer) want(t *testing.T, status int) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.raw)
	}
	return a
}

// obj returns a nested object of the answer.
func (a answer) obj(t *testing.T, key string) map[string]any {
	t.Helper()
	m, ok := a.body[key].(map[string]any)
	if !ok {
		t.Fatalf("answer has no object %q: %s", key, a.raw)
	}
	return m
}

// invoice is a valid sales invoice request.
func invoice(customID string, lines ...map[string]any) map[string]any {
	if len(lines) == 0 {
		lines = []map[string]any{{"product_code": "KOPI-01", "quantity": 2, "rate": 25000}}
	}
	return map[string]any{"sales_invoice": map[string]any{
		"transaction_date": "2026-09-16", "due_date": "2026-09-16", "person_name": "Pelanggan Umum",
		"custom_id": customID, "reference_no": "MOKA-1", "memo": "Outlet Kemang", "tags": []string{"Kemang"},
		"transaction_lines_attributes": lines,
	}}
}
func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func itoa(n int) string { return strconv.Itoa(n) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
