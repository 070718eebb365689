package localapi

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// authBackend is a fakeBackend that also runs the Moka authorization.
type authBackend struct {
	fakeBackend
	amu       sync.Mutex
	starts    int
	callbacks []MokaCallback
	startErr  error
}

const authorizeURL = "https://account.moka.test/oauth/authorize?client_id=c&state=S1"

func (b *authBackend) MokaAuthorize(context.Context) (MokaAuthorization, error) {
	b.amu.Lock()
	defer b.amu.Unlock()
	if b.startErr != nil {
		return MokaAuthorization{}, b.startErr
	}
	b.starts++
	return MokaAuthorization{AuthorizeURL: authorizeURL, RedirectURI: "http://127.0.0.1:8687" + PathMokaCallback, ExpiresAt: testNow}, nil
}

func (b *authBackend) MokaCallback(_ context.Context, cb MokaCallback) error {
	b.amu.Lock()
	defer b.amu.Unlock()
	b.callbacks = append(b.callbacks, cb)
	switch {
	case cb.Error != "":
		return &BadRequestError{Err: errors.New("Moka did not grant access: " + cb.Error)}
	case cb.State != "S1":
		return &BadRequestError{Err: errors.New("this authorization link has expired or was already used")}
	case cb.Code == "boom":
		return errors.New("exchange moka authorization code: HTTP 503")
	}
	return nil
}

var _ MokaAuthBackend = (*authBackend)(nil)

func TestMokaAuthRoutesAndGuards(t *testing.T) {
	const host = "127.0.0.1:8687"
	navigation := map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
	for _, tc := range []struct {
		name      string
		method    string
		path      string
		host      string
		hdr       map[string]string
		want      int
		callbacks int
		starts    int
	}{
		{"start from the dashboard", "GET", PathMokaStart, host, map[string]string{"Sec-Fetch-Site": "same-origin"}, 302, 0, 1},
		{"start typed in", "GET", PathMokaStart, host, map[string]string{"Sec-Fetch-Site": "none"}, 302, 0, 1},
		{"start from another site", "GET", PathMokaStart, host, navigation, 403, 0, 0},
		{"start via POST", "POST", PathMokaStart, host, nil, 405, 0, 0},
		{"callback from Moka's site", "GET", PathMokaCallback + "?code=c1&state=S1", host, navigation, 200, 1, 0},
		{"callback by name", "GET", PathMokaCallback + "?code=c1&state=S1", "localhost:8687", navigation, 200, 1, 0},
		{"callback with a foreign host", "GET", PathMokaCallback + "?code=c1&state=S1", "evil.example:8687", navigation, 403, 0, 0},
		{"callback with a bad state", "GET", PathMokaCallback + "?code=c1&state=forged", host, navigation, 400, 1, 0},
		{"callback denied", "GET", PathMokaCallback + "?error=access_denied&state=S1", host, navigation, 400, 1, 0},
		{"callback exchange fails", "GET", PathMokaCallback + "?code=boom&state=S1", host, navigation, 502, 1, 0},
		{"callback HEAD does not use the state", "HEAD", PathMokaCallback + "?code=c1&state=S1", host, nil, 405, 0, 0},
		{"callback POST cross-site", "POST", PathMokaCallback + "?code=c1&state=S1", host,
			map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403, 0, 0},
		{"authorize from the cli", "POST", PathMokaAuthorize, host, nil, 200, 0, 1},
		{"authorize cross-site", "POST", PathMokaAuthorize, host, map[string]string{"Origin": "https://evil.example"}, 403, 0, 0},
		{"authorize via GET", "GET", PathMokaAuthorize, host, nil, 405, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &authBackend{}
			h := NewServer(b, ServerOptions{}).Handler()
			r := httptest.NewRequest(tc.method, "http://"+tc.host+tc.path, nil)
			r.Host = tc.host
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("HTTP %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if len(b.callbacks) != tc.callbacks || b.starts != tc.starts {
				t.Fatalf("backend saw %d callbacks, %d starts", len(b.callbacks), b.starts)
			}
			switch {
			case w.Code == 302:
				if w.Header().Get("Location") != authorizeURL {
					t.Errorf("redirect to %q", w.Header().Get("Location"))
				}
			case strings.HasPrefix(tc.path, PathMokaCallback) && tc.want != 403 && tc.want != 405:
				if w.Header().Get("Referrer-Policy") != "no-referrer" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
					t.Errorf("headers %v", w.Header())
				}
				body := w.Body.String()
				if (tc.want == 200) != strings.Contains(body, "Moka is connected") {
					t.Errorf("page %s", body)
				}
				if cb := b.callbacks[0]; tc.want == 200 && (cb.Code != "c1" || cb.State != "S1") {
					t.Errorf("callback %+v", cb)
				}
			}
		})
	}
}

func TestMokaAuthStartFailureAndNoBackend(t *testing.T) {
	b := &authBackend{startErr: &BadRequestError{Err: errors.New(`moka.api is "apikey"`)}}
	h := NewServer(b, ServerOptions{}).Handler()
	if w := do(h, "GET", PathMokaStart, "", nil); w.Code != 400 || !strings.Contains(w.Body.String(), "apikey") {
		t.Fatalf("start refused: %d %s", w.Code, w.Body)
	}
	if w := do(h, "POST", PathMokaAuthorize, "", nil); w.Code != 400 {
		t.Fatalf("authorize refused: %d", w.Code)
	}
	// A backend without the flow serves none of it.
	h = NewServer(&fakeBackend{}, ServerOptions{}).Handler()
	for _, p := range []string{PathMokaStart, PathMokaCallback} {
		if w := do(h, "GET", p, "", nil); w.Code != 404 {
			t.Errorf("%s: %d", p, w.Code)
		}
	}
}

func TestClientMokaAuthorize(t *testing.T) {
	b := &authBackend{}
	srv := httptest.NewServer(NewServer(b, ServerOptions{}).Handler())
	defer srv.Close()
	c := NewClient(strings.TrimPrefix(srv.URL, "http://"), nil)
	a, err := c.MokaAuthorize(context.Background())
	if err != nil || a.AuthorizeURL != authorizeURL || !a.ExpiresAt.Equal(testNow) {
		t.Fatalf("%+v %v", a, err)
	}
	b.startErr = &BadRequestError{Err: errors.New("moka.client_id is not set")}
	if _, err := c.MokaAuthorize(context.Background()); err == nil || !strings.Contains(err.Error(), "client_id") {
		t.Fatalf("error %v", err)
	}
}

func TestDashboardConnectMoka(t *testing.T) {
	st := busyStatus()
	st.Moka.NeedsAuthorization = true
	_, page := render(t, st, "/", nil)
	if !strings.Contains(page, `id="connect-moka" href="/oauth/moka/start"`) || !strings.Contains(text(page), "Moka needs to be connected") {
		t.Fatalf("no Connect Moka button:\n%s", text(page))
	}
	st.Moka.NeedsAuthorization = false
	at := testNow.Add(-2 * time.Hour)
	st.Moka.OAuth = &MokaOAuthStatus{Connected: true, BusinessID: "81234", AuthorizedAt: &at, LastRefreshAt: ptr(testNow.Add(-5 * time.Minute))}
	_, page = render(t, st, "/", nil)
	if strings.Contains(page, "connect-moka") || !strings.Contains(text(page), "Moka account connected (business 81234) 2 h ago · access renewed 5 min ago") {
		t.Fatalf("connected view:\n%s", text(page))
	}
}
