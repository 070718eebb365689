package checkout

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/checkout/mokkafake"
	"github.com/pwbi/edge-agent/agent/logging"
	"github.com/pwbi/edge-agent/store"
)

// BenchmarkGatewayOverhead measures what the gateway adds to a tablet's
// Mokka call: the same signed Status call, made directly to the fake
// Mokka and through the gateway (token check, validation, signing, relay,
// order tracking with its store read, the info log line to a real log
// file), by 1 and 20 concurrent tablets over loopback HTTP. Each tablet
// alternates direct and relayed calls so both see the same load. Reported:
// p50 and p99 of each, and the overhead (relayed minus direct) at p50 and
// p99, in µs. ns/op is per pair of calls.
//
// mokka=0ms: the fake answers at once, so the tablets' loop is CPU-bound and
// the two cores are shared by the tablets, the gateway and the fake: a
// saturation test. mokka=20ms: the fake answers after 20 ms, a fast real
// Mokka seen from a shop's internet line, and the machine is not saturated.
func BenchmarkGatewayOverhead(b *testing.B) {
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		for _, tablets := range []int{1, 20} {
			b.Run(fmt.Sprintf("mokka=%v/tablets=%d", delay, tablets), func(b *testing.B) { benchOverhead(b, delay, tablets) })
		}
	}
}

func benchOverhead(b *testing.B, delay time.Duration, tablets int) {
	fake := mokkafake.NewServer(b, mokkafake.Options{MaxRequestLog: 100})
	st, err := store.Open(store.Options{Path: filepath.Join(b.TempDir(), "agent.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	logs, err := logging.New("info", io.Discard, filepath.Join(b.TempDir(), "logs"))
	if err != nil {
		b.Fatal(err)
	}
	defer logs.Close()
	cfg := Config{
		Enabled: true, BaseURL: fake.URL(), StoreID: fake.StoreID(), SecretKey: fake.SecretKey(), Timeout: 30 * time.Second,
		Tablets: []Tablet{{Name: "Bench", TokenSHA256: tokenHash(testToken)}},
	}
	gw, err := New(cfg, Options{Store: st, Logger: logs.Logger})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	hc := &http.Client{Transport: tr}
	do := func(req *http.Request) {
		resp, err := hc.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Errorf("HTTP %d", resp.StatusCode)
		}
	}
	// One held order, tracked by the gateway.
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer cb.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mokka/"+MethodCheckout, strings.NewReader(
		`{"callback_url":"`+cb.URL+`","redirect_url":"https://a/b","current_order":{"order_id":"BENCH-1","amount":"100.00"}}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	do(req)
	if _, err := fake.Complete("BENCH-1", ""); err != nil {
		b.Fatal(err)
	}

	fake.SetDelay(delay)
	body := []byte(`{"order_id":"BENCH-1"}`)
	direct := fake.URL() + "/" + MethodStatus + "?store_id=" + fake.StoreID() + "&signature=" + Sign(body, fake.SecretKey())
	relayed := srv.URL + "/mokka/" + MethodStatus
	call := func(url string, token bool) time.Duration {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		if token {
			req.Header.Set("Authorization", "Bearer "+testToken)
		}
		t0 := time.Now()
		do(req)
		return time.Since(t0)
	}
	// Warm the connection pools.
	for range 2 * tablets {
		call(direct, false)
		call(relayed, true)
	}

	var (
		mu          sync.Mutex
		dLat, gLat  []time.Duration
		wg          sync.WaitGroup
		perTablet   = max(b.N/tablets, 1)
		startSignal = make(chan struct{})
	)
	b.ResetTimer()
	for i := range tablets {
		wg.Go(func() {
			d := make([]time.Duration, 0, perTablet)
			g := make([]time.Duration, 0, perTablet)
			<-startSignal
			for j := range perTablet {
				if (i+j)%2 == 0 {
					d = append(d, call(direct, false))
					g = append(g, call(relayed, true))
				} else {
					g = append(g, call(relayed, true))
					d = append(d, call(direct, false))
				}
			}
			mu.Lock()
			dLat, gLat = append(dLat, d...), append(gLat, g...)
			mu.Unlock()
		})
	}
	close(startSignal)
	wg.Wait()
	b.StopTimer()

	dp50, dp99 := percentile(dLat, 50), percentile(dLat, 99)
	gp50, gp99 := percentile(gLat, 50), percentile(gLat, 99)
	b.ReportMetric(us(dp50), "direct-p50-µs")
	b.ReportMetric(us(dp99), "direct-p99-µs")
	b.ReportMetric(us(gp50), "gateway-p50-µs")
	b.ReportMetric(us(gp99), "gateway-p99-µs")
	b.ReportMetric(us(gp50-dp50), "overhead-p50-µs")
	b.ReportMetric(us(gp99-dp99), "overhead-p99-µs")
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(i, 0)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkRelayHandler is the gateway's own CPU per relayed Status call:
// the handler with Mokka replaced by an in-memory answer (no sockets), so
// what remains is the token check, validation, signing, building the
// request, reading the answer, order tracking and the log line.
func BenchmarkRelayHandler(b *testing.B) {
	st, err := store.Open(store.Options{Path: filepath.Join(b.TempDir(), "agent.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	logs, err := logging.New("info", io.Discard, filepath.Join(b.TempDir(), "logs"))
	if err != nil {
		b.Fatal(err)
	}
	defer logs.Close()
	answer := []byte(`{"status":0,"message":"Payload valid","current_order":{"order_id":"BENCH-1","expired":false,"status":"hold","decision":"approved","amount":100.00,"term":3}}`)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		io.Copy(io.Discard, r.Body)
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(string(answer)))}, nil
	})}
	gw, err := New(Config{Enabled: true, BaseURL: "http://mokka.invalid", StoreID: "72", SecretKey: "k", Timeout: time.Second,
		Tablets: []Tablet{{Name: "Bench", TokenSHA256: tokenHash(testToken)}}}, Options{Store: st, Client: hc, Logger: logs.Logger})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/mokka/"+MethodStatus, strings.NewReader(`{"order_id":"BENCH-1"}`))
		req.Header.Set("Authorization", "Bearer "+testToken)
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("HTTP %d", w.Code)
		}
	}
}
