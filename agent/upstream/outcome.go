package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/pwbi/edge-agent/store"
)

// Telling poison records from an upstream that refuses everything.
//
// A record-level rejection (a 4xx of classRejected) of a batch of several
// records bisects it; a 413 just splits it. A single record rejected (a 4xx,
// or a 413 of one record) may be poison, to be dead-lettered so that the
// rest gets through — or the upstream may refuse every record ("agent_id
// not registered"), and dead-lettering would empty the whole backlog into
// dead letters. The difference shows in whether the upstream takes anything
// at all, so the forwarder keeps, per batch read from the source, an
// episode:
//
//   - accepted: a segment of the batch was acknowledged. From then on, a
//     single record rejected is poison and dead-lettered at once.
//   - held: single records rejected while nothing was accepted yet. They
//     are not dead-lettered: they stay pending in the source and are only
//     held aside in memory (OutcomeHeld) while the records after them are
//     sent. Held records share one answer (status and sanitized body).
//
// Held records are resolved by what comes next:
//
//   - Before any segment after them goes out, the held records are sent
//     again, alone, as one request (the re-check): an upstream that was
//     fixed meanwhile (the agent registered while it was being bisected)
//     now takes them, and they are delivered in order. Rejected again,
//     they stay held and the segment goes out. A record is thus only judged
//     poison on a rejection that came right before an acceptance of the
//     records after it.
//   - A segment after them is accepted: they are poison. They are
//     dead-lettered (each with its own answer), then the segment is acked.
//   - Another single record is rejected with a different answer: the
//     upstream judges records one by one, so the held ones are poison and
//     dead-lettered; the new one is held in their place.
//   - When verifyAt records are held (probeMin, 8, at first), the rest of
//     the batch is sent as one request (the verification). Accepted: the
//     held records are poison. Rejected with the same answer: the upstream
//     refuses every record alike — an endpoint failure (SPEC §6.1). Nothing
//     is dead-lettered; the batch is dropped from memory and read again
//     after a backoff, and the status shows the error. The uniform case
//     thus costs about 2·log2(n) + 2·verifyAt requests per retry cycle, not
//     2n. Rejected with another answer, or 413: inconclusive (a message may
//     count the records); bisection goes on and verifies again at twice
//     the number held. Only answers to single records count as evidence
//     of poison.
//   - The batch is exhausted: the next records of the source are sent
//     (as the verification, if enough are held), so a batch smaller than
//     verifyAt, and batch_size 1, still tell poison from refusal. When the
//     source has nothing after the held records — every pending record
//     is rejected alike — or probeMax records are held, it is a uniform
//     rejection. A lone pending record (a batch of one) rejected while
//     nothing was accepted is the smallest such case: it cannot be told
//     from a uniform rejection, so it is treated as one (retried, shown),
//     and resolved once more records arrive and a bigger batch is bisected.
//
// A run of more than verifyAt poison records with the very same answer
// looks like a uniform rejection in the first cycle. So that it does not
// block the buffer for good, every uniform verdict doubles verifyAt for the
// next cycle, up to probeMax (64); an acceptance resets it. A longer run of
// records rejected with one answer is shown as an upstream refusing every
// record, for a person to look at.
//
// Crash safety: the source is the truth. Held records are only in memory;
// after a restart they are simply pending and sent again. Dead letters of
// held records are written before the ack of the segment that proved them
// poison, and held records are older than every record sent after them, so
// acks and dead letters never reorder delivered records. A change of URL,
// token or agent id drops the episode (checkEndpoint): the old endpoint's
// answers must not decide the fate of records on the new one.
const (
	probeMin = 8
	probeMax = 64
)

// episode is the isolation state of the batch being sent (see above). It
// is owned by the holder of sem and reset whenever a batch is read from the
// source.
type episode struct {
	url, token, agentID string // the endpoint the batch is sent to

	accepted  bool   // a segment of the batch was accepted
	held      []held // rejected single records, oldest first, all with one answer
	verifyAt  int    // len(held) at which the rest is sent as one request
	verifying bool   // the head segment of the queue is that request
	// rechecking: the head segment of the queue is the held records, sent
	// again before the segment after them; rechecked: they were rejected
	// again since the last record was held.
	rechecking, rechecked bool
}

// recheckHeld puts the held records, as one request, in front of the
// segment that follows them, unless they were re-checked since the last
// record was held (see the re-check above). Called before every attempt.
func (f *Forwarder) recheckHeld() {
	ep := &f.ep
	if len(ep.held) == 0 || ep.rechecked || ep.rechecking || len(f.queue) == 0 {
		return
	}
	recs := make([]store.Record, len(ep.held))
	for i, h := range ep.held {
		recs[i] = h.rec
	}
	f.queue = append([][]store.Record{recs}, f.queue...)
	ep.rechecking = true
}

// rechecked handles the rejection of the re-check: the held records stay
// held, and the segment after them goes out next.
func (f *Forwarder) rechecked(log *slog.Logger, serr *StatusError) attemptResult {
	f.ep.rechecking, f.ep.rechecked = false, true
	f.popHead()
	log.Info("Held records rejected again", "held", len(f.ep.held), "status", serr.StatusCode, "answer", serr.Body)
	return attemptResult{outcome: OutcomeHeld, err: serr}
}

// held is a rejected record kept pending while the episode decides.
type held struct {
	rec    store.Record
	answer *StatusError
}

// apply applies the outcome of an attempt with seg, the head segment of the
// queue: ack and drop it, split it, hold or dead-letter it, or leave it for
// a retry (the caller waits out the backoff).
func (f *Forwarder) apply(cfg Config, seg []store.Record, id string, ans answer) attemptResult {
	first, last := seg[0].Seq, seg[len(seg)-1].Seq
	log := f.log.With("batch_id", id, "records", len(seg), "first_seq", first, "last_seq", last)
	if ans.canceled {
		return attemptResult{outcome: OutcomeCanceled, err: context.Canceled}
	}
	if ans.err != nil {
		health := HealthOffline
		if ans.local {
			health = HealthError
		}
		return f.retry(log, fmt.Errorf("send batch: %w", ans.err), false, health, ans.problem, ans)
	}
	serr := &StatusError{
		StatusCode: ans.status,
		Body:       snippet(ans.body, cfg.Token, maxSnippet),
		RetryAfter: ans.retryAfter,
	}
	switch c := classify(ans.status); c {
	case classAck:
		if v := checkAck(ans.contentType, ans.body, ans.overflow, id); v != ackOK {
			// Safe to retry: the same batch id is answered 409 (with the
			// echo) if the upstream did take it.
			serr.NotAck = v.String()
			if v == ackWebPage {
				serr.Body = "" // a portal's page may carry session links
			}
			return f.retry(log, serr, false, HealthError, notAckProblem(ans.status, v), ans)
		}
		if f.ep.rechecking {
			// The held records were taken after all: the upstream
			// changed its mind, they are not poison.
			log.Info("Held records accepted on a re-check", "held", len(f.ep.held))
			f.ep.rechecking, f.ep.held = false, nil
		}
		return f.accept(log, seg, ans)
	case classRedirect:
		// The body of a redirect usually repeats the target URL, which
		// may carry credentials or a session: only the host is shown.
		serr.Body = ""
		serr.RedirectHost = ans.redirect
		return f.retry(log, serr, false, HealthError, redirectProblem(ans.status, ans.redirect), ans)
	case classTooLarge, classRejected:
		if f.ep.rechecking {
			return f.rechecked(log, serr)
		}
	}
	switch c := classify(ans.status); c {
	case classTooLarge:
		if len(seg) > 1 {
			if f.ep.verifying {
				// Too large says nothing about the records: verify
				// again at twice the number held, with smaller
				// segments.
				f.ep.verifying = false
				f.ep.verifyAt = 2 * len(f.ep.held)
			}
			return f.split(log, seg, serr)
		}
		return f.rejected(log, cfg, seg, serr)
	case classRejected:
		return f.rejected(log, cfg, seg, serr)
	case classTransient:
		return f.retry(log, serr, false, HealthOffline, statusProblem(c, ans.status), ans)
	default: // classAuth, classEndpoint, classUnexpected
		return f.retry(log, serr, false, HealthError, statusProblem(c, ans.status), ans)
	}
}

// accept handles an acknowledged segment: held records are poison and are
// dead-lettered first, then the segment is acked.
func (f *Forwarder) accept(log *slog.Logger, seg []store.Record, ans answer) attemptResult {
	f.ep.accepted = true
	f.ep.verifying = false
	f.probe = probeMin
	dead, err := f.deadLetterHeld(log)
	if err != nil {
		// The upstream has the segment; it is sent again (same id, if
		// the bisection takes the same course) after the held records.
		f.resetBatch()
		return f.retryBuffer(log, err, "cannot set a rejected record aside in the local buffer", dead, ans)
	}
	seqs := make([]uint64, len(seg))
	for i, r := range seg {
		seqs[i] = r.Seq
	}
	if err := f.src.Ack(seqs...); err != nil {
		// The upstream has the batch; resending it (same id) gets a 409
		// echoing it, which is acked again.
		return f.retryBuffer(log, fmt.Errorf("ack delivered records: %w", err), "cannot mark delivered records in the local buffer", dead, ans)
	}
	f.popHead()
	f.succeeded()
	f.mu.Lock()
	f.status.LastSuccessAt = f.clock.Now()
	f.status.Delivered += uint64(len(seg))
	f.mu.Unlock()
	log.Debug("Batch accepted", "status", ans.status)
	return attemptResult{outcome: OutcomeAccepted, dead: dead}
}

// split replaces the head segment by its halves, left first.
func (f *Forwarder) split(log *slog.Logger, seg []store.Record, serr *StatusError) attemptResult {
	h := len(seg) / 2
	rest := f.queue[1:]
	f.queue = make([][]store.Record, 0, len(rest)+2)
	f.queue = append(f.queue, seg[:h], seg[h:])
	f.queue = append(f.queue, rest...)
	log.Info("Batch split", "status", serr.StatusCode, "answer", serr.Body)
	return attemptResult{outcome: OutcomeSplit, err: serr}
}

// rejected handles a record-level rejection of seg (any size for a 4xx, a
// single record for a 413).
func (f *Forwarder) rejected(log *slog.Logger, cfg Config, seg []store.Record, serr *StatusError) attemptResult {
	ep := &f.ep
	if ep.verifying {
		ep.verifying = false
		if ep.held[0].answer.sameAnswer(serr) {
			return f.uniform(log, serr)
		}
		// Inconclusive: a request of many records may be answered
		// differently for reasons that have nothing to do with them
		// (a count in the message). Bisect on; verify again at twice
		// the number held.
		ep.verifyAt = 2 * len(ep.held)
	}
	if len(seg) > 1 {
		return f.split(log, seg, serr)
	}
	var dead int
	if len(ep.held) > 0 && !ep.held[0].answer.sameAnswer(serr) {
		// Two single records answered differently: the upstream judges
		// records one by one, and the held ones are poison.
		n, err := f.deadLetterHeld(log)
		dead += n
		if err != nil {
			f.resetBatch()
			return f.retryBuffer(log, err, "cannot set a rejected record aside in the local buffer", dead, answer{})
		}
	}
	r := seg[0]
	if ep.accepted {
		// The upstream takes the other records of this batch: this one
		// is poison.
		if err := f.deadLetter(log, r, serr); err != nil {
			// Start again from the buffer: if the record is still
			// pending it is isolated and dead-lettered again; if it is
			// gone (the store says "not found"), nothing loops on it.
			f.resetBatch()
			return f.retryBuffer(log, err, "cannot set a rejected record aside in the local buffer", dead, answer{})
		}
		f.popHead()
		f.succeeded()
		return attemptResult{outcome: OutcomeDeadLettered, err: serr, dead: dead + 1}
	}
	f.popHead()
	ep.held = append(ep.held, held{rec: r, answer: serr})
	ep.rechecked = false
	if dead > 0 {
		f.succeeded() // a handled record-level rejection
	}
	log.Info("Rejected record held", "seq", r.Seq, "held", len(ep.held), "status", serr.StatusCode, "answer", serr.Body)
	switch {
	case len(f.queue) == 0:
		return f.probeNext(log, cfg, serr, dead)
	case len(ep.held) >= ep.verifyAt:
		// Verify with the rest of the batch as one request. The
		// segments are contiguous and in order.
		f.queue = [][]store.Record{slices.Concat(f.queue...)}
		ep.verifying = true
	}
	return attemptResult{outcome: OutcomeHeld, err: serr, dead: dead}
}

// probeNext continues an episode whose batch is exhausted while records are
// held: with the next records of the source (up to a batch), to verify when
// enough are held. With nothing after the held records — every pending
// record was rejected alike — or with probeMax records held, it is a
// uniform rejection. Extending only while fewer than probeMax are held
// bounds the records held and the requests per cycle.
func (f *Forwarder) probeNext(log *slog.Logger, cfg Config, serr *StatusError, dead int) attemptResult {
	n := len(f.ep.held)
	if n >= probeMax {
		return f.uniform(log, serr)
	}
	recs, err := f.src.Pending(n + cfg.BatchSize)
	if err != nil {
		f.resetBatch()
		return f.retryBuffer(log, fmt.Errorf("read pending records: %w", err), "cannot read the local buffer", dead, answer{})
	}
	if len(recs) < n || !heldPrefix(f.ep.held, recs) {
		// The buffer changed under the episode (records requeued or
		// removed by hand): start again from it.
		log.Info("Buffer changed during bisection: batch read again")
		f.resetBatch()
		return attemptResult{outcome: OutcomeHeld, err: serr, dead: dead}
	}
	rest := recs[n:min(len(recs), n+cfg.BatchSize)]
	if len(rest) == 0 {
		return f.uniform(log, serr)
	}
	f.queue = [][]store.Record{rest}
	f.ep.verifying = n >= f.ep.verifyAt
	return attemptResult{outcome: OutcomeHeld, err: serr, dead: dead}
}

// heldPrefix reports whether recs starts with the held records.
func heldPrefix(hs []held, recs []store.Record) bool {
	for i, h := range hs {
		if recs[i].Seq != h.rec.Seq {
			return false
		}
	}
	return true
}

// uniform concludes that the upstream refuses every record with the answer
// serr: nothing is dead-lettered, the batch is read again after a backoff.
func (f *Forwarder) uniform(log *slog.Logger, serr *StatusError) attemptResult {
	n := len(f.ep.held)
	f.resetBatch()
	f.probe = min(2*f.probe, probeMax)
	log.Warn("Upstream refuses every record", "held", n, "status", serr.StatusCode, "answer", serr.Body)
	return f.retry(log, &uniformError{answer: serr}, false, HealthError, uniformProblem(serr), answer{status: serr.StatusCode})
}

// deadLetterHeld dead-letters the held records, oldest first, each with its
// own answer, and forgets them. On error the ones done are forgotten too.
func (f *Forwarder) deadLetterHeld(log *slog.Logger) (int, error) {
	for i, h := range f.ep.held {
		if err := f.deadLetter(log, h.rec, h.answer); err != nil {
			f.ep.held = f.ep.held[i:]
			return i, err
		}
	}
	n := len(f.ep.held)
	f.ep.held = nil
	return n, nil
}

// deadLetter moves r to the dead-letter bucket with its answer as reason.
func (f *Forwarder) deadLetter(log *slog.Logger, r store.Record, serr *StatusError) error {
	reason := serr.Error()
	if err := f.src.DeadLetter(r.Seq, reason); err != nil {
		return fmt.Errorf("dead-letter record %d: %w", r.Seq, err)
	}
	f.mu.Lock()
	f.status.DeadLettered++
	f.mu.Unlock()
	log.Warn("Record dead-lettered", "seq", r.Seq, "key", r.Key, "kind", r.Kind, "status", serr.StatusCode, "reason", reason)
	return nil
}

// popHead drops the first segment of the queue.
func (f *Forwarder) popHead() {
	f.queue[0] = nil
	f.queue = f.queue[1:]
	if len(f.queue) == 0 {
		f.queue = nil // let the records go
	}
}

// succeeded records a definitive answer — an acknowledgement or a handled
// record-level rejection: the upstream is online and well, the failure
// count and the problem are cleared.
func (f *Forwarder) succeeded() {
	if f.failures > 0 {
		f.log.Info("Upstream answering again", "failures", f.failures)
	}
	f.failures = 0
	f.mu.Lock()
	f.status.Online = true
	f.status.Health = HealthOK
	f.status.Problem = ""
	f.status.LastError = ""
	f.status.ConsecutiveFailures = 0
	f.mu.Unlock()
}

// retry counts a failed attempt and shows it; the caller waits out the
// backoff. online is Status.Online afterwards.
func (f *Forwarder) retry(log *slog.Logger, err error, online bool, health Health, problem string, ans answer) attemptResult {
	f.failures++
	f.mu.Lock()
	f.status.Online = online
	f.status.Health = health
	f.status.Problem = problem
	f.status.LastError = err.Error()
	f.status.ConsecutiveFailures = f.failures
	f.mu.Unlock()
	log.Warn("Upstream attempt failed", "status", ans.status, "health", string(health), "error", err, "failures", f.failures)
	return attemptResult{outcome: OutcomeRetry, err: err, retryAfter: ans.retryAfter}
}

// retryBuffer is retry for a failure of the local buffer after the upstream
// answered: the upstream is online, but a person must look at the buffer.
func (f *Forwarder) retryBuffer(log *slog.Logger, err error, what string, dead int, ans answer) attemptResult {
	res := f.retry(log, err, true, HealthError, bufferProblem(what, err), ans)
	res.dead = dead
	return res
}
