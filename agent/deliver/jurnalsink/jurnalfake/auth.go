package jurnalfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// hmacFields are the parameters of an "Authorization: hmac …" header.
type hmacFields struct {
	username, algorithm, headers, signature string
}

// parseHMAC reads `hmac username="…", algorithm="…", headers="…",
// signature="…"`. The scheme is case-insensitive; parameters may come in
// any order.
func parseHMAC(h string) (hmacFields, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "hmac") {
		return hmacFields{}, false
	}
	var f hmacFields
	for _, part := range splitParams(rest) {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return hmacFields{}, false
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return hmacFields{}, false
		}
		v = v[1 : len(v)-1]
		switch k {
		case "username":
			f.username = v
		case "algorithm":
			f.algorithm = v
		case "headers":
			f.headers = v
		case "signature":
			f.signature = v
		}
	}
	if f.username == "" || f.signature == "" {
		return hmacFields{}, false
	}
	return f, true
}

// splitParams splits at commas outside quotes.
func splitParams(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// authenticate checks the Mekari HMAC signature of a request: the
// Authorization header, the Date within MaxClockSkew of now, the signature
// over the signed headers in their order ("date: …" and the request line
// "<METHOD> <path+query> HTTP/1.1", both required), then Digest if sent.
// nil means authenticated.
func (s *Server) authenticate(r *http.Request, body []byte, now time.Time) *response {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return gatewayError(http.StatusUnauthorized, MsgUnauthorized)
	}
	f, ok := parseHMAC(auth)
	if !ok || !strings.EqualFold(f.algorithm, "hmac-sha256") {
		return gatewayError(http.StatusUnauthorized, MsgSignatureInvalid)
	}
	signed := strings.Fields(strings.ToLower(f.headers))
	if !contains(signed, "date") || !contains(signed, "request-line") {
		return gatewayError(http.StatusUnauthorized, MsgSignatureInvalid)
	}
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil || now.Sub(date).Abs() > MaxClockSkew {
		return gatewayError(http.StatusUnauthorized, MsgDateOutOfRange)
	}
	if subtle.ConstantTimeCompare([]byte(f.username), []byte(s.opts.ClientID)) != 1 {
		return gatewayError(http.StatusUnauthorized, MsgSignatureInvalid)
	}
	var b strings.Builder
	for i, h := range signed {
		if i > 0 {
			b.WriteByte('\n')
		}
		if h == "request-line" {
			b.WriteString(r.Method + " " + r.RequestURI + " HTTP/1.1")
			continue
		}
		b.WriteString(h + ": " + r.Header.Get(h))
	}
	mac := hmac.New(sha256.New, []byte(s.opts.ClientSecret))
	mac.Write([]byte(b.String()))
	got, err := base64.StdEncoding.DecodeString(f.signature)
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return gatewayError(http.StatusUnauthorized, MsgSignatureMismatch)
	}

	digest := r.Header.Get("Digest")
	if digest == "" {
		s.mu.Lock()
		require := s.requireDigest
		s.mu.Unlock()
		if require && len(body) > 0 {
			return gatewayError(http.StatusUnauthorized, MsgDigestRequired)
		}
		return nil
	}
	alg, value, ok := strings.Cut(digest, "=")
	sum := sha256.Sum256(body)
	if !ok || !strings.EqualFold(alg, "SHA-256") ||
		subtle.ConstantTimeCompare([]byte(value), []byte(base64.StdEncoding.EncodeToString(sum[:]))) != 1 {
		return gatewayError(http.StatusUnauthorized, MsgSignatureMismatch)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// admit applies the monthly quota and the per-minute limit to an
// authenticated request. It returns the rate-limit headers of the answer,
// and a 429 answer when the request is refused (then nothing is counted).
func (s *Server) admit(now time.Time) (http.Header, *response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := http.Header{}
	if s.quotaLimit > 0 {
		s.rollQuotaLocked(now)
		h.Set("X-RateLimit-Limit-Month", strconv.Itoa(s.quotaLimit))
		if s.quotaRemaining <= 0 {
			h.Set("X-RateLimit-Remaining-Month", "0")
			u := now.UTC()
			next := time.Date(u.Year(), u.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			h.Set("Retry-After", strconv.Itoa(int(next.Sub(u).Seconds()+0.999)))
			return h, gatewayError(http.StatusTooManyRequests, MsgRateLimited)
		}
	}
	if s.rpm > 0 {
		m := now.Truncate(time.Minute)
		if !m.Equal(s.minute) {
			s.minute, s.minuteUsed = m, 0
		}
		h.Set("X-RateLimit-Limit-Minute", strconv.Itoa(s.rpm))
		if s.minuteUsed >= s.rpm {
			h.Set("X-RateLimit-Remaining-Minute", "0")
			h.Set("Retry-After", strconv.Itoa(int(m.Add(time.Minute).Sub(now).Seconds()+0.999)))
			return h, gatewayError(http.StatusTooManyRequests, MsgRateLimited)
		}
		s.minuteUsed++
		h.Set("X-RateLimit-Remaining-Minute", strconv.Itoa(s.rpm-s.minuteUsed))
	}
	if s.quotaLimit > 0 {
		s.quotaRemaining--
		h.Set("X-RateLimit-Remaining-Month", strconv.Itoa(s.quotaRemaining))
	}
	return h, nil
}

// rollQuotaLocked refills the quota when the month has turned.
func (s *Server) rollQuotaLocked(now time.Time) {
	if m := monthOf(now); m != s.quotaMonth {
		s.quotaMonth, s.quotaRemaining = m, s.quotaLimit
	}
}
