package mekari

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// TestSign: the Authorization header is Mekari's HMAC over "date: …" and
// the request line with the query, and Digest covers the body.
func TestSign(t *testing.T) {
	req, _ := http.NewRequest("POST", "https://api.mekari.com/public/jurnal/api/v1/products?name=Kopi+Susu", nil)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.FixedZone("WIB", 7*3600))
	Sign(req, "client-1", "s3cret", now, []byte(`{"a":1}`))
	date := "Sun, 06 Dec 2026 03:00:00 GMT"
	if got := req.Header.Get("Date"); got != date {
		t.Errorf("Date %q, want %q", got, date)
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte("date: " + date + "\nPOST /public/jurnal/api/v1/products?name=Kopi+Susu HTTP/1.1"))
	want := `hmac username="client-1", algorithm="hmac-sha256", headers="date request-line", signature="` +
		base64.StdEncoding.EncodeToString(mac.Sum(nil)) + `"`
	if got := req.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization\n got %s\nwant %s", got, want)
	}
	sum := sha256.Sum256([]byte(`{"a":1}`))
	if got := req.Header.Get("Digest"); got != "SHA-256="+base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("Digest %q", got)
	}
	get, _ := http.NewRequest("GET", "https://api.mekari.com/x", nil)
	Sign(get, "c", "s", now, nil)
	if get.Header.Get("Digest") != "" {
		t.Error("a request without a body carries a Digest")
	}
}

// TestMessage: Jurnal's error bodies in their shapes become one plain
// sentence, without the secret.
func TestMessage(t *testing.T) {
	for body, want := range map[string]string{
		`{"errors":{"memo":["Memo may not contain emoji"]}}`:                  "memo: Memo may not contain emoji",
		`{"errors":"Data not found"}`:                                         "Data not found",
		`{"message":"API rate limit exceeded"}`:                               "API rate limit exceeded",
		`{"error_full_messages":["Person can't be blank","Rate is invalid"]}`: "Person can't be blank; Rate is invalid",
		`<html>Bad gateway</html>`:                                            "<html>Bad gateway</html>",
		`{"errors":{"base":["secret-value leaked"],"a":["x"]}}`:               "a: x; base: <redacted> leaked",
	} {
		if got := Message([]byte(body), "secret-value"); got != want {
			t.Errorf("Message(%s) = %q, want %q", body, got, want)
		}
	}
}

func FuzzMessage(f *testing.F) {
	for _, s := range []string{`{"errors":{"a":["b",{"c":1}]}}`, `{"message":null}`, `[]`, `"x"`, "\x00\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m := Message(body, "topsecret")
		if strings.Contains(m, "topsecret") || len(m) > 304 {
			t.Fatalf("Message = %q", m)
		}
	})
}

// TestClassify: each answer becomes the kind the sink acts on; Jurnal's
// "not found" is a 422 with a message (or a 404).
func TestClassify(t *testing.T) {
	clock := clockwork.NewRealClock()
	for _, c := range []struct {
		status int
		body   string
		hdr    map[string]string
		want   Kind
	}{
		{409, `{"errors":"Custom id has already been taken"}`, nil, Conflict},
		{422, `{"errors":"Data not found"}`, nil, NotFound},
		{404, `{"errors":"Data not found"}`, nil, NotFound},
		{422, `{"errors":{"memo":["too long"]}}`, nil, Invalid},
		{429, `{"message":"API rate limit exceeded"}`, map[string]string{"Retry-After": "30"}, Quota},
		{401, `{"message":"HMAC signature does not match"}`, nil, Auth},
		{403, `{"message":"forbidden"}`, nil, Auth},
		{503, `{"message":"Service Unavailable"}`, nil, Server},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range c.hdr {
				w.Header().Set(k, v)
			}
			w.Header().Set("Date", clock.Now().UTC().Format(http.TimeFormat))
			w.WriteHeader(c.status)
			w.Write([]byte(c.body))
		}))
		cl := New(Config{BaseURL: srv.URL, ClientID: "c", ClientSecret: "s", RequestsPerMinute: 6000}, nil, clock)
		err := cl.Do(context.Background(), "GET", "x", nil, nil)
		srv.Close()
		if !IsKind(err, c.want) {
			t.Errorf("%d %s: %v, want kind %d", c.status, c.body, err, c.want)
		}
		if c.want == Quota {
			if e := err.(*Error); e.RetryAfter != 30*time.Second {
				t.Errorf("quota RetryAfter %s, want 30s", e.RetryAfter)
			}
		}
	}
}

// TestClockSkewLearnt: a 401 whose Date is far from the PC's clock makes
// the client sign again, once, with the gateway's time, and keep it.
func TestClockSkewLearnt(t *testing.T) {
	clock := clockwork.NewRealClock() // the limiter's 10 ms waits pass
	server := clock.Now().Add(-12 * time.Minute).Truncate(time.Second)
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Date", server.Format(http.TimeFormat))
		d, _ := http.ParseTime(r.Header.Get("Date"))
		if d.Sub(server).Abs() > MaxSkew {
			w.WriteHeader(401)
			w.Write([]byte(`{"message":"HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication"}`))
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	cl := New(Config{BaseURL: srv.URL, ClientID: "c", ClientSecret: "s", RequestsPerMinute: 6000}, nil, clock)
	if err := cl.Do(context.Background(), "GET", "x", nil, nil); err != nil {
		t.Fatal(err)
	}
	if off := cl.Offset(); off > -11*time.Minute || off < -13*time.Minute || calls != 2 {
		t.Errorf("offset %s after %d calls, want about -12m after 2", off, calls)
	}
	if err := cl.Do(context.Background(), "GET", "x", nil, nil); err != nil || calls != 3 {
		t.Errorf("next call: %v, %d calls (want one)", err, calls)
	}
}
