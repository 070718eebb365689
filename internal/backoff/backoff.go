// Package backoff is the one home of the retry timing every part of the
// project shares: exponential backoff with "equal jitter" (Policy) and the
// parsing of a server's Retry-After header (ParseRetryAfter).
//
// The randomness is injected (Policy.Rand), so that tests can pin exact
// waits; nothing here sleeps or reads a clock: callers wait on their own
// (injected) clock.
package backoff

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Policy is an exponential backoff with equal jitter (as in "Exponential
// Backoff And Jitter", AWS Architecture Blog, 2015). The wait before retry
// number n (n ≥ 0: the first retry is 0) has the ceiling
//
//	c = min(Max, Base·2ⁿ)
//
// and is half of it plus a random part r of the other half:
//
//	wait = c/2 + r·(c − c/2), r from Rand in [0, 1]
//
// raised to Min when it falls below (never above Max). So the waits lie in
// [Base/2, Base], [Base, 2·Base], [2·Base, 4·Base], ... up to
// [Max/2, Max]: they grow exponentially, never exceed Max, and clients
// that failed together do not retry together. A Rand that always returns 1
// (NoJitter) gives no jitter at all: every wait is its ceiling.
//
// Callers that count failures from 1 pass failures−1; one whose shortest
// wait must be a given d uses Base 2·d (and Min d when Max may be below
// 2·d), so that its waits are [d, 2d], [2d, 4d], ...
//
// A Policy is a value; Delay is safe for concurrent use when Rand is.
type Policy struct {
	// Base is the ceiling of the first retry's wait. Zero or less means
	// one second.
	Base time.Duration
	// Max caps every ceiling, so no wait is longer, even below Base.
	// Zero or less means no cap.
	Max time.Duration
	// Min, when positive, is the shortest wait: a shorter one is raised
	// to it, but never above Max. With Base ≥ 2·Min it only matters when
	// Max is below 2·Min.
	Min time.Duration
	// Rand draws the jitter in [0, 1]; nil means math/rand/v2's Float64.
	// A value outside [0, 1] (or NaN, from a broken source) counts as 0.5.
	Rand func() float64
}

// NoJitter is a Rand that always draws the top of the range: every wait is
// its ceiling, Base·2ⁿ capped at Max.
func NoJitter() float64 { return 1 }

// forever is the cap of a Policy without Max.
const forever = time.Duration(math.MaxInt64)

// Delay returns the wait before retry number n (n ≥ 0; a negative n counts
// as 0).
func (p Policy) Delay(n int) time.Duration {
	c := p.Base
	if c <= 0 {
		c = time.Second
	}
	hi := p.Max
	if hi <= 0 {
		hi = forever
	}
	for i := 0; i < n && c < hi; i++ {
		if c > hi/2 {
			c = hi // doubling would pass the cap (or overflow)
			break
		}
		c *= 2
	}
	c = min(c, hi)
	rnd := p.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	r := rnd()
	if !(r >= 0 && r <= 1) { // also catches NaN
		r = 0.5
	}
	half := c / 2
	d := half + time.Duration(r*float64(c-half))
	if p.Min > 0 {
		d = max(d, min(p.Min, hi))
	}
	return d
}

// ParseRetryAfter parses a Retry-After value (RFC 9110 §10.2.3):
// delay-seconds or an HTTP-date, the latter relative to now (the caller's
// clock). The result is in [0, limit] (a limit of zero or less means no
// cap); a date in the past is 0. ok is false when v is absent or malformed;
// then d is 0. Leading and trailing white space is ignored; a sign, a
// fraction or a unit is malformed. A delay of more digits than fit is
// capped, not rejected: the server asked for a very long wait.
func ParseRetryAfter(v string, now time.Time, limit time.Duration) (d time.Duration, ok bool) {
	if limit <= 0 {
		limit = forever
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		digits := strings.TrimLeft(v, "0")
		if digits == "" {
			return 0, true
		}
		// More than 9 digits is more than 31 years (and could overflow a
		// Duration): surely beyond any cap.
		if len(digits) > 9 {
			return limit, true
		}
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return 0, false
		}
		return min(time.Duration(n)*time.Second, limit), true
	}
	t, ok := parseHTTPDate(v)
	if !ok {
		return 0, false
	}
	return min(max(t.Sub(now), 0), limit), true
}

// httpDateLayouts are the HTTP-date forms of RFC 9110 §5.6.7, as
// net/http.ParseTime accepts them (that package is not imported here: the
// delivery loop that uses this package must not depend on a transport).
var httpDateLayouts = []string{
	"Mon, 02 Jan 2006 15:04:05 GMT", // IMF-fixdate (http.TimeFormat)
	time.RFC850,
	time.ANSIC,
}

func parseHTTPDate(v string) (time.Time, bool) {
	for _, layout := range httpDateLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
