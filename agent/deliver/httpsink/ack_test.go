package httpsink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/store"
)

// ackID is the batch id the acknowledgement tests expect.
var ackID = BatchID(testAgent, []store.Record{{Seq: 1}, {Seq: 2}, {Seq: 3}})

func TestCheckAck(t *testing.T) {
	id := ackID
	big := `{"batch_id":"` + id + `","pad":"` + strings.Repeat("x", maxResponseBody) + `"}`
	for _, tc := range []struct {
		name, ct, body string
		overflow       bool
		want           ackVerdict
	}{
		{"echo", "application/json", `{"batch_id":"` + id + `","accepted":3}`, false, ackOK},
		{"echo, no content type", "", `{"batch_id":"` + id + `"}`, false, ackOK},
		{"echo, text/plain", "text/plain", `{"batch_id":"` + id + `"}`, false, ackOK},
		{"echo labelled html", "text/html", `{"batch_id":"` + id + `"}`, false, ackOK},
		{"echo with white space and BOM", "application/json", "\xef\xbb\xbf \n{ \"accepted\" : 3,\n \"batch_id\" : \"" + id + "\" }\n", false, ackOK},
		{"echo with escapes", "application/json", `{"batch_id":"` + fmt.Sprintf(`\u%04x`, id[0]) + id[1:] + `"}`, false, ackOK},
		{"echo, nested extras", "application/json", `{"x":{"batch_id":"other"},"batch_id":"` + id + `","y":[1,{"batch_id":null}]}`, false, ackOK},
		{"echo too large to check", "application/json", big[:maxResponseBody], true, ackTooLarge},
		{"empty", "application/json", "", false, ackEmpty},
		{"white space only", "", " \r\n\t", false, ackEmpty},
		{"BOM only", "", "\xef\xbb\xbf", false, ackEmpty},
		{"html by content type", "text/html; charset=utf-8", "Please log in", false, ackWebPage},
		{"html sniffed", "", "\n<!DOCTYPE html><html><body>Login</body></html>", false, ackWebPage},
		{"html sniffed under a json label", "application/json", "<html><head><title>Portal</title>", false, ackWebPage},
		{"xml (WISPr portal)", "text/xml", `<?xml version="1.0"?><WISPAccessGatewayParam/>`, false, ackWebPage},
		{"plain text", "text/plain", "OK", false, ackNotJSON},
		{"garbled json", "application/json", `{"batch_id":"` + id + `"`, false, ackNotJSON},
		{"json then junk", "application/json", `{"batch_id":"` + id + `"} trailing`, false, ackNotJSON},
		{"two objects", "application/json", `{"batch_id":"` + id + `"}{"batch_id":"` + id + `"}`, false, ackNotJSON},
		{"json without batch id", "application/json", `{"accepted":3}`, false, ackNoBatchID},
		{"json error", "application/json", `{"error":"injected failure"}`, false, ackNoBatchID},
		{"json array", "application/json", `["` + id + `"]`, false, ackNoBatchID},
		{"json string", "application/json", `"` + id + `"`, false, ackNoBatchID},
		{"json null", "application/json", `null`, false, ackNoBatchID},
		{"json true", "", `true`, false, ackNoBatchID},
		{"batch id not a string", "application/json", `{"batch_id":42}`, false, ackNoBatchID},
		{"batch id null", "application/json", `{"batch_id":null}`, false, ackNoBatchID},
		{"batch id object", "application/json", `{"batch_id":{"id":"` + id + `"}}`, false, ackNoBatchID},
		{"batch id twice", "application/json", `{"batch_id":"` + id + `","batch_id":"` + id + `"}`, false, ackNoBatchID},
		{"batch id twice, one other", "application/json", `{"batch_id":"other","batch_id":"` + id + `"}`, false, ackNoBatchID},
		{"batch id in other case", "application/json", `{"Batch_ID":"` + id + `"}`, false, ackNoBatchID},
		{"batch id nested only", "application/json", `{"data":{"batch_id":"` + id + `"}}`, false, ackNoBatchID},
		{"other batch", "application/json", `{"batch_id":"` + upstreamfake.WrongBatchID + `"}`, false, ackOtherBatch},
		{"empty batch id", "application/json", `{"batch_id":""}`, false, ackOtherBatch},
		{"batch id prefix", "application/json", `{"batch_id":"` + id[:63] + `"}`, false, ackOtherBatch},
		{"batch id upper case", "application/json", `{"batch_id":"` + strings.ToUpper(id) + `"}`, false, ackOtherBatch},
		{"batch id padded", "application/json", `{"batch_id":" ` + id + `"}`, false, ackOtherBatch},
	} {
		if got := checkAck(tc.ct, []byte(tc.body), tc.overflow, id); got != tc.want {
			t.Errorf("%s: checkAck = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// refAcknowledges is an independent reference for the property that
// matters: a body counts as an acknowledgement only if it is one JSON object
// whose "batch_id" member is the string id.
func refAcknowledges(body []byte, id string) bool {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimPrefix(body, utf8BOM), &m); err != nil || m == nil {
		return false
	}
	raw, ok := m["batch_id"]
	if !ok {
		return false
	}
	var got string
	if err := json.Unmarshal(raw, &got); err != nil || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) {
		return false
	}
	return got == id
}

// FuzzCheckAck: the acknowledgement parser reads outside input. It must
// never panic, and never accept a body that does not echo the id, or one
// cut at the read cap.
func FuzzCheckAck(f *testing.F) {
	id := ackID
	for _, s := range []struct {
		ct, body string
	}{
		{"application/json", `{"batch_id":"` + id + `","accepted":3}`},
		{"", "\xef\xbb\xbf{\"batch_id\":\"" + id + "\"}"},
		{"application/json", `{"batch_id":"` + id + `","batch_id":"` + id + `"}`},
		{"application/json", `{"Batch_Id":"` + id + `"}`},
		{"application/json", `{"batch_id":"\u0041"}`},
		{"application/json", `{"batch_id":"` + upstreamfake.WrongBatchID + `"}`},
		{"application/json", `{"batch_id":null}`},
		{"application/json", `{"a":[{"b":{}}],"batch_id":"x"}`},
		{"application/json", `[]`},
		{"application/json", ``},
		{"text/html", upstreamfake.PortalPage},
		{"text/html; charset=", "<html"},
		{"", `{"batch_id":"` + id + `"} x`},
		{"", "{\"batch_id\":\"\xff\"}"},
		{"", `{"batch_id":"` + id + `"`},
	} {
		f.Add(s.ct, []byte(s.body), false)
	}
	f.Add("application/json", []byte(`{"batch_id":"`+id+`"}`), true)
	f.Fuzz(func(t *testing.T, ct string, body []byte, overflow bool) {
		v := checkAck(ct, body, overflow, id)
		if v < ackOK || v > ackOtherBatch {
			t.Fatalf("checkAck = %d, not a verdict", v)
		}
		if v != ackOK {
			return
		}
		if overflow {
			t.Fatalf("accepted an answer cut at the read cap: %q", body)
		}
		if !refAcknowledges(body, id) {
			t.Fatalf("accepted %q, which does not echo the batch id", body)
		}
		// Whatever else happens to the body, a different id is never
		// acknowledged by it.
		if checkAck(ct, body, false, id[:63]+"x") == ackOK {
			t.Fatalf("%q acknowledges two ids", body)
		}
	})
}
