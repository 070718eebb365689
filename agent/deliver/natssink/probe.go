package natssink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/store"
)

// A probe is the technician's check of the NATS side (`pwbi-agent doctor`):
// it connects as the sink would (same options: credentials, TLS, inbox
// prefix), looks the stream up and reads the agent's last message, and
// publishes nothing.

// ProbeResult is what Probe learnt.
type ProbeResult struct {
	// Server and ServerVersion are the name and version of the server the
	// probe connected to.
	Server        string
	ServerVersion string
	// Stream is the stream looked up (Config.Stream after defaults).
	Stream string
	// Described reports whether the stream's definition could be read
	// ($JS.API.STREAM.INFO). The per-agent user of docs/nats.md may not
	// read it: then Replicas, Atomic and the subjects check are unknown,
	// and only the agent's last message tells that the stream answers.
	Described bool
	// Replicas is the stream's replica count (Described only).
	Replicas int
	// Atomic reports whether the stream allows atomic batches (Described
	// only); without them the sink publishes one record at a time.
	Atomic bool
	// Missing reports that the stream does not exist and CreateStream is
	// set: the sink creates it when it first connects.
	Missing bool
	// LastSeq is the highest record seq the stream holds for this agent
	// (0: none), read as the sink reads it after a restart.
	LastSeq uint64
}

// ProbeKind classifies a failed probe for the one who reads it.
type ProbeKind int

const (
	// ProbeFailed is any other failure: refused credentials, a missing
	// stream, missing permissions… ProbeError.Problem says which.
	ProbeFailed ProbeKind = iota
	// ProbeUnreachable: no server took the connection (network, DNS,
	// firewall, servers down); ProbeError.Cause says why.
	ProbeUnreachable
	// ProbeNoAnswer: connected, but the stream did not answer in time (no
	// leader: servers restarting, the cluster down, a leaf node cut off).
	ProbeNoAnswer
	// ProbeNotCaptured: the stream's subjects leave out some of the
	// agent's subjects; ProbeError.Subject is the first of them.
	ProbeNotCaptured
)

// ProbeError is why a probe failed. Its texts never hold the password.
type ProbeError struct {
	Kind ProbeKind
	// Problem is the sentence the sink's status would show for it (a
	// message of the health catalogue).
	Problem sink.Message
	// Cause is the error in a few words, without a secret (for
	// ProbeUnreachable, what the network said).
	Cause string
	// Subject is, for ProbeNotCaptured, the agent's subject pattern the
	// stream does not capture ({prefix}.{agent}.{kind}.*.*).
	Subject string
	err     error
}

func (e *ProbeError) Error() string { return "nats probe: " + e.Cause }
func (e *ProbeError) Unwrap() error { return e.err }

// Probe checks that a sink of cfg can deliver: it connects with the sink's
// own options, reads the stream's definition (its subjects must capture
// every subject the agent publishes to, {prefix}.{agent}.{kind}.*.*) when the
// user may, and reads the agent's last message in the stream as the sink
// does after a restart. It never publishes a record nor creates a stream;
// the connection is closed before it returns. version is the agent's,
// for the connection name. The result holds what was learnt even when the
// error is not nil.
func Probe(ctx context.Context, cfg Config, version string) (ProbeResult, error) {
	cfg = cfg.withDefaults()
	res := ProbeResult{Stream: cfg.Stream}
	if err := cfg.Validate(); err != nil {
		return res, &ProbeError{Problem: sink.Say("HealthNatsInvalid", map[string]any{"Error": err.Error()}),
			Cause: err.Error(), err: err}
	}
	if version == "" {
		version = "dev"
	}
	l := newLink(linkKey(cfg), cfg, clockwork.NewRealClock(), slog.New(slog.DiscardHandler), version)
	fail := func(kind ProbeKind, err error) (ProbeResult, error) {
		_, _, problem := l.classify(cfg, err, "")
		return res, &ProbeError{Kind: kind, Problem: problem, Cause: sink.Snippet([]byte(err.Error()), cfg.Password, 200), err: err}
	}

	opts, err := l.connOptions(cfg)
	if err != nil {
		return fail(ProbeFailed, err)
	}
	nc, err := dialContext(ctx, cfg, opts)
	if err != nil {
		kind := ProbeFailed
		if _, health, _ := l.classify(cfg, err, ""); health == sink.HealthOffline {
			kind = ProbeUnreachable
		}
		return fail(kind, err)
	}
	defer nc.Close()
	l.nc = nc
	res.Server, res.ServerVersion = nc.ConnectedServerName(), nc.ConnectedServerVersion()

	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	// The stream's definition: the per-agent user of docs/nats.md may not
	// read it, which is no fault.
	var info struct {
		Error   *jetstream.APIError    `json:"error"`
		Config  jetstream.StreamConfig `json:"config"`
		Cluster *jetstream.ClusterInfo `json:"cluster"`
	}
	err = l.probeRequest(rctx, func(ctx context.Context) error {
		resp, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.INFO."+cfg.Stream, nil)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(resp.Data, &info); err != nil {
			return fmt.Errorf("%w: unreadable stream info answer", jetstream.ErrInvalidJSAck)
		}
		if info.Error != nil {
			return info.Error
		}
		return nil
	})
	switch {
	case err == nil:
		res.Described = true
		res.Replicas = max(info.Config.Replicas, 1)
		res.Atomic = info.Config.AllowAtomicPublish
		if subj := uncaptured(info.Config.Subjects, cfg.SubjectPrefix, cfg.AgentID); subj != "" {
			e := fmt.Errorf("stream %s does not capture %s", cfg.Stream, subj)
			return res, &ProbeError{Kind: ProbeNotCaptured, Subject: subj, Cause: e.Error(), err: e,
				Problem: sink.Say("HealthNatsNotCaptured", map[string]any{"Subject": subj, "Stream": cfg.Stream, "Prefix": cfg.SubjectPrefix})}
		}
		if info.Config.Sealed {
			e := fmt.Errorf("stream %s is sealed", cfg.Stream)
			return res, &ProbeError{Problem: sink.Say("HealthNatsSealed", map[string]any{"Stream": cfg.Stream}), Cause: e.Error(), err: e}
		}
	case apiCode(err) == codeStreamNotFound:
		if cfg.CreateStream {
			res.Missing = true
			return res, nil
		}
		return fail(ProbeFailed, err)
	case isInfoDenied(err, cfg.Stream):
		// Not the agent's to read: the message get below still tells
		// that the stream answers.
	case errors.Is(err, nats.ErrNoResponders):
		// The JetStream API answers every account that has JetStream.
		e := fmt.Errorf("%w: JetStream does not answer", err)
		return res, &ProbeError{Problem: sink.Say("HealthNatsNoJetStream", nil), Cause: e.Error(), err: e}
	case rctx.Err() != nil:
		return res, noAnswer(cfg, err)
	default:
		return fail(ProbeFailed, err)
	}

	// The agent's last message, as the sink reads it after a restart.
	var last storedMsg
	err = l.probeRequest(rctx, func(ctx context.Context) error {
		var err error
		last, err = l.getMsg(ctx, cfg, 0)
		return err
	})
	var fe *foreignError
	switch {
	case err == nil:
		res.LastSeq = last.level
	case errors.Is(err, errNotFound): // nothing of this agent's yet: LastSeq 0
	case errors.As(err, &fe):
		return res, &ProbeError{Problem: sink.Say("HealthNatsForeign", map[string]any{"Stream": cfg.Stream, "Subjects": l.filter}),
			Cause: err.Error(), err: err}
	case apiCode(err) == codeStreamNotFound && cfg.CreateStream:
		res.Missing = true
	case errors.Is(err, nats.ErrNoResponders), rctx.Err() != nil:
		return res, noAnswer(cfg, err)
	default:
		return fail(ProbeFailed, err)
	}
	return res, nil
}

// noAnswer is the ProbeError of a stream that did not answer.
func noAnswer(cfg Config, err error) *ProbeError {
	return &ProbeError{Kind: ProbeNoAnswer, Problem: sink.Say("HealthNatsNoLeader", map[string]any{"Stream": cfg.Stream}),
		Cause: sink.Snippet([]byte(err.Error()), cfg.Password, 200), err: err}
}

// dialContext connects with opts, giving up when ctx ends (a connection
// that comes later is closed).
func dialContext(ctx context.Context, cfg Config, opts []nats.Option) (*nats.Conn, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(joinURLs(cfg.URLs), opts...)
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		return r.nc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, errDialTimeout
	}
}

// probeRequest runs do, ending it early with the permission violation the
// server reports meanwhile: a request the user may not publish gets no
// answer, only an asynchronous error.
func (l *link) probeRequest(ctx context.Context, do func(context.Context) error) error {
	since := l.asyncN.Load()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- do(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				if perr := l.asyncSince(since); perr != nil {
					return perr
				}
			}
			return err
		case <-l.asyncC:
			if perr := l.asyncSince(since); perr != nil {
				cancel()
				<-done
				return perr
			}
		}
	}
}

// isInfoDenied reports whether err is the server refusing this user the
// stream info request.
func isInfoDenied(err error, stream string) bool {
	return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), "$JS.API.STREAM.INFO."+stream)
}

// agentKinds are the record kinds an agent publishes (the third subject
// token).
var agentKinds = []string{store.KindTransaction, store.KindProduct, store.KindMokkaOrder}

// uncaptured returns the first of the agent's subject patterns, one per
// record kind ({prefix}.{agent}.{kind}.*.*, see Subject), that none of the
// stream's subjects captures whole, or "" when they capture them all.
func uncaptured(streamSubjects []string, prefix, agentID string) string {
	for _, kind := range agentKinds {
		want := prefix + "." + Token(agentID) + "." + Token(kind) + ".*.*"
		captured := false
		for _, s := range streamSubjects {
			if subjectCovers(s, want) {
				captured = true
				break
			}
		}
		if !captured {
			return want
		}
	}
	return ""
}

// subjectCovers reports whether every subject matching pattern want also
// matches the stream subject have: token by token, a '>' in have covers the
// rest (one token or more), a '*' in have covers any one token of want (a
// '*' included), a literal only the same literal; a '>' in want is covered
// only by a '>' in have.
func subjectCovers(have, want string) bool {
	if have == "" || want == "" {
		return false
	}
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i, ht := range h {
		if ht == "" {
			return false
		}
		if ht == ">" {
			return i == len(h)-1 && i < len(w)
		}
		if i >= len(w) {
			return false
		}
		wt := w[i]
		switch {
		case wt == "" || wt == ">":
			return false
		case ht == "*":
		case ht != wt || wt == "*":
			return false
		}
	}
	return len(h) == len(w)
}
