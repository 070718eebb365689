package deliver

import (
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
)

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

// maxProblem bounds the Problems the loop writes itself.
const maxProblem = 400

// bufferProblem is the Problem shown when the local buffer fails.
func bufferProblem(what string, err error) string {
	return shorten(what+": "+err.Error(), maxProblem)
}

// shorten makes s one line of at most n bytes, on a rune boundary.
func shorten(s string, n int) string {
	return sink.Snippet([]byte(s), "", n)
}
