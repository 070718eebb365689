package httpsink

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps the wait a server can ask for with Retry-After.
const maxRetryAfter = time.Hour

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
