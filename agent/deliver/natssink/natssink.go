// Package natssink delivers records to a NATS JetStream stream (SPEC §6.2):
// a sink of the delivery loop (agent/deliver), which decides what is sent
// when, retries, splits, bisects and dead-letters. This package publishes one
// batch of records and says what became of it in the vocabulary of
// agent/deliver/sink.
//
// # Messages
//
// Every record is one message on the subject
// {subject_prefix}.{agent_id}.{kind}.{business_id}.{outlet_id}, each token
// escaped (see [Subject]) so that a dot, a space or a wildcard in an id can
// never change the subject. The payload is the record's JSON (kind, key, seq,
// version, data); the headers are Nats-Msg-Id: {agent_id}:{seq} (the
// stream's de-duplication), Pwbi-Key, Pwbi-Seq and Pwbi-Version, and on the
// first message of each atomic batch Nats-Expected-Stream: {stream}, so that
// records captured by any other stream are refused instead of landing where
// this sink never looks (a later message of the batch captured elsewhere
// leaves a hole in the batch, which fails it). A record counts as delivered
// only on the stream's acknowledgement.
//
// # Order and exactly-once: the argument
//
// The stream is shared by hundreds of agents. Per agent, the records must be
// stored in seq order, each exactly once — across leader changes,
// reconnects, and outages longer than the stream's duplicate window, after
// which Nats-Msg-Id no longer de-duplicates anything. Publishing one record
// at a time and waiting for its acknowledgement would be simple and slow
// (one cluster round trip per record), so several records must be in flight
// at once. What happens to a window of in-flight publishes when one of them
// fails?
//
// With plain asynchronous publishes, a later record can be stored while an
// earlier one is not. On one connection the server handles messages in
// order and a stream leader stores them in order, so as long as nothing fails
// the order holds; but when the stream leader changes while a window is in
// flight, the messages that reach the old leader as it steps down (or reach
// a server with, for a moment, no route to any leader) fail or vanish, while
// the ones written right after them reach the new leader and are stored.
// The chaos test of this package saw exactly that (24 records lost, the 183
// behind them stored) when a leader was shut down under a window of 256. A
// stream refusing one message for its size (max_msg_size) while taking the
// next does the same. Such a gap cannot be repaired afterwards: the record
// that is missing can only be appended after the ones that overtook it.
// Detection is not enough; the gap must be impossible.
//
// So the records in flight are one JetStream atomic batch (NATS Server 2.12,
// stream setting allow_atomic): up to max_in_flight messages published back
// to back with Nats-Batch-Id and Nats-Batch-Sequence, the last with
// Nats-Batch-Commit. The stream leader stages them and stores all of them,
// contiguously and in order, on the commit — or none of them: a message lost
// on the way (the batch sequence has a hole), a leader change (the new leader
// does not know the batch), a refused message, a commit that never arrives
// (the batch is dropped after a timeout) all leave nothing stored. The first
// message of every batch carries Nats-Expected-Last-Subject-Sequence (the
// stream sequence of the agent's last message as the sink knows it) with
// Nats-Expected-Last-Subject-Sequence-Subject {prefix}.{agent_id}.>: the
// commit is refused unless the agent's last message is exactly the one the
// sink believes, so a batch can never follow anything but its predecessor,
// and a batch built on a stale view (a commit whose answer was lost but
// which did land) is refused instead of stored twice. Batches go one after
// the other; the next one starts when the commit is acknowledged. Only the
// commit has a reply subject; when a batch fails as incomplete (a message
// refused, say for its size), the same records are sent again with a reply
// subject on every message, whose answers name the message at fault. Measured
// on a 3-node R3 cluster, batches of 1000 drain as fast as a bare loop of
// asynchronous publishes of the same messages (docs/benchmarks.md): order
// costs nothing.
//
// What the stream holds for the agent is therefore always its records in seq
// order with no gap, except for records the stream refused as poison (which
// the loop dead-letters). When the outcome of a commit is unknown (timeout,
// disconnect, no answer), the sink marks its view stale and, before it
// publishes anything else — on the retry, after a reconnect, after a
// restart — re-learns what the stream holds (resync, resync.go): it reads,
// through the JetStream message-get API (answered by the stream leader, so
// never stale), the agent's messages after the last position it knows for
// sure, filtered by the subject {prefix}.{agent_id}.>, and takes their
// Pwbi-Seq headers as the truth. After a restart it knows no position: it
// reads the agent's last message (last-by-subject on that filter) and, when
// the batch to send reaches down to its Pwbi-Seq, finds by binary search the
// first message of the agent at or above the batch's first seq and reads
// from there (the Pwbi-Seqs increase along the agent's messages, so the
// search is exact). A record the stream holds is never published again,
// however long ago it was stored: exactly-once does not depend on the
// duplicate window, and a poison record that left a hole (dead-lettered, or
// still buffered after a crash) is told from a stored one. Nothing is lost by
// a crash of the agent either: the buffer removes records only after an
// acknowledgement of the whole batch (deliver.Source), and what was stored
// but not yet removed is found by the resync and skipped.
//
// Should a record ever be stored below the agent's highest seq (a record
// missing for being too large, stored after the operator raised the limit),
// it carries Pwbi-Max-Seq, the highest seq stored before it, and is counted
// in [Stats].OutOfOrder: the search above reads max(Pwbi-Seq, Pwbi-Max-Seq),
// which stays non-decreasing.
//
// A stream without allow_atomic (or a server before 2.12) is detected by the
// first batch after every resync, which holds a single record: the sink then
// publishes one record at a time, each conditional on its predecessor with
// the same expectation headers — gap-free and exactly-once as well, at one
// round trip per record — and logs a warning.
//
// # Answers
//
// All records stored (or found stored): sink.Accepted. A record refused for
// itself (message too large for the server or the stream, headers too
// large; atomicity means its whole batch was refused): sink.Rejected, so
// that the loop bisects down to it and
// dead-letters it, for this sink alone (Same is the stream's error code and
// description, so a stream that refuses every record is recognised as an
// endpoint failure). Everything else is sink.Retry with a Health and a plain
// Problem: offline for a lost connection, a timeout, a cluster without a
// leader, too many batches in flight on the stream; error for refused
// credentials, a permission violation (the user may not publish to its
// subjects, or read its stream), no stream capturing the subject, a subject
// captured by another stream, a full stream.
//
// Requires NATS Server 2.12 or later for atomic batches (2.11 for the
// one-at-a-time fallback). docs/nats.md has the stream definition and the
// per-agent permissions. Passwords and seeds never appear
// in an answer, an error, a Problem or a log. Every wait of the sink itself
// goes through the injected clockwork.Clock; nats.go keeps its own timers
// for pings and reconnects.
package natssink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/store"
)

// Defaults applied by New when a Config field is left zero.
const (
	DefaultSubjectPrefix = "pwbi"
	DefaultStream        = "PWBI"
	DefaultTimeout       = 30 * time.Second
	// DefaultMaxInFlight is the size of an atomic batch: the records in
	// flight at once. 1000 drains as fast as a bare asynchronous publish
	// loop on a 3-node cluster; 500 reaches 80-90 % of it
	// (docs/benchmarks.md).
	DefaultMaxInFlight = 1000
	// MaxMaxInFlight is the largest MaxInFlight accepted: NATS Server's
	// default max_batch_size.
	MaxMaxInFlight = 1000
)

// Config is the [nats] section of the config file plus the agent id.
type Config struct {
	// URLs are the NATS servers, e.g. "nats://nats1.example:4222" or
	// "tls://..."; nats.go also learns the cluster's other servers.
	// Empty means not configured: the loop keeps records buffered.
	URLs []string

	// Authentication: at most one of CredsFile (a NATS JWT and NKey seed,
	// the fleet standard), NKeySeedFile, or User with Password.
	CredsFile    string
	NKeySeedFile string
	User         string
	Password     string // never logged

	// TLS: TLSCAFile verifies the servers; TLSCertFile and TLSKeyFile,
	// together, are the client certificate.
	TLSCAFile   string
	TLSCertFile string
	TLSKeyFile  string

	// SubjectPrefix is the first token(s) of every subject (default
	// "pwbi"). Stream is the stream expected to capture the subjects
	// (default "PWBI").
	SubjectPrefix string
	Stream        string
	// CreateStream creates Stream (subjects {prefix}.>, one replica,
	// atomic batches allowed) when it does not exist. For demos and tests;
	// fleets have their operator define the stream (docs/nats.md).
	CreateStream bool

	// AgentID is the second subject token and part of every Nats-Msg-Id.
	AgentID string

	// Timeout bounds connecting and re-learning the stream, and then the
	// wait for the answer to each atomic batch once it is sent (default
	// 30s).
	Timeout time.Duration
	// MaxInFlight is the most records published before a commit is
	// acknowledged: the size of an atomic batch (default
	// DefaultMaxInFlight, at most MaxMaxInFlight).
	MaxInFlight int
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	return c
}

// Validate reports the first problem of c (after defaults), without
// repeating a secret. agent/config checks the [nats] section of the file
// with file and line; this is the same check for a Config built in code.
func (c Config) Validate() error {
	c = c.withDefaults()
	if len(c.URLs) == 0 {
		return errors.New("nats: no server url")
	}
	for i, u := range c.URLs {
		if err := CheckURL(u); err != nil {
			return fmt.Errorf("nats: url %d: %w", i+1, err)
		}
	}
	auth := 0
	for _, set := range []bool{c.CredsFile != "", c.NKeySeedFile != "", c.User != "" || c.Password != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return errors.New("nats: set only one of creds file, nkey seed file, or user and password")
	}
	if (c.User == "") != (c.Password == "") {
		return errors.New("nats: user and password go together")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("nats: tls cert file and tls key file go together")
	}
	if err := CheckSubjectPrefix(c.SubjectPrefix); err != nil {
		return fmt.Errorf("nats: subject prefix: %w", err)
	}
	if err := CheckStreamName(c.Stream); err != nil {
		return fmt.Errorf("nats: stream: %w", err)
	}
	if strings.TrimSpace(c.AgentID) == "" {
		return errors.New("nats: no agent id")
	}
	if c.MaxInFlight > MaxMaxInFlight {
		return fmt.Errorf("nats: max in flight must be at most %d", MaxMaxInFlight)
	}
	return nil
}

// CheckURL checks one server URL: nats://, tls://, ws:// or wss://, or a
// bare host:port, with a host. The error does not repeat the URL, which may
// carry credentials.
func CheckURL(s string) error {
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a valid URL")
	case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
		return errors.New("must start with nats://, tls://, ws:// or wss://")
	case u.Hostname() == "":
		return errors.New("must name a host, e.g. nats://nats.example:4222")
	case u.User != nil:
		return errors.New("must not contain a user name or password: credentials have their own keys")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("port must be a number from 1 to 65535")
		}
	}
	return nil
}

// CheckSubjectPrefix checks a subject prefix: one or more dot-separated
// tokens of printable ASCII, without wildcards.
func CheckSubjectPrefix(p string) error {
	if p == "" {
		return errors.New("must not be empty")
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" {
			return errors.New("must not have an empty token (two dots, or a dot at an end)")
		}
		if tok == "*" || tok == ">" {
			return errors.New("must not contain the wildcards * or >")
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c >= 0x7f {
				return errors.New("must be printable ASCII without spaces")
			}
		}
	}
	if strings.HasPrefix(p, "$") {
		return errors.New("must not start with $ (reserved by NATS)")
	}
	return nil
}

// CheckStreamName checks a JetStream stream name.
func CheckStreamName(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if len(s) > 255 {
		return errors.New("must be at most 255 bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(".*>/\\", c) >= 0 {
			return errors.New("must be printable ASCII without spaces, '.', '*', '>', '/' or '\\'")
		}
	}
	return nil
}

// Options are the sink's dependencies; all fields are optional.
type Options struct {
	// Clock drives the sink's own waits (attempt deadlines, waiting for a
	// reconnect).
	Clock clockwork.Clock
	// Logger receives structured logs; default: discarded.
	Logger *slog.Logger
	// Previous is the sink this one replaces after a hot reload. When both
	// would connect alike (same servers, credentials, TLS, stream,
	// subjects, agent, timeout and window), the new sink shares its
	// connection and what it knows of the stream; the caller still
	// closes Previous, which then closes nothing the new one uses.
	Previous *Sink
	// Version is sent as part of the connection name; default "dev".
	Version string
}

// Sink publishes batches to one JetStream stream with one configuration: a
// new configuration (hot reload) is a new Sink, handed to the loop with
// deliver.Forwarder.Update. Send is called by one goroutine at a time;
// Endpoint, Stats and Close are safe for concurrent use.
type Sink struct {
	cfg      Config
	endpoint string
	link     *link // shared with other Sinks of the same connection
	invalid  error // cfg's problem (Config.Validate), checked once by New
	clock    clockwork.Clock
	log      *slog.Logger

	closeOnce sync.Once
}

// New returns a sink for cfg. It does not connect: the first Send does.
// An invalid cfg (see Config.Validate) gives a sink that answers every Send
// with a Retry whose Problem says what is wrong; cfg without URLs gives a
// sink whose Endpoint is "" (the loop keeps records buffered).
func New(cfg Config, opts Options) *Sink {
	cfg = cfg.withDefaults()
	s := &Sink{cfg: cfg, endpoint: endpointID(cfg), invalid: cfg.Validate(), clock: opts.Clock, log: opts.Logger}
	if s.clock == nil {
		s.clock = clockwork.NewRealClock()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("sink", "nats")
	if len(cfg.URLs) == 0 {
		return s
	}
	key := linkKey(cfg)
	if p := opts.Previous; p != nil && p.link != nil && p.link.key == key && p.link.retain() {
		s.link = p.link
		return s
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	s.link = newLink(key, cfg, s.clock, s.log, version)
	return s
}

// endpointID is the identity Endpoint returns for cfg: "" without URLs,
// otherwise the identity (sink.Identity) of what decides where records go
// and as whom.
func endpointID(cfg Config) string {
	if len(cfg.URLs) == 0 {
		return ""
	}
	return sink.Identity(endpointParts(cfg)...)
}

func endpointParts(cfg Config) []string {
	parts := append([]string{strconv.Itoa(len(cfg.URLs))}, cfg.URLs...)
	return append(parts, cfg.CredsFile, cfg.NKeySeedFile, cfg.User, cfg.Password,
		cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile, cfg.SubjectPrefix, cfg.Stream,
		strconv.FormatBool(cfg.CreateStream), cfg.AgentID)
}

// linkKey is what two sinks must share to share a connection: the endpoint
// and the settings the connection is built with.
func linkKey(cfg Config) string {
	parts := append(endpointParts(cfg), cfg.Timeout.String(), strconv.Itoa(cfg.MaxInFlight))
	return sink.Identity(parts...)
}

// Endpoint identifies where and as whom the sink delivers: equal for two
// sinks with the same servers, credentials, TLS files, stream, subject prefix
// and agent id, different otherwise, and "" when no URL is configured. It is
// an opaque digest: never a secret, but meaningless to a person.
func (s *Sink) Endpoint() string { return s.endpoint }

// Send publishes batch (records in strictly increasing seq order) and says
// what became of it. ctx ending abandons the attempt (sink.Canceled); the
// records published so far are found by the next attempt's resync.
func (s *Sink) Send(ctx context.Context, batch []store.Record) sink.Answer {
	if len(batch) == 0 {
		return sink.Answer{Verdict: sink.Accepted}
	}
	if s.link == nil {
		return retry(errors.New("nats: no server url"), sink.HealthError, sink.Say("HealthNatsNoURL", nil))
	}
	if err := s.invalid; err != nil {
		return retry(err, sink.HealthError, sink.Say("HealthNatsInvalid", map[string]any{"Error": err.Error()}))
	}
	return s.link.send(ctx, s.cfg, batch)
}

// Stats returns the sink's counters (shared with the sinks it shares a
// connection with).
func (s *Sink) Stats() Stats {
	if s.link == nil {
		return Stats{}
	}
	return s.link.stats()
}

// Close releases the sink's connection, unless a newer sink shares it. A
// Send in flight fails (sink.Retry). Close is idempotent.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		if s.link != nil {
			s.link.release()
		}
	})
	return nil
}

// Stats are counters of what the sink did, for metrics and tests.
type Stats struct {
	// Published counts records acknowledged as newly stored.
	Published uint64
	// Duplicates counts records the stream acknowledged as already stored
	// (Nats-Msg-Id within the duplicate window).
	Duplicates uint64
	// Skipped counts records not published because a resync found them
	// stored.
	Skipped uint64
	// Resyncs counts the times the sink re-learnt what the stream holds.
	Resyncs uint64
	// OutOfOrder counts records stored after records with a higher seq
	// (a record refused as too large, stored after the limit was raised;
	// see the package doc).
	OutOfOrder uint64
	// Connected reports whether the connection is up now.
	Connected bool
}

// retry is a Retry answer; its Problem is problem, cut to maxProblem (by
// its "Error" parameter when it ends the sentence).
func retry(err error, health sink.Health, problem sink.Message) sink.Answer {
	return sink.Answer{Verdict: sink.Retry, Err: err, Health: health}.WithProblem(problem.Fit(maxProblem, "Error"))
}

// maxProblem bounds a Problem; maxSnippet an extract of a server's answer.
const (
	maxProblem = 400
	maxSnippet = 300
)
