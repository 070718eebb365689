package mokapos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"
)

// Defaults of ClientOptions.
const (
	DefaultRequestsPerMinute = 60 // the guide's documented limit
	DefaultMaxRetries        = 8
	DefaultMinBackoff        = time.Second
	DefaultMaxBackoff        = time.Minute
	DefaultTimeout           = 30 * time.Second // per attempt, as in the guide
	DefaultMaxBodyBytes      = 16 << 20         // a 100-transaction page is ~100 KB
	DefaultMaxPages          = 100_000          // 10 million records per walk
	PageLimit                = 100              // the limit sent with every list request
)

// maxRetryAfter caps a server-sent Retry-After, so that a broken or hostile
// value cannot park the poller for days. The attempt is simply retried
// (and counted) after the cap.
const maxRetryAfter = 15 * time.Minute

// errSnippetLen bounds how much of an error response body goes into an error.
const errSnippetLen = 256

// Errors callers branch on. Every error of the client wraps at most one of
// them; none contains the API key.
var (
	// ErrUnauthorized: Moka answered 401 or 403. Retrying cannot help until
	// the configuration changes.
	ErrUnauthorized = errors.New("invalid API key")
	// ErrCursorLoop: the server handed back a cursor already used in this
	// walk; following it would never end.
	ErrCursorLoop = errors.New("moka pagination repeated a cursor")
	// ErrTooManyPages: the walk reached ClientOptions.MaxPages.
	ErrTooManyPages = errors.New("moka pagination exceeded the page limit")
	// ErrBadResponse: a 2xx answer whose body is not the expected JSON
	// (truncated, HTML, wrong shape). Retried like a 5xx.
	ErrBadResponse = errors.New("malformed moka response")
	// ErrResponseTooLarge: the body exceeded ClientOptions.MaxBodyBytes.
	// Not retried: the same request would give the same body.
	ErrResponseTooLarge = errors.New("moka response too large")
)

// HTTPError is a non-2xx answer that is not retried (or no longer).
type HTTPError struct {
	Method string
	Path   string // without the query
	Status int
	Body   string // the start of the body, with the API key redacted
}

// Temporary reports whether a retry may cure the answer: 408, 429 and 5xx
// (mokasync.Temporary; such answers are shown as "offline", others as an
// error a person must look at).
func (e *HTTPError) Temporary() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("moka %s %s: HTTP %d", e.Method, e.Path, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// ClientConfig is what the configuration file provides ([moka] table).
type ClientConfig struct {
	BaseURL           string // e.g. https://api.mokapos.com
	APIKey            string
	BusinessID        string
	RequestsPerMinute int // used only when ClientOptions.Limiter is nil; <= 0 means 60
}

// ClientOptions are the dependencies and knobs of a Client. The zero value
// is usable.
type ClientOptions struct {
	// HTTP is the HTTP client; nil means a dedicated client with its own
	// transport.
	HTTP *http.Client
	// Clock drives every wait (rate limit, backoff, Retry-After); nil means
	// the real clock. The per-attempt Timeout uses real time.
	Clock clockwork.Clock
	// Logger receives retry warnings and debug lines; nil discards.
	Logger *slog.Logger
	// Limiter is the client-side rate limit, shared by every client of the
	// same business (all outlets). Nil means a new limiter of
	// ClientConfig.RequestsPerMinute with burst 1. The client reserves
	// tokens with Clock's time, so a shared limiter must only be used by
	// clients on the same clock.
	Limiter *rate.Limiter
	// MaxRetries bounds the retries of one request (so MaxRetries+1
	// attempts). 0 means DefaultMaxRetries; negative means no retry.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff: attempt n
	// (from 0) waits min(MaxBackoff, MinBackoff·2ⁿ) scaled by a jitter
	// factor in [0.5, 1). Zero means the defaults.
	MinBackoff, MaxBackoff time.Duration
	// Rand returns the jitter source in [0, 1); nil means math/rand/v2.
	Rand func() float64
	// Timeout bounds one attempt (connect, headers and body); 0 means
	// DefaultTimeout, negative means none.
	Timeout time.Duration
	// MaxBodyBytes bounds a response body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxPages bounds one Transactions or Products walk; 0 means
	// DefaultMaxPages.
	MaxPages int
	// OnRequest, when set, is called after every HTTP attempt with the
	// path (no query), the status (0 when no response arrived) and the
	// duration. It must be safe for concurrent use.
	OnRequest func(path string, status int, dur time.Duration)
	// OnWait, when set, is called before every wait with its reason
	// ("rate_limit", "retry_after", "backoff") and length. It must be safe
	// for concurrent use.
	OnWait func(reason string, d time.Duration)
}

// Client talks to the apikey dialect of the Moka API (SPEC §5.1). It is safe
// for concurrent use.
type Client struct {
	base       string
	apiKey     string
	businessID string
	// p holds the request discipline (limiter, backoff, timeouts), shared in
	// shape with the oauth dialect (see Pacer).
	p *Pacer
}

// NewLimiter returns the limiter for requestsPerMinute (<= 0 means 60):
// evenly spaced requests with a burst of 1. A burst of 1 is what makes the
// limit hold in every 60-second window, not just on average: any N+1
// requests are at least N·(60 s / rpm) apart, so a window of a minute never
// holds more than rpm of them, while a steady walk still uses the whole
// budget. A larger burst would let rpm+burst−1 requests land in one minute.
func NewLimiter(requestsPerMinute int) *rate.Limiter {
	if requestsPerMinute <= 0 {
		requestsPerMinute = DefaultRequestsPerMinute
	}
	return rate.NewLimiter(rate.Every(time.Minute/time.Duration(requestsPerMinute)), 1)
}

// NewClient returns a client for cfg.
func NewClient(cfg ClientConfig, opts ClientOptions) *Client {
	return &Client{
		base:       strings.TrimRight(cfg.BaseURL, "/"),
		apiKey:     cfg.APIKey,
		businessID: cfg.BusinessID,
		p:          NewPacer(opts, cfg.RequestsPerMinute),
	}
}

// Outlet is one outlet of the business.
type Outlet struct {
	ID   string
	Name string
}

// Outlets lists the outlets of the business (GET /v1/outlets). It is also
// the credentials check: 401/403 gives an error wrapping ErrUnauthorized.
func (c *Client) Outlets(ctx context.Context) ([]Outlet, error) {
	const path = "/v1/outlets"
	q := url.Values{"business_id": {c.businessID}}
	var out []Outlet
	err := c.get(ctx, path, q, func(body []byte) error {
		var env struct {
			Outlets *[]struct {
				ID   json.RawMessage `json:"id"`
				Name json.RawMessage `json:"name"`
			} `json:"outlets"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			return fmt.Errorf("%w: %s", ErrBadResponse, jsonReason(err))
		}
		if env.Outlets == nil {
			return fmt.Errorf("%w: no outlets array", ErrBadResponse)
		}
		out = make([]Outlet, 0, len(*env.Outlets))
		for i, o := range *env.Outlets {
			id, err := idField(o.ID)
			if err != nil || id == "" {
				return fmt.Errorf("%w: outlets[%d].id missing or invalid", ErrBadResponse, i)
			}
			name, err := textField(o.Name)
			if err != nil {
				return fmt.Errorf("%w: outlets[%d].name: %v", ErrBadResponse, i, err)
			}
			out = append(out, Outlet{ID: id, Name: name})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Page is one page of a list walk.
type Page struct {
	// Index counts pages from 0 within the walk.
	Index int
	// Items are the raw records of the data array, in server order:
	// slices of the response body, which the client never reuses, so the
	// callee may keep them.
	Items []json.RawMessage
	// NextCursor is the cursor of the next page; "" on the last page.
	NextCursor string
	// Last is true on the last page of the walk.
	Last bool
}

// TxQuery selects transactions.
type TxQuery struct {
	// FromDate is the first local business day to fetch, YYYY-MM-DD
	// (the API's from_date). Required.
	FromDate string
	// OutletID, when not empty, is sent as outlet_id. The guide does not
	// document this filter, so the server may ignore it: the mapper always
	// takes the outlet from each transaction.
	OutletID string
}

// ProductQuery selects products. It has no fields yet: the products
// endpoint lists the whole business.
type ProductQuery struct{}

// Transactions walks GET /v1/transactions from q.FromDate, following
// next_cursor until it is absent, empty or null, and calls fn for every
// page in order (also for an empty one). A cursor already used in this walk
// stops it with ErrCursorLoop before that page reaches fn. An error from fn
// stops the walk and is returned as is.
func (c *Client) Transactions(ctx context.Context, q TxQuery, fn func(Page) error) error {
	if _, err := time.Parse("2006-01-02", q.FromDate); err != nil {
		return fmt.Errorf("moka transactions: from date %q is not YYYY-MM-DD", q.FromDate)
	}
	base := url.Values{
		"business_id": {c.businessID},
		"from_date":   {q.FromDate},
		"limit":       {strconv.Itoa(PageLimit)},
	}
	if q.OutletID != "" {
		base.Set("outlet_id", q.OutletID)
	}
	return c.walk(ctx, "/v1/transactions", base, fn)
}

// Products walks GET /v1/products like Transactions walks transactions.
func (c *Client) Products(ctx context.Context, _ ProductQuery, fn func(Page) error) error {
	base := url.Values{
		"business_id": {c.businessID},
		"limit":       {strconv.Itoa(PageLimit)},
	}
	return c.walk(ctx, "/v1/products", base, fn)
}

func (c *Client) walk(ctx context.Context, path string, base url.Values, fn func(Page) error) error {
	seen := make(map[string]struct{})
	cursor := ""
	for index := 0; ; index++ {
		if index >= c.p.maxPages {
			return fmt.Errorf("moka GET %s: %w (%d)", path, ErrTooManyPages, c.p.maxPages)
		}
		q := base
		if cursor != "" {
			q = cloneValues(base)
			q.Set("cursor", cursor)
		}
		var page Page
		err := c.get(ctx, path, q, func(body []byte) error {
			items, next, err := decodeListPage(body)
			if err != nil {
				return err
			}
			page = Page{Index: index, Items: items, NextCursor: next, Last: next == ""}
			return nil
		})
		if err != nil {
			return err
		}
		if page.NextCursor != "" {
			seen[cursor] = struct{}{}
			if _, dup := seen[page.NextCursor]; dup {
				c.p.log.Warn("Moka pagination repeated a cursor", "path", path, "page", index)
				return fmt.Errorf("moka GET %s: page %d: %w", path, index, ErrCursorLoop)
			}
		}
		if err := fn(page); err != nil {
			return err
		}
		if page.Last {
			return nil
		}
		cursor = page.NextCursor
	}
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v)+1)
	for k, vs := range v {
		out[k] = vs
	}
	return out
}

// decodeListPage reads the {"data":[…],"next_cursor":…} envelope in one
// validating pass; the items are sub-slices of body. A missing data array
// is a bad response; data null is an empty page. next_cursor may be a
// string, a number (kept as its text), null or absent. Other keys are
// ignored.
func decodeListPage(body []byte) (items []json.RawMessage, next string, err error) {
	s := scanner{b: body}
	if s.peek() != '{' {
		return nil, "", fmt.Errorf("%w: not a JSON object", ErrBadResponse)
	}
	var cursor []byte
	sawData := false
	err = s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "data":
			sawData = true
			items = items[:0]
			switch s.peek() {
			case '[':
				err = s.array(func(int) error {
					v, err := s.value()
					items = append(items, v)
					return err
				})
			case 'n':
				_, err = s.value()
			default:
				return fmt.Errorf("%w: data is not an array", ErrBadResponse)
			}
		case "next_cursor":
			cursor, err = s.value()
		default:
			_, err = s.value()
		}
		return err
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		if errors.Is(err, ErrBadResponse) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if !sawData {
		return nil, "", fmt.Errorf("%w: no data array", ErrBadResponse)
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	if next, err = idField(cursor); err != nil {
		return nil, "", fmt.Errorf("%w: next_cursor: %v", ErrBadResponse, err)
	}
	return items, next, nil
}

// get performs GET {base}{path}?{q} with rate limiting and retries, and
// hands a 2xx body to decode. A decode error wrapping ErrBadResponse is
// retried; any other decode error is returned at once.
func (c *Client) get(ctx context.Context, path string, q url.Values, decode func([]byte) error) error {
	u := c.base + path + "?" + q.Encode()
	var lastErr error
	for attempt := 0; ; attempt++ {
		if err := c.p.WaitTurn(ctx); err != nil {
			return fmt.Errorf("moka GET %s: %w", path, err)
		}
		status, body, header, err := c.do(ctx, path, u)
		var wait time.Duration
		reason := "backoff"
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("moka GET %s: %w", path, ctx.Err())
			}
			if errors.Is(err, ErrResponseTooLarge) {
				return err
			}
			lastErr = err
		case status >= 200 && status < 300:
			err := decode(body)
			if err == nil {
				return nil
			}
			if !errors.Is(err, ErrBadResponse) {
				return fmt.Errorf("moka GET %s: %w", path, err)
			}
			lastErr = fmt.Errorf("moka GET %s: %w", path, err)
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			c.p.log.Warn("Moka rejected the API key", "path", path, "status", status)
			return fmt.Errorf("moka GET %s: HTTP %d: %w", path, status, ErrUnauthorized)
		case status == http.StatusTooManyRequests:
			lastErr = c.httpError(path, status, body)
			if d, ok := c.p.RetryAfter(header.Get("Retry-After")); ok {
				wait, reason = d, "retry_after"
			}
		case status == http.StatusRequestTimeout || status >= 500:
			lastErr = c.httpError(path, status, body)
		default:
			return c.httpError(path, status, body)
		}
		if attempt >= c.p.maxRetries {
			return fmt.Errorf("moka GET %s: giving up after %d attempts: %w", path, attempt+1, lastErr)
		}
		if reason == "backoff" {
			wait = c.p.Backoff(attempt)
		}
		c.p.log.Warn("Moka request failed, retrying",
			"path", path, "status", status, "attempt", attempt+1, "wait", wait, "error", lastErr.Error())
		if err := c.p.Sleep(ctx, reason, wait); err != nil {
			return fmt.Errorf("moka GET %s: %w", path, err)
		}
	}
}

// do performs one attempt. err is a transport error (or ErrResponseTooLarge);
// otherwise status, body and header are the response's.
func (c *Client) do(ctx context.Context, path, u string) (status int, body []byte, header http.Header, err error) {
	if c.p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.p.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("moka GET %s: build request: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "pwbi-edge-agent")

	start := c.p.clock.Now()
	resp, err := c.p.http.Do(req)
	if err != nil {
		c.p.Report(path, 0, start)
		return 0, nil, nil, fmt.Errorf("moka GET %s: %w", path, c.redactErr(err))
	}
	defer resp.Body.Close()
	limit := c.p.maxBody
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		limit = ErrorBodyLimit
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	c.p.Report(path, resp.StatusCode, start)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("moka GET %s: read body: %w", path, c.redactErr(err))
	}
	if int64(len(body)) > limit {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return 0, nil, nil, fmt.Errorf("moka GET %s: %w (over %d bytes)", path, ErrResponseTooLarge, c.p.maxBody)
		}
		body = body[:limit]
	}
	return resp.StatusCode, body, resp.Header, nil
}

func (c *Client) httpError(path string, status int, body []byte) *HTTPError {
	snippet := strings.TrimSpace(string(body))
	if len(snippet) > errSnippetLen {
		snippet = snippet[:errSnippetLen] + "…"
	}
	return &HTTPError{Method: http.MethodGet, Path: path, Status: status, Body: c.redact(snippet)}
}

// redact removes the API key from text that came from elsewhere (a server
// echoing the request, a transport error).
func (c *Client) redact(s string) string {
	if c.apiKey == "" {
		return s
	}
	return strings.ReplaceAll(s, c.apiKey, "<redacted>")
}

// redactErr keeps err's chain (errors.Is still works) but renders its text
// without the API key.
func (c *Client) redactErr(err error) error {
	if c.apiKey == "" || !strings.Contains(err.Error(), c.apiKey) {
		return err
	}
	return &redactedError{err: err, msg: c.redact(err.Error())}
}

type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
