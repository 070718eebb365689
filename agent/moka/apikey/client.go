package apikey

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
	"github.com/pwbi/edge-agent/internal/secret"
)

// PageLimit is the limit sent with every list request.
const PageLimit = 100

// ErrUnauthorized: Moka answered 401 or 403. Retrying cannot help until the
// configuration changes. Every error of the client wraps at most one of
// ErrUnauthorized and the errors of shared.go (ErrCursorLoop, …); none
// contains the API key.
var ErrUnauthorized = errors.New("invalid API key")

// ClientConfig is what the configuration file provides ([moka] table).
type ClientConfig struct {
	BaseURL           string // e.g. https://api.mokapos.com
	APIKey            string
	BusinessID        string
	RequestsPerMinute int // used only when ClientOptions.Limiter is nil; <= 0 means 60
}

// Client talks to the apikey dialect of the Moka API (SPEC §5.1). It is safe
// for concurrent use.
type Client struct {
	base       string
	apiKey     string
	businessID string
	// p holds the request discipline (limiter, backoff, timeouts), shared
	// with the oauth dialect.
	p *wire.Pacer
}

// NewClient returns a client for cfg.
func NewClient(cfg ClientConfig, opts ClientOptions) *Client {
	return &Client{
		base:       strings.TrimRight(cfg.BaseURL, "/"),
		apiKey:     cfg.APIKey,
		businessID: cfg.BusinessID,
		p:          wire.NewPacer(opts, cfg.RequestsPerMinute),
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
			id, err := wire.IDField(o.ID)
			if err != nil || id == "" {
				return fmt.Errorf("%w: outlets[%d].id missing or invalid", ErrBadResponse, i)
			}
			name, err := wire.TextField(o.Name)
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
		if index >= c.p.MaxPages {
			return fmt.Errorf("moka GET %s: %w (%d)", path, ErrTooManyPages, c.p.MaxPages)
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
				c.p.Log.Warn("Moka pagination repeated a cursor", "path", path, "page", index)
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
	s := wire.NewScanner(body)
	if s.Peek() != '{' {
		return nil, "", fmt.Errorf("%w: not a JSON object", ErrBadResponse)
	}
	var cursor []byte
	sawData := false
	err = s.Object(func(key []byte) error {
		var err error
		switch string(key) {
		case "data":
			sawData = true
			items = items[:0]
			switch s.Peek() {
			case '[':
				err = s.Array(func(int) error {
					v, err := s.Value()
					items = append(items, v)
					return err
				})
			case 'n':
				_, err = s.Value()
			default:
				return fmt.Errorf("%w: data is not an array", ErrBadResponse)
			}
		case "next_cursor":
			cursor, err = s.Value()
		default:
			_, err = s.Value()
		}
		return err
	})
	if err == nil {
		err = s.End()
	}
	if err != nil {
		return nil, "", wire.BadResponse(err)
	}
	if !sawData {
		return nil, "", fmt.Errorf("%w: no data array", ErrBadResponse)
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	if next, err = wire.IDField(cursor); err != nil {
		return nil, "", fmt.Errorf("%w: next_cursor: %v", ErrBadResponse, err)
	}
	return items, next, nil
}

// get performs GET {base}{path}?{q} with rate limiting and retries, and
// hands a 2xx body to decode. A decode error wrapping ErrBadResponse is
// retried; any other decode error is returned at once. 401 and 403 stop
// with ErrUnauthorized; everything else is judged as in the oauth dialect
// (wire.Judge).
func (c *Client) get(ctx context.Context, path string, q url.Values, decode func([]byte) error) error {
	req := wire.Request{
		Method: http.MethodGet,
		URL:    c.base + path + "?" + q.Encode(),
		Path:   path,
		Auth:   "Bearer " + c.apiKey,
		Redact: c.redactErr,
	}
	return c.p.Retry(ctx, req.Method, path, c.p.MaxRetries, func() wire.Outcome {
		resp, err := c.p.Do(ctx, req)
		if err == nil && (resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden) {
			c.p.Log.Warn("Moka rejected the API key", "path", path, "status", resp.Status)
			return wire.Done(fmt.Errorf("moka GET %s: HTTP %d: %w", path, resp.Status, ErrUnauthorized))
		}
		return wire.Judge(ctx, req, resp, err, decode, c.redact)
	})
}

// redact removes the API key from text that came from elsewhere (a server
// echoing the request, a transport error).
func (c *Client) redact(s string) string { return secret.Redact(s, c.apiKey) }

// redactErr keeps err's chain (errors.Is still works) but renders its text
// without the API key.
func (c *Client) redactErr(err error) error { return secret.RedactError(err, c.redact) }
