package backoff

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func fixed(r float64) func() float64 { return func() float64 { return r } }

// The documented shape: ceilings Base·2ⁿ capped at Max, the wait half the
// ceiling plus r of the other half.
func TestDelayShape(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		name string
		p    Policy
		want []time.Duration // n = 0, 1, 2, ...
	}{
		{"no jitter", Policy{Base: s, Max: 10 * s, Rand: NoJitter},
			[]time.Duration{s, 2 * s, 4 * s, 8 * s, 10 * s, 10 * s}},
		{"bottom", Policy{Base: s, Max: 10 * s, Rand: fixed(0)},
			[]time.Duration{s / 2, s, 2 * s, 4 * s, 5 * s, 5 * s}},
		{"middle", Policy{Base: 2 * s, Max: 5 * time.Minute, Rand: fixed(0.5)},
			[]time.Duration{1500 * time.Millisecond, 3 * s, 6 * s, 12 * s, 24 * s, 48 * s, 96 * s, 192 * s, 225 * s, 225 * s}},
		{"broken rand counts as 0.5", Policy{Base: 2 * s, Max: 5 * time.Minute, Rand: fixed(7)},
			[]time.Duration{1500 * time.Millisecond, 3 * s}},
		{"NaN counts as 0.5", Policy{Base: 2 * s, Rand: fixed(math.NaN())},
			[]time.Duration{1500 * time.Millisecond, 3 * s}},
		{"negative counts as 0.5", Policy{Base: 2 * s, Rand: fixed(-0.1)},
			[]time.Duration{1500 * time.Millisecond}},
		{"zero Base is a second", Policy{Rand: NoJitter},
			[]time.Duration{s, 2 * s, 4 * s}},
		{"Max below Base caps the first wait too", Policy{Base: 2 * s, Max: 1500 * time.Millisecond, Rand: NoJitter},
			[]time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond}},
		{"Min raises a short wait", Policy{Base: 2 * s, Max: 1500 * time.Millisecond, Min: s, Rand: fixed(0)},
			[]time.Duration{s, s}},
		{"Min never above Max", Policy{Base: s, Max: 3 * s, Min: time.Hour, Rand: fixed(0)},
			[]time.Duration{3 * s, 3 * s, 3 * s}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for n, want := range tc.want {
				if got := tc.p.Delay(n); got != want {
					t.Errorf("Delay(%d) = %v, want %v", n, got, want)
				}
			}
		})
	}
	if got := (Policy{Base: time.Second, Rand: NoJitter}).Delay(-3); got != time.Second {
		t.Errorf("Delay(-3) = %v, want the first wait", got)
	}
}

// Whatever the retry number and the draw, a wait is in [c/2, c] of its
// ceiling, within [Min, Max], and never shrinks from one retry to the next;
// a policy without Max saturates instead of overflowing.
func TestDelayBounds(t *testing.T) {
	for _, p := range []Policy{
		{Base: time.Second, Max: time.Minute},
		{Base: 2 * time.Second, Max: 5 * time.Minute, Min: time.Second},
		{Base: 30 * time.Second, Max: 15 * time.Minute, Min: 15 * time.Second},
		{Base: 3, Max: 1000},              // odd nanoseconds
		{Base: time.Hour},                 // no cap
		{Base: math.MaxInt64 / 3, Max: 0}, // no cap, near overflow
	} {
		for _, r := range []float64{0, 0.25, 0.5, 0.999999, 1} {
			p.Rand = fixed(r)
			prev := time.Duration(0)
			for n := 0; n < 200; n++ {
				d := p.Delay(n)
				if d <= 0 || d < prev {
					t.Fatalf("%+v: Delay(%d) = %v after %v", p, n, d, prev)
				}
				if p.Max > 0 && d > p.Max {
					t.Fatalf("%+v: Delay(%d) = %v beyond Max", p, n, d)
				}
				if p.Min > 0 && d < min(p.Min, p.Max) {
					t.Fatalf("%+v: Delay(%d) = %v below Min", p, n, d)
				}
				prev = d
			}
		}
	}
	// The default source stays within the bounds too.
	p := Policy{Base: time.Second, Max: 8 * time.Second}
	for range 1000 {
		if d := p.Delay(2); d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("Delay(2) = %v outside [2s, 4s]", d)
		}
	}
}

var t0 = time.Date(2025, 12, 26, 3, 0, 0, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	now := t0
	const limit = time.Hour
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"   ", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"3600", time.Hour, true},
		{"3601", time.Hour, true},
		{"0000000000", 0, true},
		{"0000000000007", 7 * time.Second, true},
		{"4294967296", time.Hour, true}, // beyond 32 bits: still a delay, capped
		{"99999999999999999999999", time.Hour, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"+5", 0, false},
		{"5s", 0, false},
		{"soon", 0, false},
		{"٣", 0, false}, // a digit, but not an ASCII one
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour, true},
		{"Friday, 26-Dec-25 03:00:30 GMT", 30 * time.Second, true}, // RFC 850
		{"Fri Dec 26 03:01:00 2025", time.Minute, true},            // ANSI C
		{"Fri, 26 Dec 2025 03:01:00 +0700", 0, false},
	} {
		d, ok := ParseRetryAfter(tc.in, now, limit)
		if d != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, d, ok, tc.want, tc.ok)
		}
	}
	// The limit is the caller's; none means no cap.
	if d, ok := ParseRetryAfter("86400", now, 15*time.Minute); d != 15*time.Minute || !ok {
		t.Errorf("capped at 15m: %v, %v", d, ok)
	}
	if d, ok := ParseRetryAfter("86400", now, 0); d != 24*time.Hour || !ok {
		t.Errorf("no cap: %v, %v", d, ok)
	}
	if d, ok := ParseRetryAfter("99999999999", now, 0); d != math.MaxInt64 || !ok {
		t.Errorf("no cap, huge: %v, %v", d, ok)
	}
	if d, ok := ParseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now, 0); d <= 0 || !ok {
		t.Errorf("no cap, far date: %v, %v", d, ok)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "7", "3600", "86400", "-1", "1e3", "18446744073709551616",
		"Fri, 26 Dec 2025 03:01:00 GMT", "Friday, 26-Dec-25 03:00:30 GMT", "Fri Dec 26 03:01:00 2025",
		"Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", " 5 ", "\x00", "٣"} {
		f.Add(s)
	}
	const limit = time.Hour
	f.Fuzz(func(t *testing.T, v string) {
		// The HTTP-date forms are net/http's, without importing it.
		if got, ok := parseHTTPDate(v); true {
			want, err := http.ParseTime(v)
			if ok != (err == nil) || (ok && !got.Equal(want)) {
				t.Fatalf("parseHTTPDate(%q) = %v, %v; http.ParseTime = %v, %v", v, got, ok, want, err)
			}
		}
		d, ok := ParseRetryAfter(v, t0, limit)
		if d < 0 || d > limit {
			t.Fatalf("ParseRetryAfter(%q) = %v, outside [0, %v]", v, d, limit)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v with ok=false", v, d)
		}
		trimmed := strings.TrimSpace(v)
		if isDigits(trimmed) {
			if !ok {
				t.Fatalf("delta-seconds %q rejected", v)
			}
			if n, err := strconv.ParseInt(trimmed, 10, 64); err == nil && n < 3600 && d != time.Duration(n)*time.Second {
				t.Fatalf("ParseRetryAfter(%q) = %v, want %ds", v, d, n)
			}
		}
		// Without a cap, a valid value is never negative either.
		if d2, ok2 := ParseRetryAfter(v, t0, 0); d2 < 0 || ok2 != ok || (ok && d2 < d) {
			t.Fatalf("ParseRetryAfter(%q) without cap = %v, %v; with cap %v, %v", v, d2, ok2, d, ok)
		}
	})
}
