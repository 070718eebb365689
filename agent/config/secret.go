package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/internal/secret"
)

// Secret holds a credential (API key, token, signing key): internal/secret's
// type, whose value is only available through Value. Every other rendering
// (fmt verbs including %#v, String, GoString, JSON, text, slog) shows
// "<secret>", or "" when the secret is empty, so a Config can be printed,
// logged or served as JSON safely. The zero Secret is empty. Secrets are
// comparable with ==. decode.go fills them from the file's string or from
// its *_file.
type Secret = secret.Secret

// NewSecret wraps s.
func NewSecret(s string) Secret { return secret.New(s) }

// Duration is a time.Duration written in TOML as a Go duration string
// ("30s", "5m", "1h30m").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a Go duration such as \"30s\", \"5m\" or \"1h\"", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler with the shortest form
// ("5m" rather than "5m0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String returns the shortest form: "5m", "1h30m", "1.5s".
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
