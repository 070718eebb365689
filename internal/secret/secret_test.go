package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestSecretRendering(t *testing.T) {
	s := New("hunter2")
	for _, tt := range []struct{ got, want string }{
		{s.String(), "<secret>"},
		{fmt.Sprintf("%v", s), "<secret>"},
		{fmt.Sprintf("%q", s), `"<secret>"`},
		{fmt.Sprintf("%#v", s), `secret.Secret("<secret>")`},
		{s.GoString(), `secret.Secret("<secret>")`},
		{Secret{}.String(), ""},
		{fmt.Sprintf("%q", Secret{}), `""`},
		{fmt.Sprintf("%#v", Secret{}), `secret.Secret("")`},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	var got string
	if b, _ := json.Marshal(s); json.Unmarshal(b, &got) != nil || got != "<secret>" {
		t.Errorf("MarshalJSON = %s", b)
	}
	if b, _ := json.Marshal(Secret{}); string(b) != `""` {
		t.Errorf("MarshalJSON(empty) = %s", b)
	}
	if b, _ := s.MarshalText(); string(b) != "<secret>" {
		t.Errorf("MarshalText = %s", b)
	}
	if s.IsZero() || !(Secret{}).IsZero() || s.Value() != "hunter2" {
		t.Error("IsZero/Value")
	}
	if New("a") != New("a") || New("a") == New("b") {
		t.Error("Secret is not comparable by value")
	}
}

// Whatever way a Secret is rendered, alone or inside a struct, its value
// does not show.
func TestSecretNeverPrinted(t *testing.T) {
	const v = "S3CRET-VALUE"
	type grant struct {
		Access  Secret
		Refresh *Secret
		Name    string
	}
	r := New(v)
	g := grant{Access: New(v), Refresh: &r, Name: "x"}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-20v", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, g.Access), fmt.Sprintf(verb, g), fmt.Sprintf(verb, &g))
	}
	outs = append(outs, fmt.Sprint(g.Access, g), fmt.Sprintln(g), fmt.Errorf("wrapped %v: %w", g, errors.New("x")).Error())
	j, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "g", g, "s", g.Access)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "g", g, "s", g.Access)
	outs = append(outs, buf.String())
	for _, out := range outs {
		if strings.Contains(out, v) {
			t.Errorf("secret shown: %s", out)
		}
	}
	if g.Access.Value() != v || g.Refresh.Value() != v {
		t.Error("Value lost the secret")
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		text    string
		secrets []string
		want    string
	}{
		{"error: bad token tok-123 end", []string{"tok-123"}, "error: bad token <redacted> end"},
		{"a tok-123 b tok-123", []string{"tok-123"}, "a <redacted> b <redacted>"},
		{"key k-1234 and s-5678", []string{"k-1234", "", "s-5678"}, "key <redacted> and <redacted>"},
		{"the abc is short", []string{"abc"}, "the abc is short"}, // below MinLen: left alone
		{"abcd", []string{"abcd"}, "<redacted>"},                  // MinLen itself: taken out
		{"nothing here", nil, "nothing here"},
	} {
		if got := Redact(tc.text, tc.secrets...); got != tc.want {
			t.Errorf("Redact(%q, %q) = %q, want %q", tc.text, tc.secrets, got, tc.want)
		}
	}
}

func TestRedactParams(t *testing.T) {
	for in, want := range map[string]string{
		"GET /v3/x?per_page=50&access_token=abc.def-1&until=1": "GET /v3/x?per_page=50&access_token=<redacted>&until=1",
		`{"access_token":"a1","refresh_token": "r1"}`:          `{"access_token":"<redacted>","refresh_token": "<redacted>"}`,
		"cb?code=XYZ&state=s":                                  "cb?code=<redacted>&state=s",
		"client_secret=s3 zipcode=123":                         "client_secret=<redacted> zipcode=123",
		"ID_TOKEN=x.y.z":                                       "ID_TOKEN=<redacted>",
		`{"code" : "c0de"}`:                                    `{"code" : "<redacted>"}`,
		"nothing secret here":                                  "nothing secret here",
	} {
		if got := RedactParams(in); got != want {
			t.Errorf("RedactParams(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactErrorKeepsTheChain(t *testing.T) {
	cause := fmt.Errorf("open key-s3cret: %w", fs.ErrNotExist)
	err := RedactError(cause, func(s string) string { return Redact(s, "key-s3cret") })
	if err.Error() != "open <redacted>: file does not exist" || !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, cause) {
		t.Errorf("RedactError = %v", err)
	}
	if got := RedactError(cause, strings.ToLower); got != cause {
		t.Errorf("nothing to redact: got %v, want the error itself", got)
	}
	if RedactError(nil, strings.ToUpper) != nil {
		t.Error("nil became an error")
	}
	if w := WithMessage(cause, "hidden"); w.Error() != "hidden" || !errors.Is(w, fs.ErrNotExist) {
		t.Errorf("WithMessage = %v", w)
	}
}

func TestRedactURL(t *testing.T) {
	const full = "https://api.example/oauth/token?client_secret=s3cret"
	ue := &url.Error{Op: "Post", URL: full, Err: errors.New("connection refused")}

	got := RedactURL(ue, "/oauth/token")
	var gue *url.Error
	if got.Error() != `Post "/oauth/token": connection refused` || !errors.As(got, &gue) || gue.URL != "/oauth/token" {
		t.Errorf("bare *url.Error: %v", got)
	}
	if ue.URL != full {
		t.Error("the original error was changed")
	}

	wrapped := fmt.Errorf("moka: %w", ue)
	got = RedactURL(wrapped, "/oauth/token")
	if got.Error() != `moka: Post "/oauth/token": connection refused` || !errors.Is(got, ue) {
		t.Errorf("wrapped *url.Error: %v", got)
	}

	plain := errors.New("no url here")
	if RedactURL(plain, "/x") != plain {
		t.Error("an error without *url.Error was changed")
	}
	same := &url.Error{Op: "Get", URL: "/x", Err: errors.New("eof")}
	if RedactURL(same, "/x") != same {
		t.Error("an error already naming the path was changed")
	}
}
