package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/secret"
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
// (Pacer: shared rate limit, backoff with jitter, Retry-After,
// timeouts, body bound) and its errors (HTTPError, ErrBadResponse,
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
	p      *wire.Pacer
}

// NewClient returns a client of cfg using tokens; opts are the options both
// dialects' clients take (HTTP client, clock, logger, shared limiter,
// retries, timeouts, observers).
func NewClient(cfg ClientConfig, tokens *Tokens, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("moka base url %q is not an http(s) URL", cfg.BaseURL)
	}
	u.RawQuery, u.Fragment = "", ""
	return &Client{base: u, tokens: tokens, p: NewPacer(opts, cfg.RequestsPerMinute)}, nil
}

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
// A 401 refreshes the access token once and tries again at once; a 401
// with the fresh token, or a 403, stops with an *AuthError. Everything
// else is judged as in the apikey dialect (wire.Judge).
func (c *Client) get(ctx context.Context, t target, decode func([]byte) error) error {
	path := t.path // what errors and logs show: never the query
	req := wire.Request{
		Method: http.MethodGet,
		URL:    t.url(c.base),
		Path:   path,
		Redact: func(err error) error { return c.tokens.redactErr(secret.RedactURL(err, path)) },
	}
	refreshed := false
	return c.p.Retry(ctx, req.Method, path, c.p.MaxRetries, func() wire.Outcome {
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return wire.Done(err)
		}
		req.Auth = "Bearer " + tok.Value()
		resp, err := c.p.Do(ctx, req)
		switch {
		case err != nil:
		case resp.Status == http.StatusUnauthorized && !refreshed:
			// The access token expired or was revoked early: refresh once
			// and try again at once.
			refreshed = true
			c.p.Log.Info("Moka refused the access token; refreshing", "path", path)
			if _, err := c.tokens.Refresh(ctx, tok); err != nil {
				return wire.Done(err)
			}
			return wire.Outcome{Now: true}
		case resp.Status == http.StatusUnauthorized:
			c.p.Log.Warn("Moka refused a fresh access token", "path", path)
			return wire.Done(c.tokens.Rejected(c.tokens.Redact(wire.Snippet(resp.Body))))
		case resp.Status == http.StatusForbidden:
			c.p.Log.Warn("Moka refused access", "path", path, "status", resp.Status)
			return wire.Done(&AuthError{Err: ErrForbidden, Detail: "GET " + path + ": " + c.tokens.Redact(wire.Snippet(resp.Body))})
		}
		return wire.Judge(ctx, req, resp, err, decode, c.tokens.Redact)
	})
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
			return fmt.Errorf("%w: profile: %s", ErrBadResponse, jsonProblem(err))
		}
		p.ID, _ = wire.IDField(r.ID)
		if p.BusinessID, err = wire.IDField(r.BusinessID); err != nil || p.BusinessID == "" {
			return fmt.Errorf("%w: profile without business_id", ErrBadResponse)
		}
		for _, raw := range r.OutletIDs {
			if id, err := wire.IDField(raw); err == nil && id != "" {
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
				return fmt.Errorf("%w: outlets[%d]: %s", ErrBadResponse, i, jsonProblem(err))
			}
			id, err := wire.IDField(o.ID)
			if err != nil || id == "" {
				return fmt.Errorf("%w: outlets[%d].id missing or invalid", ErrBadResponse, i)
			}
			if del, _ := boolField(o.IsDeleted); del {
				continue
			}
			name, _ := wire.TextField(o.Name)
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
// each result (a transaction, or a *MapError with the raw record).
// It reuses the decoding done while reading the page.
func (p PaymentPage) MapPayments(m MapContext, fn func(raw json.RawMessage, t unified.Transaction, err error) error) error {
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
// with ErrCursorLoop. An error from fn stops the walk and is
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
		if index >= c.p.MaxPages {
			return fmt.Errorf("moka GET %s: %w (%d)", t.path, ErrTooManyPages, c.p.MaxPages)
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
				c.p.Log.Warn("Moka walk ended without completed=true or a next_url", "path", t.path, "page", index)
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
				c.p.Log.Warn("Moka pagination repeated a next_url", "path", t.path, "page", index)
				return fmt.Errorf("moka GET %s: page %d: %w", t.path, index, ErrCursorLoop)
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
		return target{}, fmt.Errorf("%w: next_url is not a URL", ErrBadResponse)
	}
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		return target{}, fmt.Errorf("%w: next_url has no absolute path", ErrBadResponse)
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
		if page > c.p.MaxPages {
			return fmt.Errorf("moka GET items: %w (%d)", ErrTooManyPages, c.p.MaxPages)
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
