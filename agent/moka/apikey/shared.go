package apikey

import (
	"golang.org/x/time/rate"

	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
)

// The request discipline, the mapping contract and the errors below are
// shared with the oauth dialect (package wire); these are their names in
// this package's API.
type (
	// ClientOptions are the dependencies and knobs of a Client (HTTP
	// client, clock, logger, shared limiter, retries, backoff, timeouts,
	// body and page bounds, observers). The zero value is usable.
	ClientOptions = wire.Options
	// MapContext is what the mapper needs besides the record itself.
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

// NewLimiter returns the limiter for requestsPerMinute (<= 0 means 60):
// evenly spaced requests with a burst of 1, so that no 60-second window
// ever holds more than requestsPerMinute requests. Give one limiter to
// every client of the business (ClientOptions.Limiter).
func NewLimiter(requestsPerMinute int) *rate.Limiter { return wire.NewLimiter(requestsPerMinute) }
