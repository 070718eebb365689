package secret

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// Redacted is what replaces a secret cut out of text.
const Redacted = "<redacted>"

// MinLen is the length of the shortest secret Redact takes out of text:
// shorter ones would blank out ordinary words, and are no secret anyway.
const MinLen = 4

// Redact replaces every occurrence of each secret in text with
// "<redacted>". Secrets shorter than MinLen bytes (the empty one included)
// are left alone.
func Redact(text string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= MinLen {
			text = strings.ReplaceAll(text, s, Redacted)
		}
	}
	return text
}

// Patterns of secrets in text whose values are not known beforehand: query
// parameters (a next_url, a redirect URL in a transport error) and JSON
// members (an echoed token answer).
var (
	secretParamRE = regexp.MustCompile(`(?i)\b(access_token|refresh_token|client_secret|id_token)=[^&\s"'<>]*`)
	codeParamRE   = regexp.MustCompile(`(?i)([?&]code=)[^&\s"'<>]*`)
	secretJSONRE  = regexp.MustCompile(`(?i)("(?:access_token|refresh_token|client_secret|id_token|code)"\s*:\s*)"[^"]*"`)
)

// RedactParams replaces with "<redacted>" the values of the well-known
// secret parameters in text: access_token=…, refresh_token=…,
// client_secret=…, id_token=… and (after ? or &) code=… query parameters,
// and the same names as JSON string members.
func RedactParams(text string) string {
	if !strings.ContainsAny(text, "=:") {
		return text
	}
	text = secretParamRE.ReplaceAllString(text, "${1}="+Redacted)
	text = codeParamRE.ReplaceAllString(text, "${1}"+Redacted)
	return secretJSONRE.ReplaceAllString(text, `${1}"`+Redacted+`"`)
}

// WithMessage returns err rendered as msg (its text with the secrets taken
// out), keeping its chain: errors.Is and errors.As still work.
func WithMessage(err error, msg string) error { return &redactedError{err: err, msg: msg} }

type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// RedactError returns err with its text passed through redact, keeping its
// chain (see WithMessage); err itself when redact changes nothing (nil
// stays nil).
func RedactError(err error, redact func(string) string) error {
	if err == nil {
		return nil
	}
	if msg := redact(err.Error()); msg != err.Error() {
		return WithMessage(err, msg)
	}
	return err
}

// RedactURL replaces the URL of the *url.Error in err's chain (net/http
// puts the whole request URL, query included, in transport errors) by
// path, keeping the chain. err is returned as it is when it holds no
// *url.Error, or one already naming path.
func RedactURL(err error, path string) error {
	var ue *url.Error
	if !errors.As(err, &ue) || ue.URL == path {
		return err
	}
	if ue == err {
		c := *ue
		c.URL = path
		return &c
	}
	return WithMessage(err, strings.ReplaceAll(err.Error(), ue.URL, path))
}
