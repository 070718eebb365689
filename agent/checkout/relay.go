package checkout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"time"
)

// answer is Mokka's answer to one call.
type answer struct {
	HTTPStatus  int
	ContentType string
	Body        []byte
	// Code is the Mokka code in the body ("status", or "meta.status" for
	// Limit); -1 when the body has none.
	Code int
	env  *envelope // the body, parsed once; nil if it is not JSON
}

// envelope is what the gateway reads of any Mokka answer.
type envelope struct {
	Status *int `json:"status"`
	Meta   *struct {
		Status *int `json:"status"`
	} `json:"meta"`
	CurrentOrder *currentOrder `json:"current_order"` // Status only
}

// currentOrder is Status's view of an order, read tolerantly.
type currentOrder struct {
	OrderID  json.RawMessage `json:"order_id"`
	Expired  json.RawMessage `json:"expired"`
	Status   string          `json:"status"`
	Decision *string         `json:"decision"`
	Amount   json.RawMessage `json:"amount"`
	Term     json.RawMessage `json:"term"`
}

func parseEnvelope(body []byte) (*envelope, int) {
	var env envelope
	if json.Unmarshal(body, &env) != nil {
		return nil, -1
	}
	switch {
	case env.Status != nil:
		return &env, *env.Status
	case env.Meta != nil && env.Meta.Status != nil:
		return &env, *env.Meta.Status
	}
	return &env, -1
}

// callError is a Mokka call that got no answer.
type callError struct {
	timeout bool
	err     error
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// handleRelay validates, signs and forwards one tablet request, and relays
// Mokka's answer.
func (g *Gateway) handleRelay(w http.ResponseWriter, r *http.Request, tablet, method string) {
	cfg := g.config()
	if !cfg.Configured() {
		writeMokka(w, http.StatusServiceUnavailable, CodeServer, "the checkout gateway is not configured: checkout.store_id and checkout.secret_key are needed")
		return
	}
	select {
	case g.sem <- struct{}{}:
		defer func() { <-g.sem }()
	default:
		writeMokka(w, http.StatusServiceUnavailable, CodeServer, "too many requests in flight; try again")
		return
	}
	// The answer waits for Mokka: allow for it on top of the default.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(cfg.Timeout + writeMargin))

	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	var signed, payload []byte
	contentType := "application/json"
	if method == MethodFinish && isMultipart(r.Header.Get("Content-Type")) {
		var receipt []byte
		var err error
		signed, receipt, err = readFinish(r)
		if err != nil {
			refuseBody(w, err)
			return
		}
		payload, contentType = finishBody(signed, receipt)
	} else {
		var err error
		signed, err = io.ReadAll(r.Body)
		if err != nil {
			refuseBody(w, err)
			return
		}
		payload = signed
	}
	req, verr := Validate(method, signed)
	if verr != nil {
		g.log.Info("Tablet request refused before Mokka", "method", method, "tablet", tablet, "mokka_status", verr.Code, "detail", verr.Detail)
		writeMokka(w, http.StatusBadRequest, verr.Code, verr.Detail)
		return
	}

	start := time.Now()
	// Not the tablet's context: if the tablet hangs up, the order may
	// still be created at Mokka, and the gateway wants to know.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), cfg.Timeout)
	defer cancel()
	ans, err := g.call(ctx, cfg, method, payload, contentType, signed)
	if err != nil {
		var ce *callError
		timeout := errors.As(err, &ce) && ce.timeout
		g.log.Warn("Mokka call failed", "method", method, "tablet", tablet, "order_id", req.OrderID,
			"timeout", timeout, "duration", time.Since(start).Round(time.Millisecond), "err", err)
		if timeout {
			writeMokka(w, http.StatusGatewayTimeout, CodeServer, fmt.Sprintf("Mokka did not answer within %s", cfg.Timeout))
		} else {
			writeMokka(w, http.StatusBadGateway, CodeServer, "cannot reach Mokka")
		}
		return
	}
	took := time.Since(start)
	// Tracked before the tablet hears back: an order it was just told
	// about is there when it asks for it.
	g.observe(cfg, tablet, req, ans)

	ct := ans.ContentType
	if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && mt != "text/plain" && mt != "text/html") {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(ans.HTTPStatus)
	w.Write(ans.Body) //nolint:errcheck // the tablet went away
	// Reads (a tablet polling Status) at debug level: they would flood
	// the log; every call that changes something is logged.
	level := slog.LevelInfo
	switch method {
	case MethodStatus, MethodSchedule, MethodLimit:
		level = slog.LevelDebug
	}
	g.log.Log(context.Background(), level, "Mokka request relayed", "method", method, "tablet", tablet, "order_id", req.OrderID,
		"http_status", ans.HTTPStatus, "mokka_status", ans.Code, "duration", took.Round(time.Millisecond))
}

// refuseBody answers a body that could not be read.
func refuseBody(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeMokka(w, http.StatusRequestEntityTooLarge, CodeJSON, "the request is larger than 1 MiB")
		return
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		writeMokka(w, http.StatusBadRequest, ve.Code, ve.Detail)
		return
	}
	writeMokka(w, http.StatusBadRequest, CodeJSON, "cannot read the request body")
}

// call POSTs payload to {base_url}/{method}?store_id=…&signature=… and
// reads the answer, within ctx. The signature covers signed (payload
// itself, or the "body" field of a multipart Finish), with the store's
// credentials for method (Config.Credentials). store_id and signature go
// in the query, as every real client sends them; the body is sent as it
// was signed.
func (g *Gateway) call(ctx context.Context, cfg *runtimeConfig, method string, payload []byte, contentType string, signed []byte) (*answer, error) {
	storeID, key := cfg.Credentials(method)
	u := cfg.base + "/" + method + "?store_id=" + url.QueryEscape(storeID) + "&signature=" + Sign(signed, key)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return nil, &callError{err: errors.New("bad checkout.base_url")}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", g.ua)
	resp, err := g.hc.Do(req)
	if err != nil {
		return nil, classify(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, classify(ctx, err)
	}
	if len(body) > maxResponseBytes {
		return nil, &callError{err: errors.New("mokka answer larger than 1 MiB")}
	}
	env, code := parseEnvelope(body)
	return &answer{
		HTTPStatus:  resp.StatusCode,
		ContentType: resp.Header.Get("Content-Type"),
		Body:        body,
		Code:        code,
		env:         env,
	}, nil
}

// classify turns a transport error into a callError without the URL (it
// holds the signature).
func classify(ctx context.Context, err error) *callError {
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded)
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
		if ue.Timeout() {
			timeout = true
		}
	}
	if timeout {
		return &callError{timeout: true, err: errors.New("mokka did not answer in time")}
	}
	return &callError{err: fmt.Errorf("mokka unreachable: %w", err)}
}

func isMultipart(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "multipart/form-data"
}

// readFinish reads a multipart Finish from a tablet: the "body" field (the
// JSON that is signed) and the optional "check" file (the receipt). Other
// parts are refused: the gateway forwards only what it checked.
func readFinish(r *http.Request) (body, receipt []byte, err error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, &ValidationError{Code: CodeJSON, Detail: "malformed multipart body"}
	}
	seen := map[string]bool{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, nil, err
			}
			return nil, nil, &ValidationError{Code: CodeJSON, Detail: "malformed multipart body"}
		}
		name := p.FormName()
		if (name != "body" && name != "check") || seen[name] {
			p.Close()
			return nil, nil, &ValidationError{Code: CodeJSON, Detail: "a Finish has one \"body\" field and one \"check\" file, nothing else"}
		}
		seen[name] = true
		b, err := io.ReadAll(p)
		p.Close()
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, nil, err
			}
			return nil, nil, &ValidationError{Code: CodeJSON, Detail: "malformed multipart body"}
		}
		if name == "body" {
			body = b
		} else {
			receipt = b
		}
	}
	if body == nil {
		return nil, nil, &ValidationError{Code: CodeJSON, Detail: "the multipart Finish has no \"body\" field"}
	}
	return body, receipt, nil
}

// finishBody builds the multipart Finish sent to Mokka: "body" holds the
// JSON exactly as signed, "check" the receipt (as check.pdf), if any.
func finishBody(body, receipt []byte) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormField("body") // writes to a buffer: no error
	fw.Write(body)                      //nolint:errcheck // bytes.Buffer
	if receipt != nil {
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", `form-data; name="check"; filename="check.pdf"`)
		h.Set("Content-Type", "application/pdf")
		pw, _ := mw.CreatePart(h)
		pw.Write(receipt) //nolint:errcheck // bytes.Buffer
	}
	mw.Close() //nolint:errcheck // bytes.Buffer
	return buf.Bytes(), mw.FormDataContentType()
}
