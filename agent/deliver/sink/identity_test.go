package sink

import (
	"strings"
	"testing"
)

func TestIdentity(t *testing.T) {
	const secret = "s3cret-token"
	a := Identity("https://x.invalid", secret, "agent")
	if a != Identity("https://x.invalid", secret, "agent") {
		t.Error("equal parts give different identities")
	}
	for _, other := range [][]string{
		{"https://x.invalid", secret + "2", "agent"},
		{"https://x.invalid", secret, "agent", ""},
		{"https://x.invalid" + secret, "", "agent"},
	} {
		if Identity(other...) == a {
			t.Errorf("parts %q give the identity of different parts", other)
		}
	}
	if strings.Contains(a, secret) || strings.Contains(a, "x.invalid") {
		t.Errorf("identity %q shows its parts", a)
	}
}
