package jurnalfake

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSignedRequestIsAccepted(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.get("products").want(t, http.StatusOK)
	if got := a.header.Get("Date"); got != t0.Format(http.TimeFormat) {
		t.Errorf("Date header %q, want the server's clock %q", got, t0.Format(http.TimeFormat))
	}
	// A body with its Digest, and a query string in the request line.
	e.post("sales_invoices", invoice("moka-1-a")).want(t, http.StatusCreated)
	e.get("products?q=kopi&page=1").want(t, http.StatusOK)
}

func TestAuthenticationFailures(t *testing.T) {
	e := newEnv(t, Options{ClientID: "client-1", ClientSecret: "s3cret"})
	body := []byte(`{"sales_invoice":{}}`)
	cases := []struct {
		name   string
		mutate func(*http.Request)
		msg    string
	}{
		{"no authorization", func(r *http.Request) { r.Header.Del("Authorization") }, MsgUnauthorized},
		{"bearer instead of hmac", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, MsgSignatureInvalid},
		{"wrong secret", func(r *http.Request) { sign(r, body, "client-1", "not-the-secret", t0) }, MsgSignatureMismatch},
		{"unknown user", func(r *http.Request) { sign(r, body, "client-2", "s3cret", t0) }, MsgSignatureInvalid},
		{"request line of another path", func(r *http.Request) {
			r.URL.Path = APIPrefix + "products"
			sign(r, body, "client-1", "s3cret", t0)
			r.URL.Path = APIPrefix + "sales_invoices"
		}, MsgSignatureMismatch},
		{"request line without the query", func(r *http.Request) {
			q := r.URL.RawQuery
			r.URL.RawQuery = ""
			sign(r, body, "client-1", "s3cret", t0)
			r.URL.RawQuery = q
		}, MsgSignatureMismatch},
		{"signed with another method", func(r *http.Request) {
			r.Method = http.MethodGet
			sign(r, body, "client-1", "s3cret", t0)
			r.Method = http.MethodPost
		}, MsgSignatureMismatch},
		{"request-line not signed", func(r *http.Request) {
			h := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(h, `headers="date request-line"`, `headers="date"`, 1))
		}, MsgSignatureInvalid},
		{"sha1", func(r *http.Request) {
			h := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(h, "hmac-sha256", "hmac-sha1", 1))
		}, MsgSignatureInvalid},
		{"no date", func(r *http.Request) { r.Header.Del("Date") }, MsgDateOutOfRange},
		{"unparseable date", func(r *http.Request) { r.Header.Set("Date", "yesterday") }, MsgDateOutOfRange},
		{"date 301 s behind", func(r *http.Request) { sign(r, body, "client-1", "s3cret", t0.Add(-301*time.Second)) }, MsgDateOutOfRange},
		{"date 301 s ahead", func(r *http.Request) { sign(r, body, "client-1", "s3cret", t0.Add(301*time.Second)) }, MsgDateOutOfRange},
		{"digest of another body", func(r *http.Request) {
			r.Header.Set("Digest", "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
		}, MsgSignatureMismatch},
		{"digest with another algorithm", func(r *http.Request) {
			r.Header.Set("Digest", "MD5="+strings.TrimPrefix(r.Header.Get("Digest"), "SHA-256="))
		}, MsgSignatureMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.callRaw(http.MethodPost, "sales_invoices?source=test", body, c.mutate).want(t, http.StatusUnauthorized)
			if a.body["message"] != c.msg {
				t.Errorf("message %q, want %q", a.body["message"], c.msg)
			}
			if a.header.Get("Date") == "" {
				t.Error("401 without the server's Date header")
			}
		})
	}
	if n := len(e.s.Invoices()); n != 0 {
		t.Errorf("%d invoices created by unauthenticated requests", n)
	}
}

func TestDateWithinSkewIsAccepted(t *testing.T) {
	e := newEnv(t, Options{})
	for _, d := range []time.Duration{-300 * time.Second, 299 * time.Second} {
		e.call(http.MethodGet, "products", nil, func(r *http.Request) {
			sign(r, nil, e.s.ClientID(), e.s.ClientSecret(), t0.Add(d))
		}).want(t, http.StatusOK)
	}
}

// A skewed server clock refuses a client whose own clock is right, and its
// Date header tells the client by how much.
func TestSkewKnob(t *testing.T) {
	e := newEnv(t, Options{})
	e.s.SetSkew(10 * time.Minute)
	a := e.get("products").want(t, http.StatusUnauthorized)
	if a.body["message"] != MsgDateOutOfRange {
		t.Errorf("message %q", a.body["message"])
	}
	server, err := http.ParseTime(a.header.Get("Date"))
	if err != nil || server.Sub(t0) != 10*time.Minute {
		t.Errorf("Date %q: want the server's clock, 10 min ahead (%v)", a.header.Get("Date"), err)
	}
	// Signing with the server's time works.
	e.call(http.MethodGet, "products", nil, func(r *http.Request) {
		sign(r, nil, e.s.ClientID(), e.s.ClientSecret(), server)
	}).want(t, http.StatusOK)
}

func TestDigestOptionalUnlessRequired(t *testing.T) {
	e := newEnv(t, Options{})
	noDigest := func(r *http.Request) { r.Header.Del("Digest") }
	e.call(http.MethodPost, "sales_invoices", invoice("moka-1-a"), noDigest).want(t, http.StatusCreated)
	e.s.SetRequireDigest(true)
	a := e.call(http.MethodPost, "sales_invoices", invoice("moka-1-b"), noDigest).want(t, http.StatusUnauthorized)
	if a.body["message"] != MsgDigestRequired {
		t.Errorf("message %q", a.body["message"])
	}
	e.post("sales_invoices", invoice("moka-1-b")).want(t, http.StatusCreated)
	e.get("products").want(t, http.StatusOK) // no body, no digest needed
}

func TestUnknownPathIsNoRoute(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.get("sales_orders").want(t, http.StatusNotFound)
	if a.body["message"] != MsgNoRoute {
		t.Errorf("message %q", a.body["message"])
	}
}
