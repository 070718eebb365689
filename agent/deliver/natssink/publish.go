package natssink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/store"
)

var errAttemptTimeout = errors.New("attempt timed out")

// maxStaleRetries bounds the resyncs one attempt makes when the stream
// refuses a batch because the agent's last message is not the one the sink
// knew (another resync, then publishing again, is the fix).
const maxStaleRetries = 3

// JetStream error codes this package acts on (nats-server errors.json).
const (
	codeMsgTooLarge          = 10054 // message size exceeds maximum allowed
	codeStreamNotFound       = 10059
	codeStreamNotMatch       = 10060 // Nats-Expected-Stream differs
	codeWrongLastSeq         = 10071
	codeStoreFailed          = 10077
	codeHeaderTooLarge       = 10097
	codeSealed               = 10109
	codeWrongLastSeqConst    = 10164
	codeAtomicDisabled       = 10174
	codeAtomicIncomplete     = 10176
	codeAtomicTooLarge       = 10199
	codeAtomicDuplicate      = 10201 // a message of the batch is stored already
	codeAtomicTooManyBatches = 10210
)

// withTimeout is ctx ending after d on clock as well, with cause
// errAttemptTimeout.
func withTimeout(ctx context.Context, clock clockwork.Clock, d time.Duration) (context.Context, func()) {
	c, cancel := context.WithCancelCause(ctx)
	timer := clock.AfterFunc(d, func() { cancel(errAttemptTimeout) })
	return c, func() {
		timer.Stop()
		cancel(nil)
	}
}

// send is Sink.Send: connect, resync if needed, publish.
func (l *link) send(ctx context.Context, cfg Config, batch []store.Record) sink.Answer {
	l.mu.Lock()
	defer l.mu.Unlock()

	// Connecting and re-learning the position get cfg.Timeout together;
	// each batch then gets it for its answer (publishBatch), so that a
	// slow uplink sending a large batch does not time out.
	actx, cancel := withTimeout(ctx, l.clock, cfg.Timeout)
	defer cancel()

	if err := l.connect(actx, cfg); err != nil {
		return l.failed(ctx, cfg, err)
	}
	if err := l.waitConnected(actx); err != nil {
		return l.failed(ctx, cfg, err)
	}
	if l.synced && l.epoch.Load() != l.syncedEpoch {
		// A reconnect since the view was learnt: a commit whose answer
		// was lost may have landed. Read what came after the last
		// message the sink knows.
		l.trouble(l.tailStream)
	}
	for try := 0; ; try++ {
		if !l.synced || batch[0].Seq < l.floor {
			if err := l.resync(actx, cfg, batch[0].Seq); err != nil {
				if ctx.Err() != nil {
					return sink.Answer{Verdict: sink.Canceled}
				}
				if errors.Is(context.Cause(actx), errAttemptTimeout) {
					err = fmt.Errorf("%w: %w", errAttemptTimeout, err)
				}
				return l.resyncAnswer(cfg, err)
			}
		}
		a, stale := l.publish(ctx, cfg, batch)
		if !stale || try+1 >= maxStaleRetries {
			return a
		}
		l.log.Info("Stream changed under the sink: position learnt again")
	}
}

// failed is the answer to a failure before anything was published.
func (l *link) failed(ctx context.Context, cfg Config, err error) sink.Answer {
	if ctx.Err() != nil {
		return sink.Answer{Verdict: sink.Canceled}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = errDialTimeout
	}
	if l.nc != nil && !l.nc.IsConnected() {
		// Say why the connection is down: the last error nats.go saw.
		if p := l.asyncErr.Load(); p != nil && p.err != nil {
			err = fmt.Errorf("%w (last error: %w)", err, p.err)
		} else if le := l.nc.LastError(); le != nil {
			err = fmt.Errorf("%w (last error: %w)", err, le)
		}
	}
	code, health, problem := l.classify(cfg, err, "")
	return retryAnswer(code, fmt.Errorf("connect to NATS: %w", err), health, problem)
}

// batchFailure is why an atomic batch was not committed.
type batchFailure struct {
	rec     store.Record // the record the failure is about (the first one if none)
	err     error
	poison  bool // refused for what rec is
	unknown bool // the batch may have been committed (no answer to the commit)
}

// publish publishes the records of batch the stream does not hold, as
// atomic batches of at most cfg.MaxInFlight records, one after the other.
// stale reports that the stream refused a batch because the agent's last
// message was not the one the sink knew: the caller resyncs and calls again.
func (l *link) publish(ctx context.Context, cfg Config, batch []store.Record) (a sink.Answer, stale bool) {
	todo := make([]store.Record, 0, len(batch))
	for _, r := range batch {
		if ok, _ := l.stored(r.Seq); ok {
			l.st.skipped.Add(1)
			continue
		}
		todo = append(todo, r)
	}
	l.forgetBelow(batch[0].Seq)
	since := l.asyncN.Load()
	for len(todo) > 0 {
		n := min(len(todo), cfg.MaxInFlight)
		if l.probe {
			// The first batch after a resync is one record: it shows
			// whether the stream takes atomic batches at all.
			n = 1
		}
		chunk := todo[:n]
		before := l.tailStream
		var ack *pubAck
		var f *batchFailure
		if l.atomic || l.probe {
			ack, f = l.publishBatch(ctx, cfg, chunk, false)
			if f != nil && apiCode(f.err) == codeAtomicIncomplete && !f.unknown {
				// A message of the batch was refused, or lost on the
				// way; only the commit had a reply, so say which: the
				// same records again, every message with a reply
				// (nothing was stored, and the expectation still
				// holds).
				ack, f = l.publishBatch(ctx, cfg, chunk, true)
			}
		} else {
			ack, f = l.publishOne(ctx, cfg, chunk[0])
			n, chunk = 1, chunk[:1]
		}
		if f == nil && l.probe && ack.BatchID == "" {
			// A server without atomic batches took the probe as a
			// plain publish: one record, stored in order, answered.
			l.log.Warn("NATS stream takes no atomic batches: publishing one record at a time", "stream", cfg.Stream)
			l.atomic, l.probe = false, false
		}
		if f == nil && (l.atomic || l.probe) && (ack.BatchID == "" || ack.BatchSize != uint64(n)) {
			f = &batchFailure{rec: chunk[0], err: fmt.Errorf("%w: commit answer for %d records counts %d", jetstream.ErrInvalidJSAck, n, ack.BatchSize), unknown: true}
		}
		if f != nil {
			if f.unknown {
				l.trouble(before)
			}
			if apiCode(f.err) == codeAtomicDisabled {
				l.log.Warn("NATS stream does not allow atomic batches: publishing one record at a time", "stream", cfg.Stream)
				l.atomic, l.probe = false, false
				continue
			}
			if ctx.Err() != nil {
				return sink.Answer{Verdict: sink.Canceled}, false
			}
			if isStale(f.err) {
				l.trouble(before)
				return l.troubleAnswer(cfg, f), true
			}
			if f.poison {
				return l.rejection(cfg, f), false
			}
			if errors.Is(f.err, errAttemptTimeout) {
				// Answers that never came because of a permission
				// violation: say so rather than "no answer".
				if err := l.asyncSince(since); err != nil {
					f.err = err
				}
			}
			return l.troubleAnswer(cfg, f), false
		}
		if l.probe {
			l.atomic, l.probe = true, false
		}
		l.committed(chunk, ack)
		todo = todo[n:]
	}
	return sink.Answer{Verdict: sink.Accepted}, false
}

// committed takes the acknowledgement of chunk: all its records are stored,
// the last one at ack.Sequence.
func (l *link) committed(chunk []store.Record, ack *pubAck) {
	for _, r := range chunk {
		if r.Seq < l.tailSeq {
			// Below the highest stored: a record that was missing (a
			// poison record the stream now takes) is stored out of
			// order.
			l.st.outOfOrder.Add(1)
			l.log.Warn("Record stored out of order", "seq", r.Seq, "max_seq", l.tailSeq)
		}
		l.remember(r.Seq)
	}
	last := chunk[len(chunk)-1].Seq
	l.tailSeq = max(l.tailSeq, last)
	if ack.Duplicate {
		// Stored earlier (Nats-Msg-Id within the duplicate window):
		// ack.Sequence is the original's position.
		l.st.duplicates.Add(uint64(len(chunk)))
		return
	}
	l.st.published.Add(uint64(len(chunk)))
	l.tailStream = max(l.tailStream, ack.Sequence)
}

// batchReply is one answer to a message of the current batch.
type batchReply struct {
	i   int // 1-based position in the batch
	msg *nats.Msg
}

// publishBatch publishes chunk as one atomic batch, the last message with
// Nats-Batch-Commit. The first carries the expectation of the agent's last
// message, and Nats-Expected-Stream (a later message captured by another
// stream would leave a hole in the batch, which fails it). Nothing of the
// batch is stored unless the commit is acknowledged. Only the commit has a
// reply subject, unless every is set: then every message has one (an empty
// answer says it is staged, an error says why not, and the rest of a doomed
// batch is not sent) — the server's work for a reply to each message costs
// about a tenth of the throughput, so it is kept for finding which message
// a failed batch could not take.
func (l *link) publishBatch(ctx context.Context, cfg Config, chunk []store.Record, every bool) (*pubAck, *batchFailure) {
	id := nuid.Next()
	n := len(chunk)
	replies := make(chan batchReply, n+1)
	b := l.batchNo.Add(1)
	l.current.Store(&currentBatch{no: b, c: replies})
	defer l.current.Store(nil)
	prefix := l.inbox + "." + strconv.FormatUint(b, 10) + "."

	since := l.asyncN.Load()
	var (
		sent, answered int
		awaited        int // messages sent with a reply subject
		ack            *pubAck
		first          *batchFailure // the failure with the lowest position so far
		firstAt        = n + 1
	)
	note := func(i int, f *batchFailure) {
		if i < firstAt {
			first, firstAt = f, i
		}
	}
	take := func(rp batchReply) {
		answered++
		if rp.i == n {
			a, f := parseAck(rp.msg, chunk[n-1])
			if f != nil {
				note(n, f)
			} else {
				ack = a
			}
			return
		}
		if f := l.judgeReply(rp, chunk); f != nil {
			note(rp.i, f)
		}
	}
	for i, r := range chunk {
		if first != nil {
			break
		}
		if ctx.Err() != nil {
			note(i+1, &batchFailure{rec: r, err: context.Canceled})
			break
		}
		m := l.builder.build(cfg, r, l.maxSeqFor(r))
		if i == 0 {
			expectTail(m, l.filter, l.tailStream)
		} else {
			delete(m.Header, hdrExpectedStream)
		}
		m.Header[hdrBatchID] = []string{id}
		m.Header[hdrBatchSeq] = []string{strconv.Itoa(i + 1)}
		if i == n-1 {
			m.Header[hdrBatchCommit] = []string{"1"}
		}
		if every || i == n-1 {
			m.Reply = prefix + strconv.Itoa(i+1)
			awaited++
		}
		if err := l.nc.PublishMsg(m); err != nil {
			if m.Reply != "" {
				awaited--
			}
			// Not sent: the batch cannot be committed.
			note(i+1, &batchFailure{rec: r, err: err, poison: isPoison(err)})
			break
		}
		sent++
		// Take the answers that are in already, to stop early on an
		// error instead of sending the rest of a doomed batch.
		for drained := false; !drained; {
			select {
			case rp := <-replies:
				take(rp)
			default:
				drained = true
			}
		}
	}
	wctx, cancel := withTimeout(ctx, l.clock, cfg.Timeout)
	defer cancel()
	// Wait for the commit's acknowledgement, or, when the batch failed,
	// for an answer to every message sent with a reply subject: the
	// failure with the lowest position is the cause (the ones after it
	// only say the batch is incomplete).
	for ack == nil && answered < awaited {
		select {
		case rp := <-replies:
			take(rp)
		case <-l.asyncC:
			if err := l.asyncSince(since); err != nil && first == nil {
				// The server dropped a message the user may not
				// publish, or cannot deliver the answers: they will
				// not come.
				return nil, &batchFailure{rec: chunk[0], err: err, unknown: sent == n && first == nil}
			}
		case <-wctx.Done():
			if first == nil {
				// No answer to the commit: it may have been stored.
				first = &batchFailure{rec: chunk[0], err: errAttemptTimeout, unknown: sent == n}
			}
			return nil, first
		}
	}
	if first != nil {
		return nil, first
	}
	if ack == nil {
		return nil, &batchFailure{rec: chunk[0], err: fmt.Errorf("%w: no answer to the commit", jetstream.ErrInvalidJSAck), unknown: true}
	}
	return ack, nil
}

// publishOne publishes r alone, without batch headers, conditional on the
// agent's last message: the fallback for a stream without atomic batches,
// gap-free and slow (one round trip per record).
func (l *link) publishOne(ctx context.Context, cfg Config, r store.Record) (*pubAck, *batchFailure) {
	m := message(cfg, r, l.maxSeqFor(r))
	expectTail(m, l.filter, l.tailStream)
	wctx, cancel := withTimeout(ctx, l.clock, cfg.Timeout)
	defer cancel()
	resp, err := l.nc.RequestMsgWithContext(wctx, m)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, &batchFailure{rec: r, err: err}
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			err = errAttemptTimeout
		}
		return nil, &batchFailure{rec: r, err: err, poison: isPoison(err), unknown: !isPoison(err)}
	}
	return parseAck(resp, r)
}

// maxSeqFor is the Pwbi-Max-Seq of r: the highest stored seq when r is
// below it (stored out of order), else 0.
func (l *link) maxSeqFor(r store.Record) uint64 {
	if r.Seq < l.tailSeq {
		return l.tailSeq
	}
	return 0
}

// judgeReply reads the answer to an intermediate message: nil when it was
// staged (an empty answer), else why not.
func (l *link) judgeReply(rp batchReply, chunk []store.Record) *batchFailure {
	rec := chunk[rp.i-1]
	if len(rp.msg.Data) == 0 {
		if rp.msg.Header.Get("Status") == "503" {
			return &batchFailure{rec: rec, err: nats.ErrNoResponders}
		}
		return nil
	}
	_, f := parseAck(rp.msg, rec)
	if f == nil {
		// An acknowledgement for a message that is not the commit:
		// the server ignored the batch headers.
		return &batchFailure{rec: rec, err: fmt.Errorf("%w: a message of the batch was stored alone", jetstream.ErrInvalidJSAck), unknown: true}
	}
	return f
}

// parseAck reads a JetStream publish answer to the message of rec.
func parseAck(m *nats.Msg, rec store.Record) (*pubAck, *batchFailure) {
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		return nil, &batchFailure{rec: rec, err: nats.ErrNoResponders}
	}
	var r struct {
		Error *jetstream.APIError `json:"error"`
		pubAck
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return nil, &batchFailure{rec: rec, err: fmt.Errorf("%w: %s", jetstream.ErrInvalidJSAck, sink.Snippet(m.Data, "", 100)), unknown: true}
	}
	if r.Error != nil {
		return nil, &batchFailure{rec: rec, err: r.Error, poison: isPoison(r.Error)}
	}
	if r.Stream == "" {
		return nil, &batchFailure{rec: rec, err: jetstream.ErrInvalidJSAck, unknown: true}
	}
	return &r.pubAck, nil
}

// pubAck is a JetStream publish acknowledgement; BatchID and BatchSize are
// set for a committed atomic batch.
type pubAck struct {
	Stream    string `json:"stream"`
	Sequence  uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate,omitempty"`
	BatchID   string `json:"batch,omitempty"`
	BatchSize uint64 `json:"count,omitempty"`
}

// isPoison reports whether err refuses a message for what it is: larger
// than the server's max_payload or the stream's max_msg_size, or headers
// too large.
func isPoison(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	switch apiCode(err) {
	case codeMsgTooLarge, codeHeaderTooLarge:
		return true
	case codeStoreFailed:
		var ae *jetstream.APIError
		errors.As(err, &ae)
		return strings.Contains(strings.ToLower(ae.Description), "message too large")
	}
	return false
}

// isStale reports whether err is the stream refusing a batch because the
// agent's last message is not the one the sink expected, or because a
// message of it is stored already.
func isStale(err error) bool {
	switch apiCode(err) {
	case codeWrongLastSeq, codeWrongLastSeqConst, codeAtomicDuplicate:
		return true
	}
	return false
}

// apiCode is the JetStream error code of err, or 0.
func apiCode(err error) int {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return int(ae.ErrorCode)
	}
	return 0
}

// asyncSince returns the last permission violation the server reported
// after async error number n, or nil.
func (l *link) asyncSince(n uint64) error {
	if p := l.asyncErr.Load(); p != nil && p.n > n && errors.Is(p.err, nats.ErrPermissionViolation) {
		return p.err
	}
	return nil
}

// rejection is the Rejected answer to a record refused for itself.
func (l *link) rejection(cfg Config, f *batchFailure) sink.Answer {
	desc := sink.Snippet([]byte(f.err.Error()), cfg.Password, maxSnippet)
	code := apiCode(f.err)
	if errors.Is(f.err, nats.ErrMaxPayload) {
		desc = fmt.Sprintf("message larger than the server's max_payload (%d bytes)", l.nc.MaxPayload())
	}
	return sink.Answer{
		Verdict:    sink.Rejected,
		StatusCode: code,
		Err:        fmt.Errorf("stream %s refused record %d: %s", cfg.Stream, f.rec.Seq, desc),
		Same:       strconv.Itoa(code) + "\x00" + desc,
		Detail:     desc,
	}.WithUniformProblem(sink.Say("HealthNatsRefusesAll", map[string]any{"Stream": cfg.Stream, "Error": desc}))
}

// troubleAnswer is the Retry of an attempt whose failure is not about the
// record.
func (l *link) troubleAnswer(cfg Config, f *batchFailure) sink.Answer {
	subject := Subject(cfg.SubjectPrefix, cfg.AgentID, f.rec)
	err := f.err
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		err = l.noResponders(cfg)
	}
	code, health, problem := l.classify(cfg, err, subject)
	return retryAnswer(code, fmt.Errorf("publish record %d: %w", f.rec.Seq, err), health, problem)
}

// errNoLeader and errNotCaptured refine a "no responders" to a publish.
var (
	errNoLeader    = errors.New("no responders: the stream has no leader right now")
	errNotCaptured = errors.New("no responders: no stream captures the subject")
)

// noResponders tells why a publish found no stream: the stream answers a
// read (it exists and has a leader, so it does not capture the subject), says
// it does not exist, or does not answer (no leader: an election or a
// cluster down).
func (l *link) noResponders(cfg Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), min(cfg.Timeout, 2*time.Second))
	defer cancel()
	_, err := l.getMsg(ctx, cfg, 0)
	switch {
	case err == nil, errors.Is(err, errNotFound):
		return errNotCaptured
	case apiCode(err) == codeStreamNotFound:
		return err
	}
	return errNoLeader
}

// classify maps an error to the status code for metrics, the health and the
// Problem sentence for a person.
func (l *link) classify(cfg Config, err error, subject string) (code int, health sink.Health, problem sink.Message) {
	code = apiCode(err)
	msg := sink.Snippet([]byte(err.Error()), cfg.Password, 160)
	lower := strings.ToLower(err.Error())
	say := func(id string, kv ...string) sink.Message {
		params := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			params[kv[i]] = kv[i+1]
		}
		return sink.Say(id, params)
	}
	stream := cfg.Stream
	switch {
	case errors.Is(err, nats.ErrAuthorization) || strings.Contains(lower, "authorization violation"):
		return code, sink.HealthError, say("HealthNatsAuth")
	case errors.Is(err, nats.ErrAuthExpired) || strings.Contains(lower, "authentication expired") || strings.Contains(lower, "user authentication revoked"):
		return code, sink.HealthError, say("HealthNatsAuthExpired")
	case errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(lower, "permissions violation"):
		return code, sink.HealthError, say("HealthNatsPermission", "Error", msg)
	case strings.Contains(lower, "x509") || strings.Contains(lower, "tls:") || strings.Contains(lower, "certificate"):
		return code, sink.HealthError, say("HealthNatsTLS", "Error", msg)
	case strings.Contains(lower, "read nkey seed") || strings.Contains(lower, "no such file") || strings.Contains(lower, "permission denied") ||
		strings.Contains(lower, "nkey") || strings.Contains(lower, "jwt"):
		return code, sink.HealthError, say("HealthNatsCredsFile", "Error", msg)
	case errors.Is(err, errNotCaptured):
		return 503, sink.HealthError, say("HealthNatsNotCaptured", "Subject", subject, "Stream", stream, "Prefix", cfg.SubjectPrefix)
	case errors.Is(err, errNoLeader):
		return 503, sink.HealthOffline, say("HealthNatsNoLeader", "Stream", stream)
	case errors.Is(err, errAttemptTimeout), errors.Is(err, nats.ErrTimeout):
		return code, sink.HealthOffline, say("HealthNatsTimeout", "Timeout", cfg.Timeout.String())
	case errors.Is(err, errDialTimeout), errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, errClosed):
		return code, sink.HealthOffline, say("HealthNatsUnreachable", "Error", msg)
	}
	switch code {
	case codeStreamNotFound:
		return code, sink.HealthError, say("HealthNatsNoStream", "Stream", stream)
	case codeStreamNotMatch:
		return code, sink.HealthError, say("HealthNatsOtherStream", "Subject", subject, "Stream", stream, "Prefix", cfg.SubjectPrefix)
	case codeAtomicTooLarge:
		return code, sink.HealthError, say("HealthNatsBatchTooLarge", "Error", msg)
	case codeAtomicTooManyBatches:
		return code, sink.HealthOffline, say("HealthNatsTooManyBatches", "Stream", stream)
	case codeWrongLastSeq, codeWrongLastSeqConst, codeAtomicDuplicate, codeAtomicIncomplete,
		10163, 10158, 10008, 10004, 10009:
		// The stream changed under the sink, a batch lost a message on
		// the way, or the cluster is electing a leader: retried.
		return code, sink.HealthOffline, say("HealthNatsBusy", "Stream", stream, "Error", msg)
	case codeStoreFailed, 10047, 10028, 10023, 10002, 10053:
		return code, sink.HealthError, say("HealthNatsStreamFull", "Stream", stream, "Error", msg)
	case codeSealed:
		return code, sink.HealthError, say("HealthNatsSealed", "Stream", stream)
	case 10039, 10076:
		return code, sink.HealthError, say("HealthNatsNoJetStream")
	}
	if code != 0 {
		return code, sink.HealthError, say("HealthNatsRefused", "Stream", stream, "Error", msg)
	}
	return code, sink.HealthOffline, say("HealthNatsFailed", "Error", msg)
}
