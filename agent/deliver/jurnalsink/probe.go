package jurnalsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/internal/mekari"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
)

// A probe is the technician's check of Jurnal (`pwbi-agent doctor`): one
// signed, read-only request through the sink's own client, as the sink
// signs and classifies its calls. Nothing is created.

// probePath is the probe's request: the first row of the product list, a
// list the sink reads for its master data (lookupRow).
const probePath = "products?page=1&page_size=1"

// ProbeResult is what Probe learnt.
type ProbeResult struct {
	// Status is the HTTP status of Jurnal's last answer (0: none came).
	Status int
	// RoundTrip is how long Jurnal took to answer the last request.
	RoundTrip time.Duration
	// ClockOffset is Mekari's clock minus the PC's, from the Date header
	// of the last answer (half the round trip allowed for), when
	// ClockKnown. It is exact to about a second.
	ClockOffset time.Duration
	ClockKnown  bool
	// Corrected reports that the gateway refused the PC's time and the
	// client signed again with Mekari's, as the sink does: it works, but
	// only because the clock is corrected.
	Corrected bool
}

// ProbeKind classifies a failed probe for the one who reads it.
type ProbeKind int

const (
	// ProbeFailed: Jurnal answered with another error; Problem says it.
	ProbeFailed ProbeKind = iota
	// ProbeUnreachable: no answer (DNS, connection refused, TLS, no
	// answer in time); Cause says what the network said.
	ProbeUnreachable
	// ProbeCredentials: 401 or 403 with the clock right: the client id or
	// secret is refused.
	ProbeCredentials
	// ProbeClock: the PC's clock is more than 5 minutes (mekari.MaxSkew)
	// from Mekari's; Skew is by how much.
	ProbeClock
	// ProbeQuota: Jurnal's API limit is used up; the sink tries again at
	// Until.
	ProbeQuota
)

// ProbeError is why a probe failed. Its texts never hold the secret.
type ProbeError struct {
	Kind ProbeKind
	// Status is Jurnal's HTTP status (0: no answer).
	Status int
	// Problem is the sentence the sink's status would show for it (a
	// message of the health catalogue).
	Problem sink.Message
	// Cause is the error in a few words, without the URL or a secret.
	Cause string
	// Skew is, for ProbeClock, Mekari's clock minus the PC's (> 0: the PC
	// is behind).
	Skew time.Duration
	// Until is, for ProbeQuota, when the sink tries again.
	Until time.Time
	err   error
}

func (e *ProbeError) Error() string { return "jurnal probe: " + e.Cause }
func (e *ProbeError) Unwrap() error { return e.err }

// Probe checks that a sink of cfg can talk to Jurnal: one signed GET of the
// first product (read-only) through the sink's client, on client's
// transport (nil: the default one, without redirects). It reports whether
// Jurnal answered, accepted the credentials and the PC's clock, and had
// quota left, with the round trip and the clock offset read from the
// answer's Date. A PC clock the gateway refused is an error (ProbeClock)
// even when the request then succeeded with Mekari's time, as the sink's
// do: the clock must be set right. The result holds what was learnt even
// when the error is not nil.
func Probe(ctx context.Context, cfg Config, client *http.Client) (ProbeResult, error) {
	rec := &probeTransport{}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if client != nil {
		c := *client
		hc = &c
	}
	rec.next = hc.Transport
	if rec.next == nil {
		rec.next = http.DefaultTransport
	}
	hc.Transport = rec
	s := New(cfg, Options{Client: hc, Clock: clockwork.NewRealClock()})

	start := time.Now()
	var env map[string]json.RawMessage
	err := s.api.Do(ctx, http.MethodGet, probePath, nil, &env)
	res := rec.result()
	res.Corrected = s.api.Offset() != 0
	if err == nil {
		if _, ok := env["products"]; !ok {
			e := errors.New("the answer is not Jurnal's list of products")
			return res, &ProbeError{Status: res.Status, Cause: e.Error(), err: e,
				Problem: sink.Say("HealthJurnalNotAnswering", map[string]any{"Error": e.Error()})}
		}
		skew := s.api.Offset()
		if skew == 0 && res.ClockKnown && res.ClockOffset.Abs() > mekari.MaxSkew {
			skew = res.ClockOffset
		}
		if skew != 0 {
			e := fmt.Errorf("the PC clock is %s from Mekari's", skew)
			return res, &ProbeError{Kind: ProbeClock, Status: res.Status, Skew: skew, Problem: ClockMessage(skew), Cause: e.Error(), err: e}
		}
		return res, nil
	}

	pe := &ProbeError{Status: res.Status, err: err}
	var me *mekari.Error
	if !errors.As(err, &me) || me.Kind == mekari.Network {
		// No answer. The cause as the network said it (the transport's
		// own error, without the URL the client adds), or the client's
		// words for a timeout.
		pe.Kind = ProbeUnreachable
		switch {
		case ctx.Err() != nil:
			pe.Cause = fmt.Sprintf("no answer within %s", time.Since(start).Round(time.Second))
		case rec.err != nil && !errors.Is(rec.err, context.Canceled) && !errors.Is(rec.err, context.DeadlineExceeded):
			pe.Cause = rec.err.Error()
		case errors.Unwrap(err) != nil:
			pe.Cause = errors.Unwrap(err).Error()
		default:
			pe.Cause = err.Error()
		}
		pe.Cause = sink.Snippet([]byte(pe.Cause), cfg.ClientSecret, 200)
		pe.Problem = sink.Say("HealthJurnalUnreachable", map[string]any{"Error": pe.Cause})
		return res, pe
	}
	a := s.answer(context.Background(), "", err)
	pe.Problem = sink.Message{Code: a.ProblemCode, Params: a.ProblemParams, Text: a.Problem}
	pe.Cause = me.Error()
	switch me.Kind {
	case mekari.Auth:
		pe.Kind = ProbeCredentials
		if me.Skew != 0 {
			pe.Kind, pe.Skew = ProbeClock, me.Skew
		}
	case mekari.Quota:
		pe.Kind = ProbeQuota
		pe.Until = time.Now().Add(a.RetryAfter)
	default:
		if pe.Problem.Code == "" {
			pe.Problem = sink.Say("HealthJurnalNotAnswering", map[string]any{"Error": me.Error()})
		}
	}
	return res, pe
}

// probeTransport passes requests on and notes what the last one got: its
// status, round trip and Date, or its transport error.
type probeTransport struct {
	next http.RoundTripper

	mu     sync.Mutex
	status int
	rtt    time.Duration
	offset time.Duration
	dated  bool
	err    error
}

func (p *probeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	sent := time.Now()
	resp, err := p.next.RoundTrip(req)
	got := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.err = err
		return nil, err
	}
	p.err = nil
	p.status, p.rtt = resp.StatusCode, got.Sub(sent)
	d, derr := http.ParseTime(resp.Header.Get("Date"))
	p.dated = derr == nil
	if p.dated {
		p.offset = d.Sub(sent.Add(p.rtt / 2)).Round(time.Second)
	}
	return resp, nil
}

func (p *probeTransport) result() ProbeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProbeResult{Status: p.status, RoundTrip: p.rtt, ClockOffset: p.offset, ClockKnown: p.dated}
}
