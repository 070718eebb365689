package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrNotRunning means nothing answers on the local API address: the agent is
// not running (or listens elsewhere).
var ErrNotRunning = errors.New("agent not running")

// Client calls a running agent's local API. It is what the CLI and the tray
// use; it is safe for concurrent use.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for the API listening on addr (host:port).
// hc may be nil.
func NewClient(addr string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{base: "http://" + addr, http: hc}
}

// BaseURL is the API's origin, e.g. for opening the dashboard.
func (c *Client) BaseURL() string { return c.base }

// Status fetches the agent's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", &st)
	return st, err
}

// Sync asks the agent to poll and flush now.
func (c *Client) Sync(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/sync", nil)
}

// Import starts a historical import in the running agent.
func (c *Client) Import(ctx context.Context, req ImportRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/import", nil, req)
}

func (c *Client) do(ctx context.Context, method, path string, out any, in ...any) error {
	var body io.Reader
	if len(in) > 0 {
		b, err := json.Marshal(in[0])
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%w at %s", ErrNotRunning, strings.TrimPrefix(c.base, "http://"))
		}
		return fmt.Errorf("local api %s: %w", path, err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("local api %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(respBody, &eb) == nil && eb.Error != "" {
			return fmt.Errorf("local api %s: %s (%d)", path, eb.Error, resp.StatusCode)
		}
		return fmt.Errorf("local api %s: HTTP %d", path, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(respBody, out); err != nil {
		return fmt.Errorf("local api %s: decode: %w", path, err)
	}
	return nil
}
