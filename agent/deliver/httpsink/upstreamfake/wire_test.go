package upstreamfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// refDecode is the reference: encoding/json with unknown fields and trailing
// data refused.
func refDecode(data []byte) (wireBatch, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w wireBatch
	if err := dec.Decode(&w); err != nil {
		return w, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return w, errors.New("trailing data")
	}
	return w, nil
}

var wireSeeds = []string{
	`{"agent_id":"a","batch_id":"b","sent_at":"2025-12-26T10:30:00+07:00","records":[{"kind":"transaction","key":"k","seq":1,"version":"v","data":{"x":[1,-2.5e3,true,false,null,"s\"\\\/\b\f\n\r\t\u00e9"]}}]}`,
	` { "records" : [ null , { } ] , "agent_id" : null } `,
	`{"agent\u005fid":"\ud83d\ude00","records":[]}`,
	`{"records":null}`,
	`{"Agent_ID":"case"}`,
	`{"agent_id":"a","agent_id":"b"}`,
	`{"records":[{"seq":18446744073709551615}]}`,
	`{"records":[{"seq":18446744073709551616}]}`,
	`{"records":[{"seq":1.0}]}`,
	`{"records":[{"seq":-0}]}`,
	`{"records":[{"seq":01}]}`,
	`{"records":[{"data":[[[[]]]],"key":"\xff"}]}`,
	`{"records":[{"data":"\u12"}]}`,
	`{} x`,
	`null`,
	`[]`,
	`{"records":[{"data":{"a":1,"a":2}}]}`,
	"{\"key\":\"a\x01\"}",
}

func TestDecodeWireMatchesEncodingJSON(t *testing.T) {
	for _, s := range wireSeeds {
		checkWire(t, []byte(s))
	}
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	checkWire(t, []byte(`{"records":[{"data":`+deep+`}]}`))
	deep = strings.Repeat("[", 9990) + strings.Repeat("]", 9990)
	checkWire(t, []byte(`{"records":[{"data":`+deep+`}]}`))
}

func FuzzDecodeWire(f *testing.F) {
	for _, s := range wireSeeds {
		f.Add([]byte(s))
	}
	f.Add(batchJSON(f, "pc-1", "b1", recs(1, 3)))
	f.Fuzz(checkWire)
}

// checkWire: whatever decodeWire accepts, encoding/json accepts with the same
// result; whatever encoding/json accepts, decodeWire accepts too unless it
// hit one of its documented strictnesses.
func checkWire(t *testing.T, data []byte) {
	got, err := decodeWire(data)
	want, refErr := refDecode(data)
	switch {
	case err == nil && refErr != nil:
		t.Fatalf("decodeWire accepted %q; encoding/json: %v", data, refErr)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("decodeWire(%q) = %+v\nencoding/json: %+v", data, got, want)
	case err != nil && refErr == nil:
		msg := err.Error()
		if !strings.Contains(msg, "unknown field") && !strings.Contains(msg, "duplicate field") &&
			!strings.Contains(msg, "want a JSON object") {
			t.Fatalf("decodeWire rejected %q: %v; encoding/json accepts it", data, err)
		}
	}
}
