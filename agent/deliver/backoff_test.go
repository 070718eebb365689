package deliver

import (
	"testing"
	"time"
)

// The loop's waits after n consecutive failures (retryPolicy(...).Delay(n−1)):
// [minB·2^(n−1), minB·2ⁿ], never below minB nor above maxB.
func TestRetryPolicy(t *testing.T) {
	const minB, maxB = time.Second, 5 * time.Minute
	fixed := func(r float64) func() float64 { return func() float64 { return r } }
	wait := func(n int, minB, maxB time.Duration, r float64) time.Duration {
		return retryPolicy(minB, maxB, fixed(r)).Delay(n - 1)
	}
	for _, tc := range []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{1, 0, time.Second},
		{1, 0.5, 1500 * time.Millisecond},
		{1, 0.999, 1999 * time.Millisecond},
		{2, 0, 2 * time.Second},
		{2, 0.5, 3 * time.Second},
		{3, 0.5, 6 * time.Second},
		{9, 0, 150 * time.Second}, // ceiling 512s capped at 300s
		{9, 0.5, 225 * time.Second},
		{1000, 0.5, 225 * time.Second},
		{2, 7, 3 * time.Second}, // a broken Rand is tamed to 0.5
	} {
		if got := wait(tc.n, minB, maxB, tc.r); got != tc.want {
			t.Errorf("wait after %d failures (r=%v) = %v, want %v", tc.n, tc.r, got, tc.want)
		}
	}
	// MaxBackoff below twice MinBackoff: still within bounds.
	if got := wait(1, time.Second, 1500*time.Millisecond, 0); got != time.Second {
		t.Errorf("narrow bounds: %v", got)
	}
	if got := wait(1, time.Second, 1500*time.Millisecond, 0.999999); got < time.Second || got > 1500*time.Millisecond {
		t.Errorf("narrow bounds: %v", got)
	}
	for n := 1; n < 40; n++ {
		for _, r := range []float64{0, 0.25, 0.999999} {
			d := wait(n, minB, maxB, r)
			if d < minB || d > maxB {
				t.Fatalf("wait after %d failures (r=%v) = %v outside bounds", n, r, d)
			}
		}
	}
}
