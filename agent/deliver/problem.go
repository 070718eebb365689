package deliver

import "github.com/pwbi/edge-agent/agent/deliver/sink"

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
