package upstream

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxRetryAfter caps the wait a server can ask for with Retry-After.
const maxRetryAfter = time.Hour

// backoffDuration is the wait after the n-th consecutive failure (n ≥ 1):
// equal jitter under an exponential ceiling minB·2^n capped at maxB — half
// the ceiling plus a random part of the other half — so the waits are
// [1s, 2s), [2s, 4s), ... with the defaults, never below minB nor above
// maxB, and agents that failed together do not retry together.
func backoffDuration(n int, minB, maxB time.Duration, rnd func() float64) time.Duration {
	ceil := minB
	for i := 0; i < n && ceil < maxB; i++ {
		ceil *= 2
	}
	ceil = min(ceil, maxB)
	r := rnd()
	if r < 0 || r >= 1 || r != r {
		r = 0.5
	}
	d := ceil/2 + time.Duration(r*float64(ceil/2))
	return min(max(d, minB), maxB)
}

// parseRetryAfter parses a Retry-After value (RFC 9110 §10.2.3):
// delta-seconds or an HTTP-date, relative to now. The result is in
// [0, maxRetryAfter]; ok is false when v is absent or malformed.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		digits := strings.TrimLeft(v, "0")
		if len(digits) > 9 { // more than ~31 years: surely beyond the cap
			return maxRetryAfter, true
		}
		if digits == "" {
			return 0, true
		}
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return 0, false
		}
		return min(time.Duration(n)*time.Second, maxRetryAfter), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	return min(max(d, 0), maxRetryAfter), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// redactMin is the shortest token that is redacted from text; shorter ones
// would blank out ordinary words.
const redactMin = 4

// redact replaces every occurrence of token in s.
func redact(s, token string) string {
	if len(token) < redactMin {
		return s
	}
	return strings.ReplaceAll(s, token, "[REDACTED]")
}

// snippet makes a short single-line extract of an answer body for logs,
// errors and dead-letter reasons: the token redacted, control characters and
// invalid UTF-8 replaced, whitespace collapsed, at most n bytes.
func snippet(body []byte, token string, n int) string {
	s := redact(string(body), token)
	var b strings.Builder
	space := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) {
			r = '?'
		}
		need := utf8.RuneLen(r)
		if space {
			need++
		}
		if b.Len()+need > n {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
