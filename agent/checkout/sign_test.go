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

// TestSignRubySDKFixtures: the requests recorded in the official Ruby
// SDK's test fixtures, as signature vectors (issue 12). Source:
// RevoTechnology/revo-sdk-ruby, spec/fixtures/**.yml at commit
// 1619ffa79097cd9963712226b4cdbe3234e93453 (2017-03-31; the limit files
// last changed in 5a2814c5ceae49828f36100e243f8a17e42da6f5, the order and
// return files in 99dc9bebdf4844dd3b02fe5232ae784ec1deb899). Each fixture
// holds the request URL with its signature and the exact body the SDK
// sent (JSON.generate, compact); spec/spec_helper.rb configures the secret
// "secret". Five were signed with the secret "non_valid": that is the
// point of limit/phone_invalid_signature (limit_spec.rb sets it to provoke
// error 61), but the four order and return fixtures carry it too (likely
// because limit_spec.rb never sets the secret back, so specs run after it
// in the same process sign with it; the SDK does not say). All seven
// reproduce as SHA-1(body + secret), none as secret + body. (The
// SDK's pre_order fixtures match any signature and hold none.) The order
// and return bodies use the 2017 API (iframe/v1/auth with "sum",
// online/v1/return): signing does not care.
func TestSignRubySDKFixtures(t *testing.T) {
	for _, tc := range []struct{ fixture, body, secret, want string }{
		{"limit/phone_new.yml", `{"client":{"mobile_phone":"9111111111"}}`, "secret", "7246de5d143570434aa414c9e57ea84e919ccd5e"},
		{"limit/phone_success.yml", `{"client":{"mobile_phone":"9031234567"}}`, "secret", "f184c3de30ca2772b13b804a69db58fb3a5da588"},
		{"limit/phone_invalid_signature.yml", `{"client":{"mobile_phone":"9031234567"}}`, "non_valid", "177b53b69ec05a3b17afea71f2d85ca796d8b09a"},
		{"order/iframe_valid.yml", `{"callback_url":"http://example.com/callback_url","redirect_url":"http://example.com/redirect_url","current_order":{"sum":"19.99","order_id":"ORDER1"}}`,
			"non_valid", "5cf51fade1cb9a9237fc59f54c857edb1cc8f3e1"},
		{"order/iframe_invalid.yml", `{"callback_url":"","redirect_url":"http://example.com/redirect_url","current_order":{"sum":"49.95","order_id":"ORDER2"}}`,
			"non_valid", "ead1e691f704902e76efa395d15f39630a459456"},
		{"return_order/return_valid.yml", `{"order_id":"ORDER12345","sum":"4.49","kind":"cancel"}`, "non_valid", "07ee0a6a2072eac975013df8149ff7fbde589b8f"},
		{"return_order/return_invalid.yml", `{"order_id":"ORDER","sum":"4.49","kind":"cancel"}`, "non_valid", "7cbd7b5f41ea85ca90962417c3957ea3a7ad2ad1"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			body := []byte(tc.body)
			if got := Sign(body, tc.secret); got != tc.want {
				t.Errorf("Sign = %s, want %s", got, tc.want)
			}
			if !Verify(body, tc.secret, tc.want) {
				t.Error("Verify refuses the fixture")
			}
			// The other secret of the SDK's tests never fits, nor does
			// the secret in front.
			other := map[string]string{"secret": "non_valid", "non_valid": "secret"}[tc.secret]
			if Verify(body, other, tc.want) || Sign([]byte(tc.secret+tc.body), "") == tc.want {
				t.Error("the fixture verifies with another secret or order")
			}
		})
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
