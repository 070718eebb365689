package mokaoauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/agent/mokapos"
	"github.com/pwbi/edge-agent/agent/unified"
)

// Page sizes sent with every list request.
const (
	PaymentsPerPage = 100 // get_latest_transactions per_page
	ItemsPerPage    = 100 // items per_page
)

// TimeFilterUpdated is the time_filter of the updates pass.
const TimeFilterUpdated = "updated_at"

// ClientConfig is what the configuration file gives the API client.
type ClientConfig struct {
	BaseURL           string // e.g. https://api.mokapos.com
	RequestsPerMinute int    // used only when the options carry no Limiter
}

// Client talks to the Moka Open API (SPEC §5.2) with the access tokens of
// a Tokens manager. It reuses the apikey client's request discipline
// (mokapos.Pacer: shared rate limit, backoff with jitter, Retry-After,
// timeouts, body bound) and its errors (mokapos.HTTPError, ErrBadResponse,
// ErrResponseTooLarge, ErrCursorLoop, ErrTooManyPages). It is safe for
// concurrent use.
//
// A 401 first makes the token manager refresh (once per request); a 401
// with the fresh token, or a 403, stops with an *AuthError. No URL query,
// token or next_url ever appears in an error or a log line: errors name the
// path only, and text from elsewhere is redacted.
type Client struct {
	base   *url.URL
	tokens *Tokens
	p      *mokapos.Pacer
}

// NewClient returns a client of cfg using tokens; opts are the apikey
// client's options (HTTP client, clock, logger, shared limiter, retries,
// timeouts, observers).
func NewClient(cfg ClientConfig, tokens *Tokens, opts mokapos.ClientOptions) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("moka base url %q is not an http(s) URL", cfg.BaseURL)
	}
	u.RawQuery, u.Fragment = "", ""
	return &Client{base: u, tokens: tokens, p: mokapos.NewPacer(opts, cfg.RequestsPerMinute)}, nil
}

// Pacer returns the client's pacer (its clock and limiter).
func (c *Client) Pacer() *mokapos.Pacer { return c.p }

// Tokens returns the client's token manager.
func (c *Client) Tokens() *Tokens { return c.tokens }

// target is one request: the escaped path and the encoded query.
type target struct {
	path  string // escaped, with the base URL's path prefix
	query string
}

func (c *Client) target(path string, q url.Values) target {
	return target{path: c.base.EscapedPath() + path, query: q.Encode()}
}

func (t target) url(base *url.URL) string {
	u := base.Scheme + "://" + base.Host + t.path
	if t.query != "" {
		u += "?" + t.query
	}
	return u
}

// get performs GET on t with pacing, token handling and retries, and hands
// a 2xx body to decode. A decode error wrapping ErrBadResponse is retried.
func (c *Client) get(ctx context.Context, t target, decode func([]byte) error) error {
	path := t.path // what errors and logs show: never the query
	u := t.url(c.base)
	refreshed := false
	var lastErr error
	for attempt := 0; ; attempt++ {
		if err := c.p.WaitTurn(ctx); err != nil {
			return fmt.Errorf("moka GET %s: %w", path, err)
		}
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return err
		}
		status, body, header, err := c.do(ctx, path, u, tok)
		var wait time.Duration
		reason := "backoff"
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("moka GET %s: %w", path, ctx.Err())
			}
			if errors.Is(err, mokapos.ErrResponseTooLarge) {
				return err
			}
			lastErr = err
		case status >= 200 && status < 300:
			err := decode(body)
			if err == nil {
				return nil
			}
			if !errors.Is(err, mokapos.ErrBadResponse) {
				return fmt.Errorf("moka GET %s: %w", path, err)
			}
			lastErr = fmt.Errorf("moka GET %s: %w", path, err)
		case status == http.StatusUnauthorized:
			if !refreshed {
				// The access token expired or was revoked early: refresh
				// once and try again at once.
				refreshed = true
				c.p.Logger().Info("Moka refused the access token; refreshing", "path", path)
				if _, err := c.tokens.Refresh(ctx, tok); err != nil {
					return err
				}
				continue
			}
			c.p.Logger().Warn("Moka refused a fresh access token", "path", path)
			return c.tokens.Rejected(c.tokens.Redact(snippet(body)))
		case status == http.StatusForbidden:
			c.p.Logger().Warn("Moka refused access", "path", path, "status", status)
			return &AuthError{Err: ErrForbidden, Detail: "GET " + path + ": " + c.tokens.Redact(snippet(body))}
		case mokapos.Retryable(status):
			lastErr = c.httpError(path, status, body)
			if status == http.StatusTooManyRequests {
				if d, ok := c.p.RetryAfter(header.Get("Retry-After")); ok {
					wait, reason = d, "retry_after"
				}
			}
		default:
			return c.httpError(path, status, body)
		}
		if attempt >= c.p.MaxRetries() {
			return fmt.Errorf("moka GET %s: giving up after %d attempts: %w", path, attempt+1, lastErr)
		}
		if reason == "backoff" {
			wait = c.p.Backoff(attempt)
		}
		c.p.Logger().Warn("Moka request failed, retrying",
			"path", path, "status", status, "attempt", attempt+1, "wait", wait, "error", lastErr.Error())
		if err := c.p.Sleep(ctx, reason, wait); err != nil {
			return fmt.Errorf("moka GET %s: %w", path, err)
		}
	}
}

// do performs one attempt with the bearer token.
func (c *Client) do(ctx context.Context, path, u string, tok Token) (status int, body []byte, header http.Header, err error) {
	if to := c.p.Timeout(); to > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, to)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("moka GET %s: build request: %w", path, redactURLError(err, path))
	}
	req.Header.Set("Authorization", "Bearer "+tok.Value())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "pwbi-edge-agent")

	start := c.p.Clock().Now()
	resp, err := c.p.HTTP().Do(req)
	if err != nil {
		c.p.Report(path, 0, start)
		return 0, nil, nil, fmt.Errorf("moka GET %s: %w", path, c.tokens.redactErr(redactURLError(err, path)))
	}
	defer resp.Body.Close()
	limit := c.p.MaxBodyBytes()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		limit = mokapos.ErrorBodyLimit
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	c.p.Report(path, resp.StatusCode, start)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("moka GET %s: read body: %w", path, c.tokens.redactErr(redactURLError(err, path)))
	}
	if int64(len(body)) > limit {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return 0, nil, nil, fmt.Errorf("moka GET %s: %w (over %d bytes)", path, mokapos.ErrResponseTooLarge, c.p.MaxBodyBytes())
		}
		body = body[:limit]
	}
	return resp.StatusCode, body, resp.Header, nil
}

func (c *Client) httpError(path string, status int, body []byte) *mokapos.HTTPError {
	return &mokapos.HTTPError{Method: http.MethodGet, Path: path, Status: status, Body: c.tokens.Redact(snippet(body))}
}

// Profile is the part of GET /v1/profile/self the agent uses. The account's
// e-mail and name are not kept.
type Profile struct {
	ID         string
	BusinessID string
	OutletIDs  []string
}

// Profile reads GET /v1/profile/self.
func (c *Client) Profile(ctx context.Context) (Profile, error) {
	var p Profile
	err := c.get(ctx, c.target("/v1/profile/self", nil), func(body []byte) error {
		obj, err := dataObject(body)
		if err != nil {
			return err
		}
		var r struct {
			ID         json.RawMessage   `json:"id"`
			BusinessID json.RawMessage   `json:"business_id"`
			OutletIDs  []json.RawMessage `json:"outlet_ids"`
		}
		if err := json.Unmarshal(obj, &r); err != nil {
			return fmt.Errorf("%w: profile: %s", mokapos.ErrBadResponse, jsonProblem(err))
		}
		p.ID, _ = mokapos.IDField(r.ID)
		if p.BusinessID, err = mokapos.IDField(r.BusinessID); err != nil || p.BusinessID == "" {
			return fmt.Errorf("%w: profile without business_id", mokapos.ErrBadResponse)
		}
		for _, raw := range r.OutletIDs {
			if id, err := mokapos.IDField(raw); err == nil && id != "" {
				p.OutletIDs = append(p.OutletIDs, id)
			}
		}
		return nil
	})
	return p, err
}

// Outlet is one outlet of the business.
type Outlet struct {
	ID   string
	Name string
}

// Outlets lists the outlets of business (GET
// /v1/businesses/{id}/outlets), without deleted ones.
func (c *Client) Outlets(ctx context.Context, businessID string) ([]Outlet, error) {
	var out []Outlet
	t := c.target("/v1/businesses/"+url.PathEscape(businessID)+"/outlets", nil)
	err := c.get(ctx, t, func(body []byte) error {
		list, err := listIn(body, "outlets")
		if err != nil {
			return err
		}
		out = out[:0]
		for i, raw := range list {
			var o struct {
				ID        json.RawMessage `json:"id"`
				Name      json.RawMessage `json:"name"`
				IsDeleted json.RawMessage `json:"is_deleted"`
			}
			if err := json.Unmarshal(raw, &o); err != nil {
				return fmt.Errorf("%w: outlets[%d]: %s", mokapos.ErrBadResponse, i, jsonProblem(err))
			}
			id, err := mokapos.IDField(o.ID)
			if err != nil || id == "" {
				return fmt.Errorf("%w: outlets[%d].id missing or invalid", mokapos.ErrBadResponse, i)
			}
			if del, _ := boolField(o.IsDeleted); del {
				continue
			}
			name, _ := mokapos.TextField(o.Name)
			out = append(out, Outlet{ID: id, Name: name})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PaymentQuery selects sales of one outlet.
type PaymentQuery struct {
	OutletID string
	// Since and Until bound the time filter (epoch seconds with
	// microseconds on the wire); a zero Until sends none.
	Since, Until time.Time
	// TimeFilter is "" (created_at, the API's default) or
	// TimeFilterUpdated.
	TimeFilter string
	// PerPage: 0 means PaymentsPerPage.
	PerPage int
}

// PaymentPage is one page of a payments walk.
type PaymentPage struct {
	Index int
	// Payments are the raw records, in server order (sub-slices of the
	// body, never reused: the callee may keep them).
	Payments []json.RawMessage
	// Last is true on the page that ends the walk (data.completed).
	Last bool
	// decoded[i] is Payments[i] already decoded for the mapper (the page
	// is scanned once); see MapPayments.
	decoded []rawPayment
}

// MapPayments maps every payment of the page, in order, calling fn with
// each result (a transaction, or a *mokapos.MapError with the raw record).
// It reuses the decoding done while reading the page.
func (p PaymentPage) MapPayments(m mokapos.MapContext, fn func(raw json.RawMessage, t unified.Transaction, err error) error) error {
	for i, raw := range p.Payments {
		var t unified.Transaction
		var err error
		if len(p.decoded) == len(p.Payments) {
			t, err = mapPayment(&p.decoded[i], m)
		} else {
			t, err = MapPayment(raw, m)
		}
		if err := fn(raw, t, err); err != nil {
			return err
		}
	}
	return nil
}

// Payments walks GET /v3/outlets/{id}/reports/get_latest_transactions
// oldest first (reorder_type=ASC) and follows data.next_url until
// data.completed, calling fn for every page in order. The next_url is used
// for its path and query only, on the configured base URL, with any
// access_token parameter removed (the current token goes in the header);
// it is never logged. A next_url already followed in this walk stops it
// with mokapos.ErrCursorLoop. An error from fn stops the walk and is
// returned as is.
func (c *Client) Payments(ctx context.Context, q PaymentQuery, fn func(PaymentPage) error) error {
	if q.OutletID == "" {
		return errors.New("moka payments: no outlet id")
	}
	per := q.PerPage
	if per <= 0 {
		per = PaymentsPerPage
	}
	v := url.Values{
		"since":        {epoch(q.Since)},
		"per_page":     {strconv.Itoa(per)},
		"reorder_type": {"ASC"},
	}
	if !q.Until.IsZero() {
		v.Set("until", epoch(q.Until))
	}
	if q.TimeFilter != "" {
		v.Set("time_filter", q.TimeFilter)
	}
	t := c.target("/v3/outlets/"+url.PathEscape(q.OutletID)+"/reports/get_latest_transactions", v)
	seen := map[string]bool{}
	for index := 0; ; index++ {
		if index >= c.p.MaxPages() {
			return fmt.Errorf("moka GET %s: %w (%d)", t.path, mokapos.ErrTooManyPages, c.p.MaxPages())
		}
		seen[t.path+"?"+t.query] = true
		var page PaymentPage
		var next string
		err := c.get(ctx, t, func(body []byte) error {
			items, decoded, nextURL, completed, err := decodePaymentsPageDecoded(body)
			if err != nil {
				return err
			}
			page = PaymentPage{Index: index, Payments: items, Last: completed || nextURL == "", decoded: decoded}
			next = nextURL
			if !completed && nextURL == "" {
				c.p.Logger().Warn("Moka walk ended without completed=true or a next_url", "path", t.path, "page", index)
			}
			return nil
		})
		if err != nil {
			return err
		}
		var nt target
		if !page.Last {
			if nt, err = c.follow(next); err != nil {
				return fmt.Errorf("moka GET %s: page %d: %w", t.path, index, err)
			}
			if seen[nt.path+"?"+nt.query] {
				c.p.Logger().Warn("Moka pagination repeated a next_url", "path", t.path, "page", index)
				return fmt.Errorf("moka GET %s: page %d: %w", t.path, index, mokapos.ErrCursorLoop)
			}
		}
		if err := fn(page); err != nil {
			return err
		}
		if page.Last {
			return nil
		}
		t = nt
	}
}

// follow turns a next_url into the next request: its path and query, minus
// access_token, on the configured base URL (so the bearer token never goes
// to another host, whatever scheme or host the server wrote).
func (c *Client) follow(next string) (target, error) {
	u, err := url.Parse(next)
	if err != nil {
		return target{}, fmt.Errorf("%w: next_url is not a URL", mokapos.ErrBadResponse)
	}
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		return target{}, fmt.Errorf("%w: next_url has no absolute path", mokapos.ErrBadResponse)
	}
	q := u.Query()
	q.Del("access_token")
	return target{path: p, query: q.Encode()}, nil
}

// epoch renders t as epoch seconds with microseconds ("1517060430.505206"),
// exactly, without a float.
func epoch(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	sec, us := t.Unix(), t.Nanosecond()/1000
	if us == 0 {
		return strconv.FormatInt(sec, 10)
	}
	if sec < 0 { // before 1970: not a sale time
		return strconv.FormatInt(sec, 10)
	}
	return strconv.FormatInt(sec, 10) + "." + fmt.Sprintf("%06d", us)
}

// ItemPage is one page of the items walk.
type ItemPage struct {
	Index int
	Items []json.RawMessage
	Last  bool
}

// Items walks GET /v1/outlets/{id}/items with page and per_page until a
// page comes back short (or total_count is reached), calling fn per page.
func (c *Client) Items(ctx context.Context, outletID string, fn func(ItemPage) error) error {
	per := ItemsPerPage
	fetched := 0
	for page := 1; ; page++ {
		if page > c.p.MaxPages() {
			return fmt.Errorf("moka GET items: %w (%d)", mokapos.ErrTooManyPages, c.p.MaxPages())
		}
		v := url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(per)}}
		t := c.target("/v1/outlets/"+url.PathEscape(outletID)+"/items", v)
		var ip ItemPage
		err := c.get(ctx, t, func(body []byte) error {
			items, total, err := decodeItemsPage(body)
			if err != nil {
				return err
			}
			ip = ItemPage{Index: page - 1, Items: items}
			ip.Last = len(items) < per || (total >= 0 && fetched+len(items) >= total)
			return nil
		})
		if err != nil {
			return err
		}
		fetched += len(ip.Items)
		if err := fn(ip); err != nil {
			return err
		}
		if ip.Last {
			return nil
		}
	}
}

// jsonProblem shortens a decoding error without echoing the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "invalid JSON at byte " + strconv.FormatInt(se.Offset, 10)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "unexpected JSON " + te.Value + " at " + te.Field
	}
	return "invalid JSON"
}
