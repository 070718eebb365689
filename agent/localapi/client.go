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
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNotRunning means nothing answers on the local API address: the agent is
// not running (or listens elsewhere).
var ErrNotRunning = errors.New("agent not running")

// ErrConfigRejected is matched (errors.Is) by Client.Reload's error when the
// agent refused the config file; the result's Error says why.
var ErrConfigRejected = errors.New("configuration refused")

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
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Sync asks the agent to poll and flush now.
func (c *Client) Sync(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/sync", nil, nil)
}

// Import starts a historical import in the running agent.
func (c *Client) Import(ctx context.Context, req ImportRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/import", req, nil)
}

// Pause stops the agent's syncing until Resume.
func (c *Client) Pause(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/pause", nil, nil)
}

// Resume restarts syncing after Pause.
func (c *Client) Resume(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/resume", nil, nil)
}

// Reload asks the agent to re-read its config file. When the agent refuses
// the file, the result is filled in (Error says why, the previous
// configuration keeps running) and the error matches ErrConfigRejected.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var res ReloadResult
	code, body, err := c.roundTrip(ctx, http.MethodPost, "/v1/reload", nil)
	if err != nil {
		return res, err
	}
	if code == http.StatusUnprocessableEntity && json.Unmarshal(body, &res) == nil && res.Error != "" {
		return res, fmt.Errorf("%w: %s", ErrConfigRejected, res.Error)
	}
	if err := decodeAnswer("/v1/reload", code, body, &res); err != nil {
		return ReloadResult{}, err
	}
	return res, nil
}

// DeadLetters lists up to dq.Limit dead letters (<= 0: the server's
// default, 100), of dq.Sink only if set, with their record data if
// dq.WithData.
func (c *Client) DeadLetters(ctx context.Context, dq DeadLetterQuery) ([]DeadLetter, error) {
	q := url.Values{}
	if dq.Limit > 0 {
		q.Set("limit", strconv.Itoa(dq.Limit))
	}
	if dq.WithData {
		q.Set("data", "1")
	}
	if dq.Sink != "" {
		q.Set("sink", dq.Sink)
	}
	path := "/v1/queue/dead"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out DeadLetters
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out.DeadLetters, nil
}

// Requeue moves dead letters back to the outbox: req.IDs, or all of them
// (of req.Sink only, if set).
func (c *Client) Requeue(ctx context.Context, req RequeueRequest) (RequeueResult, error) {
	var res RequeueResult
	err := c.do(ctx, http.MethodPost, "/v1/queue/retry", req, &res)
	return res, err
}

// Metrics fetches the Prometheus text exposition.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	code, body, err := c.roundTrip(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return "", err
	}
	if err := decodeAnswer("/metrics", code, body, nil); err != nil {
		return "", err
	}
	return string(body), nil
}

// do sends in (if not nil) as JSON and decodes a 2xx answer into out (if not
// nil); any other answer becomes an error carrying the server's message.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	code, body, err := c.roundTrip(ctx, method, path, in)
	if err != nil {
		return err
	}
	return decodeAnswer(path, code, body, out)
}

func (c *Client) roundTrip(ctx context.Context, method, path string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return 0, nil, fmt.Errorf("%w at %s", ErrNotRunning, strings.TrimPrefix(c.base, "http://"))
		}
		return 0, nil, fmt.Errorf("local api %s: %w", path, err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("local api %s: %w", path, err)
	}
	return resp.StatusCode, respBody, nil
}

// StatusError is an answer of the agent that is not a success: Code is
// its HTTP status, Message the error the agent gave ("" without one). A
// caller tells a 404 (an agent that does not serve the path: older, or
// without that part) from a failure with errors.As.
type StatusError struct {
	Path    string
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("local api %s: %s (%d)", e.Path, e.Message, e.Code)
	}
	return fmt.Sprintf("local api %s: HTTP %d", e.Path, e.Code)
}

func decodeAnswer(path string, code int, body []byte, out any) error {
	if code/100 != 2 {
		var eb ErrorBody
		_ = json.Unmarshal(body, &eb) // a body that is not ours: no message
		return &StatusError{Path: path, Code: code, Message: eb.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("local api %s: decode: %w", path, err)
	}
	return nil
}
