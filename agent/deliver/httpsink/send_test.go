package httpsink

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for code, want := range map[int]class{
		200: classAck, 201: classAck, 204: classAck, 299: classAck, 409: classAck,
		300: classRedirect, 301: classRedirect, 302: classRedirect, 304: classRedirect, 307: classRedirect, 308: classRedirect,
		408: classTransient, 425: classTransient, 429: classTransient, 500: classTransient, 503: classTransient, 599: classTransient,
		401: classAuth, 403: classAuth, 407: classAuth,
		404: classEndpoint, 405: classEndpoint, 415: classEndpoint,
		413: classTooLarge,
		400: classRejected, 422: classRejected, 418: classRejected, 499: classRejected,
		100: classUnexpected, 199: classUnexpected, 600: classUnexpected, 0: classUnexpected,
	} {
		if got := classify(code); got != want {
			t.Errorf("classify(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestStatusError(t *testing.T) {
	e := &StatusError{StatusCode: 401, Body: "nope"}
	if !errors.Is(e, ErrUnauthorized) || e.Error() != "upstream rejected the token (401 Unauthorized): nope" {
		t.Errorf("%v", e)
	}
	e = &StatusError{StatusCode: 503, RetryAfter: 7 * time.Second}
	if errors.Is(e, ErrUnauthorized) || e.Error() != "upstream answered 503 Service Unavailable (retry after 7s)" {
		t.Errorf("%v", e)
	}
	if e := (&StatusError{StatusCode: 404}); !strings.Contains(e.Error(), "check upstream.url") {
		t.Errorf("%v", e)
	}
	for _, tc := range []struct {
		e      *StatusError
		text   string
		notAck bool
	}{
		{&StatusError{StatusCode: 200, NotAck: "a web page"}, "upstream answered 200 OK without acknowledging the batch (a web page)", true},
		{&StatusError{StatusCode: 204}, "upstream answered 204 No Content without acknowledging the batch", true},
		{&StatusError{StatusCode: 409, NotAck: "JSON without the batch id", Body: `{"error":"x"}`},
			`upstream answered 409 Conflict without acknowledging the batch (JSON without the batch id): {"error":"x"}`, true},
		{&StatusError{StatusCode: 302, RedirectHost: "portal.example"}, "upstream answered 302 Found, a redirect to portal.example (check upstream.url)", true},
		{&StatusError{StatusCode: 301}, "upstream answered 301 Moved Permanently, a redirect (check upstream.url)", true},
		{&StatusError{StatusCode: 400, Body: "bad"}, "upstream answered 400 Bad Request: bad", false},
		{&StatusError{StatusCode: 101}, "upstream answered 101 Switching Protocols (check upstream.url)", false},
	} {
		if got := tc.e.Error(); got != tc.text {
			t.Errorf("Error() = %q, want %q", got, tc.text)
		}
		if errors.Is(tc.e, ErrNotAcknowledged) != tc.notAck || errors.Is(tc.e, ErrUnauthorized) {
			t.Errorf("%v: errors.Is(ErrNotAcknowledged) = %v", tc.e, !tc.notAck)
		}
	}
}

func TestBatchesURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://ingest.example":          "https://ingest.example/v1/batches",
		"https://ingest.example/":         "https://ingest.example/v1/batches",
		"http://127.0.0.1:8080/pwbi":      "http://127.0.0.1:8080/pwbi/v1/batches",
		"https://u:secret@ingest.example": "https://u:secret@ingest.example/v1/batches",
	} {
		if got, err := batchesURL(in); err != nil || got != want {
			t.Errorf("batchesURL(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"ingest.example", "ftp://x", "https://", "://u:secret@x", "http://[::1"} {
		if _, err := batchesURL(in); err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("batchesURL(%q) error %v", in, err)
		}
	}
}
