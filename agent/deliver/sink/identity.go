package sink

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// identitySalt keys the identities of this process, so that an identity
// reveals nothing about the secrets it covers.
var identitySalt = func() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}()

// Identity is an opaque identity of parts, for a sink's Endpoint: a salted
// digest, equal for equal parts in one process, different for different
// ones (each part is length-prefixed, so ("ab", "c") and ("a", "bc")
// differ). It is never a secret, and meaningless to a person, whatever
// the parts hold (tokens, passwords).
func Identity(parts ...string) string {
	h := sha256.New()
	h.Write(identitySalt)
	for _, s := range parts {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{0})
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}
