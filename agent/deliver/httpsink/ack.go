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
func notAckProblem(status int, v ackVerdict) sink.Message {
	sl := map[string]any{"Status": statusLine(status)}
	switch v {
	case ackWebPage:
		// "the upstream answered with a web page, not an acknowledgement:
		// is a Wi-Fi login page in the way?"
		return sink.Say("HealthUpstreamWebPage", nil)
	case ackEmpty:
		return sink.Say("HealthUpstreamEmptyAnswer", sl)
	case ackTooLarge:
		return sink.Say("HealthUpstreamAnswerTooLarge", sl)
	case ackNotJSON:
		return sink.Say("HealthUpstreamNotJSON", sl)
	case ackNoBatchID:
		return sink.Say("HealthUpstreamNoBatchID", sl)
	case ackOtherBatch:
		return sink.Say("HealthUpstreamOtherBatch", sl)
	}
	return sink.Say("HealthUpstreamNotAck", sl)
}

// redirectProblem is the Problem shown for a 3xx; host is where it points
// (only the host), "" when it did not say.
func redirectProblem(status int, host string) sink.Message {
	if host == "" {
		return sink.Say("HealthUpstreamRedirectElsewhere", map[string]any{"Status": statusLine(status)})
	}
	return sink.Say("HealthUpstreamRedirect", map[string]any{"Status": statusLine(status), "Host": host})
}

// statusProblem is the Problem shown for a status that is neither an
// accepting one, a redirect, nor a record-level rejection.
func statusProblem(c class, status int) sink.Message {
	sl := map[string]any{"Status": statusLine(status)}
	switch c {
	case classTransient:
		switch {
		case status == http.StatusTooManyRequests:
			return sink.Say("HealthUpstreamSlowDown", sl)
		case status >= 500:
			return sink.Say("HealthUpstreamUnavailable", sl)
		}
		return sink.Say("HealthUpstreamTryAgain", sl)
	case classAuth:
		if status == http.StatusProxyAuthRequired {
			return sink.Say("HealthUpstreamProxyAuth", sl)
		}
		return sink.Say("HealthUpstreamToken", sl)
	case classEndpoint:
		return sink.Say("HealthUpstreamEndpoint", sl)
	}
	return sink.Say("HealthUpstreamUnexpected", sl)
}

// uniformProblem is the Problem shown when the upstream refuses every record
// with the same answer.
func uniformProblem(e *StatusError) sink.Message {
	if e.Body == "" {
		return sink.Say("HealthUpstreamRefusesAll", map[string]any{"Status": statusLine(e.StatusCode)})
	}
	return sink.Say("HealthUpstreamRefusesAllSaying", map[string]any{
		"Status": statusLine(e.StatusCode), "Answer": shorten(e.Body, maxProblemBody)})
}

// shorten cuts s (already sanitized) to at most n bytes, on a rune boundary.
func shorten(s string, n int) string {
	return sink.Snippet([]byte(s), "", n)
}
