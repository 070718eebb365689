package checkout

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"
)

// The reference's vectors (docs/mokka-online-api.md §3) and SPEC §7.1.
func TestSignVectors(t *testing.T) {
	const body1 = `{"order_id": "FACTPRECHR152632", "amount": "8300.00"}`
	for _, tc := range []struct{ name, body, key, want string }{
		{"spec and docs vector 1", body1, "9fff8c602b08b00323567be0001480f6", "cbfb21630cd585f59c3a50fc3365d8c26b97cd4e"},
		{"docs vector 2", body1, "e662c46b5bef24a96c3128e25f43beaa05e3bd13", "36d0433a9e0f063748f88e903c74f2b65443ac3d"},
		{"finish vector 3", `{"order_id":"FACTPRECHR00005384","amount":4999.0,"check_number":"sdfhk"}`,
			"9fff8c602b08b00323567be0001480f6", "70189f8a4f413fcb01c8933cae50f4341fe8fdee"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sign([]byte(tc.body), tc.key); got != tc.want {
				t.Errorf("Sign = %s, want %s", got, tc.want)
			}
			if !Verify([]byte(tc.body), tc.key, tc.want) || !Verify([]byte(tc.body), tc.key, strings.ToUpper(tc.want)) {
				t.Error("Verify refuses the vector")
			}
		})
	}
	// The seed's worked example value belongs to no reading of its body.
	if Sign([]byte(body1), "9fff8c602b08b00323567be0001480f6") == "347e8cff27d30b5200c8b32def4365ebbf4270d0" {
		t.Error("the seed's wrong example matches")
	}
}

func TestSignNonASCIIExactBytes(t *testing.T) {
	// UTF-8 names: the signature covers these bytes, not \u escapes and
	// not one byte per character (revo-sdk-java's bug).
	body := []byte(`{"person":{"first_name":"Łukasz","surname":"Żółć-Ionuț","patronymic":"Пётр"}}`)
	h := sha1.New()
	h.Write(body)
	h.Write([]byte("key"))
	want := hex.EncodeToString(h.Sum(nil))
	if got := Sign(body, "key"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	escaped := []byte(`{"person":{"first_name":"\u0141ukasz"}}`)
	if Sign(escaped, "key") == Sign([]byte(`{"person":{"first_name":"Łukasz"}}`), "key") {
		t.Fatal("escaped and raw UTF-8 sign alike: the bytes are not what is hashed")
	}
}

func TestVerifyRefuses(t *testing.T) {
	body := []byte(`{"order_id":"A1"}`)
	good := Sign(body, "k")
	for _, tc := range []struct{ name, key, sig string }{
		{"empty", "k", ""},
		{"short", "k", good[:39]},
		{"long", "k", good + "0"},
		{"other key", "k2", good},
		{"empty key", "", Sign(body, "")},
		{"one char off", "k", good[:39] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[39])+1)%16])},
	} {
		if Verify(body, tc.key, tc.sig) {
			t.Errorf("%s: verified", tc.name)
		}
	}
	if Verify(append(body, ' '), "k", good) {
		t.Error("a changed body verifies")
	}
}
