package checkout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/checkout/mokkafake"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

const (
	testToken  = "tablet-token-front-counter-0123456789"
	testToken2 = "tablet-token-terrace-9876543210"
)

func tokenHash(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

// harness is a gateway in front of a fake Mokka, with a real store and a
// fake clock for the refresh schedule.
type harness struct {
	t     testing.TB
	fake  *mokkafake.Server
	st    *store.Store
	cs    *countingStore // st as the gateway sees it
	clock *clockwork.FakeClock
	gw    *Gateway
	srv   *httptest.Server
	cfg   Config
	logs  *testutil.SyncBuffer
	// mokkaCalls receives the path of every call the gateway makes to Mokka.
	mokkaCalls chan string

	callsMu sync.Mutex
	calls   []mokkaCall // every call the gateway made to Mokka
}

// mokkaCall is one call the gateway made to Mokka, at the harness clock's
// time.
type mokkaCall struct {
	At     time.Time
	Method string
}

// statusCalls returns the times of the gateway's Status calls.
func (h *harness) statusCalls() []time.Time {
	h.callsMu.Lock()
	defer h.callsMu.Unlock()
	var out []time.Time
	for _, c := range h.calls {
		if c.Method == MethodStatus {
			out = append(out, c.At)
		}
	}
	return out
}

// countingStore is the store as the gateway uses it, counting the document
// writes per key.
type countingStore struct {
	Store
	mu   sync.Mutex
	puts map[string]int
}

func newCountingStore(st Store) *countingStore {
	return &countingStore{Store: st, puts: make(map[string]int)}
}

func (c *countingStore) PutDoc(coll, key string, value []byte, in []store.Input) (store.AppendResult, error) {
	c.mu.Lock()
	c.puts[coll+"/"+key]++
	c.mu.Unlock()
	return c.Store.PutDoc(coll, key, value, in)
}

// writes returns how many times the order's document was written.
func (c *countingStore) writes(storeID, orderID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts[OrdersCollection+"/"+docKey(storeID, orderID)]
}

// total returns how many documents were written.
func (c *countingStore) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.puts {
		n += v
	}
	return n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func newHarness(t testing.TB, mod ...func(*Config)) *harness {
	t.Helper()
	return newHarnessWith(t, mokkafake.Options{}, mod...)
}

// newHarnessWith is newHarness with a fake Mokka made with opts.
func newHarnessWith(t testing.TB, opts mokkafake.Options, mod ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, logs: &testutil.SyncBuffer{}, mokkaCalls: make(chan string, 100)}
	h.fake = mokkafake.NewServer(t, opts)
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h.st = st
	h.clock = clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	h.cfg = Config{
		Enabled: true, BaseURL: h.fake.URL() + "/", StoreID: h.fake.StoreID(), SecretKey: h.fake.SecretKey(),
		// Real time, per Mokka call: long, so that a loaded machine never
		// makes a call to the fake time out (TestMokkaDownOrSlow sets its own).
		Timeout: 30 * time.Second,
		Tablets: []Tablet{{Name: "Front counter", TokenSHA256: tokenHash(testToken)}},
	}
	for _, m := range mod {
		m(&h.cfg)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		path := strings.TrimPrefix(r.URL.Path, "/")
		h.callsMu.Lock()
		h.calls = append(h.calls, mokkaCall{At: h.clock.Now(), Method: path})
		h.callsMu.Unlock()
		select {
		case h.mokkaCalls <- path:
		default:
		}
		return tr.RoundTrip(r)
	})}
	h.cs = newCountingStore(st)
	h.gw, err = New(h.cfg, Options{
		Store: h.cs, Client: client, Clock: h.clock,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(h.gw)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) callbackURL() string { return h.srv.URL + "/mokka/callback" }

// post sends a tablet request with token ("" for none).
func (h *harness) post(method, body, token string) (int, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/mokka/"+method, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.send(req)
}

func (h *harness) send(req *http.Request) (int, map[string]any) {
	h.t.Helper()
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		h.t.Fatalf("answer is not JSON (HTTP %d): %q", resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// code returns the Mokka status of an answer.
func code(m map[string]any) int {
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

func (h *harness) checkoutBody(orderID, amount, phone string) string {
	return `{"callback_url":"` + h.callbackURL() + `","redirect_url":"https://shop.example/back",` +
		`"primary_phone":"` + phone + `","primary_email":"jan.kowalski@example.pl",` +
		`"current_order":{"order_id":"` + orderID + `","amount":"` + amount + `"},` +
		`"person":{"first_name":"Jan","surname":"Kowalski","birth_date":"15.01.1975"}}`
}

// checkout creates an order through the gateway.
func (h *harness) checkout(orderID, amount, phone string) {
	h.t.Helper()
	st, m := h.post(MethodCheckout, h.checkoutBody(orderID, amount, phone), testToken)
	if st != 200 || code(m) != 0 {
		h.t.Fatalf("checkout %s: HTTP %d %v", orderID, st, m)
	}
}

// refreshDue runs the refresh loop's work once, synchronously.
func (h *harness) refreshDue() int {
	h.t.Helper()
	due, _ := h.gw.due(h.clock.Now())
	for _, e := range due {
		h.gw.refresh(context.Background(), e) //nolint:errcheck // tests look at the result
	}
	return len(due)
}

func (h *harness) order(id string) Order {
	h.t.Helper()
	v, ok, err := h.gw.Order(id)
	if err != nil || !ok {
		h.t.Fatalf("order %s: ok=%v err=%v", id, ok, err)
	}
	return v.Order
}

// records returns the buffered mokka_order records.
func (h *harness) records() []store.Record {
	h.t.Helper()
	recs, err := h.st.Pending(1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []store.Record
	for _, r := range recs {
		if r.Kind == store.KindMokkaOrder {
			out = append(out, r)
		}
	}
	return out
}

func (h *harness) complete(orderID, phone string) mokkafake.Callback {
	h.t.Helper()
	cb, err := h.fake.Complete(orderID, phone)
	if err != nil {
		h.t.Fatal(err)
	}
	if cb.HTTPStatus != 200 {
		h.t.Fatalf("callback answered %d (%s)", cb.HTTPStatus, cb.Err)
	}
	return cb
}
