package sink

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSnippet(t *testing.T) {
	const token = "tok-SECRET-5f3a9c71"
	body := []byte("  error:\tbad\n\ntoken " + token + "\x00\xff end  ")
	got := Snippet(body, token, 100)
	if want := "error: bad token <redacted>?? end"; got != want {
		t.Errorf("Snippet = %q, want %q", got, want)
	}
	long := Snippet([]byte(strings.Repeat("é", 1000)), "", 50)
	if len(long) > 50+len("…") || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") {
		t.Errorf("long snippet %q (%d bytes)", long, len(long))
	}
	if s := Snippet([]byte("abc"), "ab", 10); s != "abc" {
		t.Errorf("a too short secret must not be redacted: %q", s)
	}
}

// An empty Answer must never acknowledge anything: its Verdict is Retry.
func TestZeroAnswerIsRetry(t *testing.T) {
	var a Answer
	if a.Verdict != Retry || a.Verdict.String() != "retry" {
		t.Errorf("zero Answer has verdict %v", a.Verdict)
	}
}
