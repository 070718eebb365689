// Package secret is the one home of the project's handling of credentials
// (API keys, tokens, client secrets, signing keys): the Secret type, whose
// value never prints, and the redaction of secrets from text and errors
// that came from elsewhere — an answer body, a transport error, a URL.
//
// Two markers tell a reader what happened: a Secret value renders as
// "<secret>" (Mask), a secret cut out of free text is replaced by
// "<redacted>" (Redacted).
package secret

import (
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Mask is what a non-empty Secret renders as everywhere.
const Mask = "<secret>"

// Secret holds a credential. Its value is only available through Value;
// every other rendering (fmt verbs including %#v, %x and %d, String,
// GoString, JSON, text, slog) shows "<secret>", or "" when the secret is
// empty, so a value holding Secrets can be printed, logged, wrapped in an
// error or served as JSON safely. The zero Secret is empty. Secrets are
// comparable with ==.
type Secret struct {
	v string
}

// New wraps s.
func New(s string) Secret { return Secret{v: s} }

// Value returns the secret itself. Call it only where the credential is
// used (an Authorization header, a signature, the file that stores it).
func (s Secret) Value() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer: "<secret>", or "" when empty.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return Mask
}

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return fmt.Sprintf("secret.Secret(%q)", s.String()) }

// Format implements fmt.Formatter so that every verb (%v %+v %#v %s %q %x
// %d ...) shows the redacted form, also for a Secret inside a struct.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.String())
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.String())
	default:
		fmt.Fprint(f, s.String())
	}
}

// MarshalJSON implements json.Marshaler: "<secret>", or "" when empty.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText implements encoding.TextMarshaler: "<secret>", or "" when
// empty.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements slog.LogValuer: "<secret>", or "" when empty.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

var (
	_ fmt.Formatter          = Secret{}
	_ fmt.Stringer           = Secret{}
	_ fmt.GoStringer         = Secret{}
	_ json.Marshaler         = Secret{}
	_ encoding.TextMarshaler = Secret{}
	_ slog.LogValuer         = Secret{}
)
