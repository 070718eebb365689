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

// ErrNoProgress stops a payments walk that cannot go on without risking
// to skip or repeat rows forever: the server returned rows from before
// since or out of order, or more rows of one time than the largest page.
var ErrNoProgress = errors.New("moka pagination makes no progress")

// ClientConfig is what the configuration file gives the API client.
type ClientConfig struct {
	BaseURL           string // e.g. https://api.mokapos.com
	RequestsPerMinute int    // used only when the options carry no Limiter
}

// Client talks to the Moka Open API (SPEC §5.2) with the access tokens of
// a Tokens manager. It reuses the apikey client's request discipline
// (Pacer: shared rate limit, backoff with jitter, Retry-After,
// timeouts, body bound) and its errors (HTTPError, ErrBadResponse,
// ErrResponseTooLarge, ErrTooManyPages). It is safe for
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
	// Location is the zone of row times written without an offset
	// (moka.timezone); nil means UTC. The walk orders rows by those times.
	Location *time.Location
}

// PaymentPage is one page of a payments walk.
type PaymentPage struct {
	Index int
	// Payments are the raw records new to the walk, in server order
	// (sub-slices of the body, never reused: the callee may keep them).
	Payments []json.RawMessage
	// Last is true on the page that ends the walk.
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
			t, err = mapPayment(&p.decoded[i], m, nil)
		} else {
			t, err = MapPayment(raw, m)
		}
		if err := fn(raw, t, err); err != nil {
			return err
		}
	}
	return nil
}

// The walk's bounds.
const (
	// MaxPaymentsPerPage is the largest per_page a walk asks for when more
	// rows than a page share one time (GoBiz documents 1000 as its
	// maximum).
	MaxPaymentsPerPage = 1000
	// positionSlack is how far before since a row may be dated without
	// the walk concluding that the server ignored since: the payload
	// shows milliseconds of a time Moka may keep to the microsecond.
	positionSlack = time.Second
)

// Payments walks GET /v3/outlets/{id}/reports/get_latest_transactions
// oldest first (reorder_type=ASC, since/until as epoch seconds with
// microseconds), calling fn for every page in order with the rows new to
// the walk.
//
// The walk advances from the rows themselves, never from next_url: public
// code only shows next_url for reorder_type=DESC, where it carries until
// one step before the last row; followed in an ASC walk it asks for the
// first page again. Whatever next_url holds (that, since, nothing, the
// same page) the walk asks next for since = the newest row's time (of the
// time_filter field) minus a microsecond, with until unchanged, so rows
// sharing that time at a page boundary come again rather than being lost,
// and drops rows it already delivered (by id). It ends on completed=true,
// on an empty page, or on a page with nothing new that is not full. A full
// page with nothing new means more rows share one time than a page holds:
// per_page doubles (up to MaxPaymentsPerPage), then ErrNoProgress. Rows
// dated before since (a server ignoring since) or not in ascending order
// stop the walk with ErrNoProgress rather than risk skipping a row. An
// error from fn stops the walk and is returned as is. next_url, which may
// carry an access token, is never followed, stored or logged.
func (c *Client) Payments(ctx context.Context, q PaymentQuery, fn func(PaymentPage) error) error {
	if q.OutletID == "" {
		return errors.New("moka payments: no outlet id")
	}
	per := q.PerPage
	if per <= 0 {
		per = PaymentsPerPage
	}
	since := q.Since
	path := "/v3/outlets/" + url.PathEscape(q.OutletID) + "/reports/get_latest_transactions"
	// seen holds the ids delivered whose time is at or after since minus
	// the slack: the only ones a later page can return again.
	seen := map[string]time.Time{}
	emitted := 0
	for request := 0; ; request++ {
		if request >= c.p.MaxPages {
			return fmt.Errorf("moka GET %s: %w (%d)", c.base.EscapedPath()+path, ErrTooManyPages, c.p.MaxPages)
		}
		v := url.Values{
			"since":        {epoch(since)},
			"per_page":     {strconv.Itoa(per)},
			"reorder_type": {"ASC"},
		}
		if !q.Until.IsZero() {
			v.Set("until", epoch(q.Until))
		}
		if q.TimeFilter != "" {
			v.Set("time_filter", q.TimeFilter)
		}
		t := c.target(path, v)
		var (
			items     []json.RawMessage
			decoded   []rawPayment
			completed bool
		)
		err := c.get(ctx, t, func(body []byte) error {
			var err error
			items, decoded, _, completed, err = decodePaymentsPageDecoded(body)
			return err
		})
		if err != nil {
			return err
		}

		page := PaymentPage{Index: emitted}
		newest, prev := since, time.Time{}
		for i := range items {
			at, ok := position(&decoded[i], q.TimeFilter, q.Location)
			if ok {
				if at.Before(since.Add(-positionSlack)) {
					c.p.Log.Warn("Moka returned sales from before the time asked for", "path", t.path, "page", request)
					return fmt.Errorf("moka GET %s: page %d: %w: a row is older than since", t.path, request, ErrNoProgress)
				}
				if at.Before(prev) {
					c.p.Log.Warn("Moka returned sales out of order", "path", t.path, "page", request)
					return fmt.Errorf("moka GET %s: page %d: %w: rows are not in ascending order", t.path, request, ErrNoProgress)
				}
				prev = at
				if at.After(newest) {
					newest = at
				}
			}
			if id, err := paymentID(&decoded[i]); err == nil && id != "" {
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = at // zero when unknown: forgotten at the next step
			}
			page.Payments = append(page.Payments, items[i])
			page.decoded = append(page.decoded, decoded[i])
		}
		fresh := len(page.Payments)
		switch {
		case completed || len(items) == 0:
			page.Last = true
		case fresh > 0:
		case len(items) < per:
			// Nothing new and the server had no more to give: done,
			// whatever completed says.
			page.Last = true
		case per < MaxPaymentsPerPage:
			// A full page of rows already delivered: more rows share one
			// time than a page holds. Ask for larger pages from the same
			// since.
			per = min(2*per, MaxPaymentsPerPage)
			c.p.Log.Debug("Moka page full of one time; asking for larger pages", "path", t.path, "per_page", per)
			continue
		default:
			c.p.Log.Warn("Moka pagination makes no progress", "path", t.path, "page", request)
			return fmt.Errorf("moka GET %s: page %d: %w: more than %d rows share one time", t.path, request, ErrNoProgress, per)
		}
		if fresh > 0 || page.Last {
			if err := fn(page); err != nil {
				return err
			}
			emitted++
		}
		if page.Last {
			return nil
		}
		if next := newest.Add(-time.Microsecond); next.After(since) {
			since = next
		}
		for id, at := range seen {
			if !at.IsZero() && at.Before(since.Add(-positionSlack)) {
				delete(seen, id) // a row without a time is kept: it has no place to come back from
			}
		}
	}
}

// position is the time of a row in the walk's order: its time_filter
// field (created_at by default, with paymentTime's fallbacks). ok is false
// when it cannot be read: such a row does not move the walk on.
func position(r *rawPayment, filter string, loc *time.Location) (time.Time, bool) {
	var t time.Time
	var err error
	switch filter {
	case TimeFilterUpdated:
		t, err = timestamp(r.UpdatedAt, loc)
	case "synchronized_at":
		t, err = timestamp(r.SynchronizedAt, loc)
	default:
		_, when := paymentTime(r)
		t, err = when(loc)
	}
	return t, err == nil
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
