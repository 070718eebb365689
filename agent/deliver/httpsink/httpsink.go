// Package httpsink delivers records to the PWBI HTTP upstream (SPEC §6.1):
// the first sink of the delivery loop (agent/deliver), which decides what
// is sent when, retries, splits, bisects and dead-letters. This package
// makes one request per batch and says what the answer means.
//
// A batch is posted as gzip-compressed JSON to {url}/v1/batches with the
// bearer token and its batch id as Idempotency-Key. Acceptance is explicit:
// a 2xx or 409 whose body is a JSON object echoing the batch id that was
// sent. Nothing is accepted on a status code alone: any other 2xx (a captive
// portal's login page, an empty body, another batch's id) and any redirect
// are retries, and the Problem says what came back (as a sink.Message of
// the health catalogue, so that it reads in the reader's language). Transient failures (408,
// 425, 429, 5xx, network errors, timeouts, truncated answers) are retries
// of the same batch, with the same batch id, honouring Retry-After.
// Authentication and endpoint failures (401, 403, 404, 405, ...) are
// retries a person must look at, never blamed on records. A 413 is
// [sink.TooLarge]; any other 4xx is a record-level [sink.Rejected].
//
// The token never appears in an answer, an error or a Problem; redirect
// targets are reduced to their host. Every wait goes through the injected
// clockwork.Clock. The fake receiver to test against is
// agent/deliver/httpsink/upstreamfake.
package httpsink

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/store"
)

// Config is the [upstream] section of the config file plus the agent id.
type Config struct {
	// URL is the ingest service's base URL; batches go to {URL}/v1/batches.
	// Empty means not configured: the loop keeps records buffered.
	URL string
	// Token is the bearer token. It is never logged.
	Token string
	// AgentID is sent as agent_id and is part of every batch id.
	AgentID string
	// Timeout bounds each attempt, from sending the request to reading the
	// answer (default 30s).
	Timeout time.Duration
}

// DefaultTimeout is the attempt timeout used when Config.Timeout is not
// positive.
const DefaultTimeout = 30 * time.Second

// Options are the sink's dependencies; all fields are optional.
type Options struct {
	// Client sends the requests. Default: a client shared by every sink
	// of the process, whose transport is a clone of
	// http.DefaultTransport and which does not follow redirects (a 3xx is
	// reported as an endpoint error rather than silently turning the POST
	// into a GET). Per-attempt timeouts come from Config.Timeout through
	// the Clock, not from Client.Timeout.
	Client *http.Client
	// Clock drives the attempt timeout, sent_at and Retry-After dates.
	Clock clockwork.Clock
	// UserAgent is sent as User-Agent; default "pwbi-agent/dev". Set it to
	// "pwbi-agent/" + version.
	UserAgent string
}

// Sink posts batches to one upstream with one configuration: a new
// configuration (hot reload) is a new Sink, handed to the loop with
// deliver.Forwarder.Update. Send is called by one goroutine at a time (the
// loop sends one batch at a time); Endpoint is safe for concurrent use.
type Sink struct {
	cfg       Config
	client    *http.Client
	clock     clockwork.Clock
	userAgent string
	endpoint  string

	enc encoder // used by Send only
}

// New returns a sink posting to cfg.URL.
func New(cfg Config, opts Options) *Sink {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	s := &Sink{
		cfg:       cfg,
		client:    opts.Client,
		clock:     opts.Clock,
		userAgent: opts.UserAgent,
		endpoint:  endpointID(cfg),
	}
	if s.client == nil {
		s.client = defaultClient()
	}
	if s.clock == nil {
		s.clock = clockwork.NewRealClock()
	}
	if s.userAgent == "" {
		s.userAgent = "pwbi-agent/dev"
	}
	return s
}

var defaultClient = sync.OnceValue(func() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
})

// endpointID is the identity Endpoint returns for cfg: "" without a URL,
// otherwise the identity (sink.Identity) of the URL, the token and the
// agent id — what decides where records go and as whom, and their batch
// ids.
func endpointID(cfg Config) string {
	if cfg.URL == "" {
		return ""
	}
	return sink.Identity(cfg.URL, cfg.Token, cfg.AgentID)
}

// Endpoint identifies where and as whom the sink delivers: equal for two
// sinks with the same URL, token and agent id, different otherwise, and ""
// when no URL is configured. It is an opaque digest: never a secret, but
// meaningless to a person.
func (s *Sink) Endpoint() string { return s.endpoint }

// Send posts batch (records in seq order) as one request and says what the
// answer means. ctx ending abandons the attempt (sink.Canceled).
func (s *Sink) Send(ctx context.Context, batch []store.Record) sink.Answer {
	id := BatchID(s.cfg.AgentID, batch)
	a := s.judge(id, s.post(ctx, id, batch))
	a.BatchID = id
	return a
}

// judge turns what an attempt produced into the sink's answer.
func (s *Sink) judge(id string, r response) sink.Answer {
	if r.canceled {
		return sink.Answer{Verdict: sink.Canceled, StatusCode: r.status}
	}
	if r.err != nil {
		health := sink.HealthOffline
		if r.local {
			health = sink.HealthError
		}
		return retry(r.status, fmt.Errorf("send batch: %w", r.err), health, r.problem, 0)
	}
	serr := &StatusError{
		StatusCode: r.status,
		Body:       sink.Snippet(r.body, s.cfg.Token, maxSnippet),
		RetryAfter: r.retryAfter,
	}
	switch c := classify(r.status); c {
	case classAck:
		if v := checkAck(r.contentType, r.body, r.overflow, id); v != ackOK {
			// Safe to retry: the same batch id is answered 409 (with the
			// echo) if the upstream did take it.
			serr.NotAck = v.String()
			if v == ackWebPage {
				serr.Body = "" // a portal's page may carry session links
			}
			return retry(r.status, serr, sink.HealthError, notAckProblem(r.status, v), r.retryAfter)
		}
		return sink.Answer{Verdict: sink.Accepted, StatusCode: r.status}
	case classRedirect:
		// The body of a redirect usually repeats the target URL, which
		// may carry credentials or a session: only the host is shown.
		serr.Body = ""
		serr.RedirectHost = r.redirect
		return retry(r.status, serr, sink.HealthError, redirectProblem(r.status, r.redirect), r.retryAfter)
	case classTooLarge:
		return rejection(sink.TooLarge, serr)
	case classRejected:
		return rejection(sink.Rejected, serr)
	case classTransient:
		return retry(r.status, serr, sink.HealthOffline, statusProblem(c, r.status), r.retryAfter)
	default: // classAuth, classEndpoint, classUnexpected
		return retry(r.status, serr, sink.HealthError, statusProblem(c, r.status), r.retryAfter)
	}
}

func retry(status int, err error, health sink.Health, problem sink.Message, after time.Duration) sink.Answer {
	return sink.Answer{
		Verdict:    sink.Retry,
		StatusCode: status,
		Err:        err,
		Health:     health,
		RetryAfter: after,
	}.WithProblem(problem)
}

// rejection is the answer to a 413 or a record-level 4xx. Two rejections are
// the same answer when status and sanitized body are equal.
func rejection(v sink.Verdict, serr *StatusError) sink.Answer {
	return sink.Answer{
		Verdict:    v,
		StatusCode: serr.StatusCode,
		Err:        serr,
		Same:       strconv.Itoa(serr.StatusCode) + "\x00" + serr.Body,
		Detail:     serr.Body,
	}.WithUniformProblem(uniformProblem(serr))
}
