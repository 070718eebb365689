package checkout

import (
	"crypto/sha1" //nolint:gosec // Mokka's signature scheme is SHA-1; not our choice
	"crypto/subtle"
	"encoding/hex"
)

// Sign returns Mokka's signature of body: the lowercase hex SHA-1 of the
// exact body bytes followed by the secret key. No escaping or
// canonicalisation: the bytes signed must be the bytes sent.
func Sign(body []byte, secretKey string) string {
	h := sha1.New() //nolint:gosec // see import
	h.Write(body)
	h.Write([]byte(secretKey))
	return hex.EncodeToString(h.Sum(nil))
}

// Verify reports whether sig is Sign(body, secretKey), comparing in
// constant time. Upper-case hex is accepted; an empty key never verifies.
func Verify(body []byte, secretKey, sig string) bool {
	if secretKey == "" || len(sig) != 2*sha1.Size {
		return false
	}
	want := Sign(body, secretKey)
	got := make([]byte, len(sig))
	for i := 0; i < len(sig); i++ {
		c := sig[i]
		if 'A' <= c && c <= 'F' {
			c += 'a' - 'A'
		}
		got[i] = c
	}
	return subtle.ConstantTimeCompare(got, []byte(want)) == 1
}
