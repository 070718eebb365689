package httpsink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
)

// ackVerdict says whether an answer with an accepting status (2xx, 409)
// acknowledges the batch that was sent, and if not, what it was instead.
type ackVerdict int

const (
	ackOK         ackVerdict = iota // a JSON object whose batch_id is the id sent
	ackEmpty                        // no body, or only white space
	ackTooLarge                     // longer than maxResponseBody: cannot be checked
	ackWebPage                      // HTML or XML: a captive portal, a proxy, a web server
	ackNotJSON                      // anything else that is not JSON
	ackNoBatchID                    // JSON without exactly one batch_id string (or not an object)
	ackOtherBatch                   // JSON acknowledging another batch
)

// String is the technical description used in StatusError.NotAck.
func (v ackVerdict) String() string {
	switch v {
	case ackOK:
		return "an acknowledgement"
	case ackEmpty:
		return "an empty body"
	case ackTooLarge:
		return fmt.Sprintf("an answer larger than %d bytes, which cannot be checked", maxResponseBody)
	case ackWebPage:
		return "a web page"
	case ackNotJSON:
		return "not JSON"
	case ackNoBatchID:
		return "JSON without the batch id"
	case ackOtherBatch:
		return "the batch id of another batch"
	}
	return "unknown"
}

var utf8BOM = []byte("\xef\xbb\xbf")

// checkAck judges the body of an answer with an accepting status. It is
// lenient in what it reads — any Content-Type, a leading byte order mark,
// white space, extra fields — and strict in what it counts as an
// acknowledgement (SPEC §6.1): a well-formed JSON object with exactly one
// "batch_id" member (exact spelling) whose value is a string equal to id.
// An answer cut at the read cap (overflow) cannot be verified and is never
// an acknowledgement. body is outside input; checkAck never panics.
func checkAck(contentType string, body []byte, overflow bool, id string) ackVerdict {
	if overflow {
		return ackTooLarge
	}
	b := bytes.TrimPrefix(body, utf8BOM)
	if len(bytes.TrimSpace(b)) == 0 {
		return ackEmpty
	}
	if !json.Valid(b) {
		if isWebPage(contentType, b) {
			return ackWebPage
		}
		return ackNotJSON
	}
	got, ok := echoedBatchID(b)
	switch {
	case !ok:
		return ackNoBatchID
	case got != id:
		return ackOtherBatch
	}
	return ackOK
}

// echoedBatchID returns the value of the "batch_id" member of the valid JSON
// document b, if b is an object with exactly one such member and its value
// is a string. Members are matched exactly (encoding/json would also match
// "Batch_ID"), and a repeated batch_id is ambiguous, so refused.
func echoedBatchID(b []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	var id string
	found := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		key, ok := tok.(string)
		if !ok {
			return "", false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "", false
		}
		if key != "batch_id" {
			continue
		}
		if found {
			return "", false
		}
		found = true
		if err := json.Unmarshal(v, &id); err != nil || !bytes.HasPrefix(bytes.TrimSpace(v), []byte(`"`)) {
			return "", false // not a string (json.Unmarshal takes null as "")
		}
	}
	return id, found
}

// isWebPage reports whether a body that is not JSON is a web page, by its
// Content-Type or by sniffing it: what a captive portal, a proxy's error
// page or a plain web server answers.
func isWebPage(contentType string, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		switch mt {
		case "text/html", "application/xhtml+xml", "text/xml", "application/xml":
			return true
		}
	}
	sniffed := http.DetectContentType(body)
	return strings.HasPrefix(sniffed, "text/html") || strings.HasPrefix(sniffed, "text/xml")
}

// notAckProblem is the Problem shown for an answer with an accepting status
// that is not an acknowledgement.
func notAckProblem(status int, v ackVerdict) string {
	sl := statusLine(status)
	switch v {
	case ackWebPage:
		return "the upstream answered with a web page, not an acknowledgement: is a Wi-Fi login page in the way?"
	case ackEmpty:
		return "the upstream answered " + sl + " with an empty body, not an acknowledgement"
	case ackTooLarge:
		return "the upstream answered " + sl + " with an answer too large to check, not an acknowledgement: is upstream.url the PWBI cloud?"
	case ackNotJSON:
		return "the upstream answered " + sl + " with something that is not JSON, not an acknowledgement: is upstream.url the PWBI cloud?"
	case ackNoBatchID:
		return "the upstream answered " + sl + " without the batch id, not an acknowledgement: is upstream.url the PWBI cloud?"
	case ackOtherBatch:
		return "the upstream answered " + sl + " but acknowledged a different batch, not the one sent: is a caching proxy in the way?"
	}
	return "the upstream answered " + sl + " without acknowledging the batch"
}

// redirectProblem is the Problem shown for a 3xx.
func redirectProblem(status int, host string) string {
	to := "elsewhere"
	if host != "" {
		to = "to " + host
	}
	return fmt.Sprintf("the upstream redirects %s (%s) instead of acknowledging: is a Wi-Fi login page in the way, or is upstream.url wrong?",
		to, statusLine(status))
}

// statusProblem is the Problem shown for a status that is neither an
// accepting one, a redirect, nor a record-level rejection.
func statusProblem(c class, status int) string {
	sl := statusLine(status)
	switch c {
	case classTransient:
		switch {
		case status == http.StatusTooManyRequests:
			return "the PWBI cloud asks the agent to slow down (" + sl + "): sales stay buffered and are sent again"
		case status >= 500:
			return "the PWBI cloud is not available (" + sl + "): sales stay buffered and are sent again"
		}
		return "the PWBI cloud answered " + sl + ": the batch is sent again"
	case classAuth:
		if status == http.StatusProxyAuthRequired {
			return "a proxy on the way to the PWBI cloud asks for credentials (" + sl + "): check the network's proxy settings"
		}
		return "the PWBI cloud refuses the token (" + sl + "): check upstream.token"
	case classEndpoint:
		return "the upstream answered " + sl + ": check upstream.url"
	}
	return "the upstream answered " + sl + ", which the agent does not understand: check upstream.url"
}

// uniformProblem is the Problem shown when the upstream refuses every record
// with the same answer.
func uniformProblem(e *StatusError) string {
	msg := "the PWBI cloud refuses every record with " + statusLine(e.StatusCode)
	if e.Body != "" {
		msg += ": " + shorten(e.Body, maxProblemBody)
	}
	return msg
}

// shorten cuts s (already sanitized) to at most n bytes, on a rune boundary.
func shorten(s string, n int) string {
	return sink.Snippet([]byte(s), "", n)
}
