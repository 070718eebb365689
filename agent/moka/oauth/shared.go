package oauth

import (
	"golang.org/x/time/rate"

	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
)

// The request discipline, the mapping contract and the errors below are
// shared with the apikey dialect (package wire); these are their names in
// this package's API.
type (
	// ClientOptions are the dependencies and knobs of a Client and of the
	// token manager's Pacer (HTTP client, clock, logger, shared limiter,
	// retries, backoff, timeouts, body and page bounds, observers). The
	// zero value is usable.
	ClientOptions = wire.Options
	// Pacer is the request discipline of a client: rate limit, backoff
	// with jitter, Retry-After, timeouts, body bound, observers.
	Pacer = wire.Pacer
	// MapContext is what the mappers need besides the record itself.
	MapContext = wire.MapContext
	// MapError says why one Moka record could not be mapped.
	MapError = wire.MapError
	// HTTPError is a non-2xx answer that is not retried (or no longer).
	HTTPError = wire.HTTPError
)

// Errors callers branch on (see package wire for each).
var (
	ErrCursorLoop       = wire.ErrCursorLoop
	ErrTooManyPages     = wire.ErrTooManyPages
	ErrBadResponse      = wire.ErrBadResponse
	ErrResponseTooLarge = wire.ErrResponseTooLarge
	ErrNoBusinessID     = wire.ErrNoBusinessID
)

// NewPacer returns the pacer of opts; requestsPerMinute sizes the limiter
// when opts.Limiter is nil (<= 0 means 60). Give the token manager
// (TokensOptions.Pacer, Tokens.Reconfigure) the API client's limiter, so
// that token requests count against the same budget.
func NewPacer(opts ClientOptions, requestsPerMinute int) *Pacer {
	return wire.NewPacer(opts, requestsPerMinute)
}

// NewLimiter returns the limiter for requestsPerMinute (<= 0 means 60):
// evenly spaced requests with a burst of 1, so that no 60-second window
// ever holds more than requestsPerMinute requests.
func NewLimiter(requestsPerMinute int) *rate.Limiter { return wire.NewLimiter(requestsPerMinute) }
