package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/store"
)

// Telling poison records from a sink that refuses everything.
//
// A record-level rejection (sink.Rejected: an HTTP 4xx such as 422) of a
// batch of several records bisects it; sink.TooLarge (HTTP 413) just splits
// it. A single record rejected (Rejected, or TooLarge of one record) may be
// poison, to be dead-lettered so that the rest gets through — or the sink's
// destination may refuse every record (the PWBI cloud answering 400
// "agent_id not registered"), and dead-lettering would empty the whole
// backlog into dead letters. The difference shows in whether the
// destination takes anything at all, so the forwarder keeps, per batch read
// from the source, an episode:
//
//   - accepted: a segment of the batch was acknowledged. From then on, a
//     single record rejected is poison and dead-lettered at once.
//   - held: single records rejected while nothing was accepted yet. They
//     are not dead-lettered: they stay pending in the source and are only
//     held aside in memory (OutcomeHeld) while the records after them are
//     sent. Held records share one answer (equal sink.Answer.Same: for
//     HTTP, status and sanitized body).
//
// Held records are resolved by what comes next:
//
//   - Before any segment after them goes out, the held records are sent
//     again, alone, as one request (the re-check): a destination that was
//     fixed meanwhile (the agent registered while it was being bisected)
//     now takes them, and they are delivered in order. Rejected again,
//     they stay held and the segment goes out. A record is thus only judged
//     poison on a rejection that came right before an acceptance of the
//     records after it.
//   - A segment after them is accepted: they are poison. They are
//     dead-lettered (each with its own answer), then the segment is acked.
//   - Another single record is rejected with a different answer: the
//     destination judges records one by one, so the held ones are poison and
//     dead-lettered; the new one is held in their place.
//   - When verifyAt records are held (probeMin, 8, at first), the rest of
//     the batch is sent as one request (the verification). Accepted: the
//     held records are poison. Rejected with the same answer: the
//     destination refuses every record alike — an endpoint failure (SPEC
//     §6.1). Nothing is dead-lettered; the batch is dropped from memory
//     and read again after a backoff, and the status shows the error. The
//     uniform case thus costs about 2·log2(n) + 2·verifyAt requests per
//     retry cycle, not 2n. Rejected with another answer, or too large:
//     inconclusive (a message may count the records); bisection goes on
//     and verifies again at twice the number held. Only answers to single
//     records count as evidence of poison.
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
// records rejected with one answer is shown as a destination refusing every
// record, for a person to look at.
//
// Crash safety: the source is the truth. Held records are only in memory;
// after a restart they are simply pending and sent again. Dead letters of
// held records are written before the ack of the segment that proved them
// poison, and held records are older than every record sent after them, so
// acks and dead letters never reorder delivered records. A change of the
// sink's Endpoint (for HTTP: URL, token or agent id) drops the episode
// (checkEndpoint): the old endpoint's answers must not decide the fate of
// records on the new one.
const (
	probeMin = 8
	probeMax = 64
)

// episode is the isolation state of the batch being sent (see above). It
// is owned by the holder of sem and reset whenever a batch is read from the
// source.
type episode struct {
	endpoint string // the sink's Endpoint when the batch was read

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
func (f *Forwarder) rechecked(log *slog.Logger, a sink.Answer) attemptResult {
	f.ep.rechecking, f.ep.rechecked = false, true
	f.popHead()
	log.Info("Held records rejected again", "held", len(f.ep.held), "status", a.StatusCode, "answer", a.Detail)
	return attemptResult{outcome: OutcomeHeld, err: a.Err}
}

// held is a rejected record kept pending while the episode decides.
type held struct {
	rec    store.Record
	answer sink.Answer // a settled Rejected or TooLarge
}

// sameAnswer reports whether two rejections are the same answer.
func sameAnswer(a, b sink.Answer) bool { return a.Same == b.Same }

// apply applies a (settled) answer to seg, the head segment of the queue:
// ack and drop it, split it, hold or dead-letter it, or leave it for a retry
// (the caller waits out the backoff).
func (f *Forwarder) apply(t target, seg []store.Record, a sink.Answer) attemptResult {
	first, last := seg[0].Seq, seg[len(seg)-1].Seq
	log := f.log.With("batch_id", a.BatchID, "records", len(seg), "first_seq", first, "last_seq", last)
	switch a.Verdict {
	case sink.Canceled:
		return attemptResult{outcome: OutcomeCanceled, err: context.Canceled}
	case sink.Retry:
		return f.retry(log, a.Err, false, a.Health, problemOf(a), a)
	case sink.Accepted:
		if f.ep.rechecking {
			// The held records were taken after all: the destination
			// changed its mind, they are not poison.
			log.Info("Held records accepted on a re-check", "held", len(f.ep.held))
			f.ep.rechecking, f.ep.held = false, nil
		}
		return f.accept(log, seg, a)
	}
	// sink.TooLarge or sink.Rejected.
	if f.ep.rechecking {
		return f.rechecked(log, a)
	}
	if a.Verdict == sink.TooLarge && len(seg) > 1 {
		if f.ep.verifying {
			// Too large says nothing about the records: verify again at
			// twice the number held, with smaller segments.
			f.ep.verifying = false
			f.ep.verifyAt = 2 * len(f.ep.held)
		}
		return f.split(log, seg, a)
	}
	return f.rejected(log, t, seg, a)
}

// accept handles an acknowledged segment: held records are poison and are
// dead-lettered first, then the segment is acked.
func (f *Forwarder) accept(log *slog.Logger, seg []store.Record, a sink.Answer) attemptResult {
	f.ep.accepted = true
	f.ep.verifying = false
	f.probe = probeMin
	dead, err := f.deadLetterHeld(log)
	if err != nil {
		// The sink has the segment; it is sent again after the held
		// records, harmlessly (Sink: for HTTP the same batch id, if the
		// bisection takes the same course).
		f.resetBatch()
		return f.retryBuffer(log, err, codeBufferDeadLetter, dead, a)
	}
	seqs := make([]uint64, len(seg))
	for i, r := range seg {
		seqs[i] = r.Seq
	}
	if err := f.src.Ack(seqs...); err != nil {
		// The sink has the batch; resending it is harmless (for HTTP the
		// same id gets a 409 echoing it), and it is acked again.
		return f.retryBuffer(log, fmt.Errorf("ack delivered records: %w", err), codeBufferAck, dead, a)
	}
	f.popHead()
	f.succeeded()
	f.mu.Lock()
	f.status.LastSuccessAt = f.clock.Now()
	f.status.Delivered += uint64(len(seg))
	f.mu.Unlock()
	log.Debug("Batch accepted", "status", a.StatusCode)
	return attemptResult{outcome: OutcomeAccepted, dead: dead}
}

// split replaces the head segment by its halves, left first.
func (f *Forwarder) split(log *slog.Logger, seg []store.Record, a sink.Answer) attemptResult {
	h := len(seg) / 2
	rest := f.queue[1:]
	f.queue = make([][]store.Record, 0, len(rest)+2)
	f.queue = append(f.queue, seg[:h], seg[h:])
	f.queue = append(f.queue, rest...)
	log.Info("Batch split", "status", a.StatusCode, "answer", a.Detail)
	return attemptResult{outcome: OutcomeSplit, err: a.Err}
}

// rejected handles a record-level rejection of seg (any size for Rejected,
// a single record for TooLarge).
func (f *Forwarder) rejected(log *slog.Logger, t target, seg []store.Record, a sink.Answer) attemptResult {
	ep := &f.ep
	if ep.verifying {
		ep.verifying = false
		if sameAnswer(ep.held[0].answer, a) {
			return f.uniform(log, a)
		}
		// Inconclusive: a request of many records may be answered
		// differently for reasons that have nothing to do with them
		// (a count in the message). Bisect on; verify again at twice
		// the number held.
		ep.verifyAt = 2 * len(ep.held)
	}
	if len(seg) > 1 {
		return f.split(log, seg, a)
	}
	var dead int
	if len(ep.held) > 0 && !sameAnswer(ep.held[0].answer, a) {
		// Two single records answered differently: the destination judges
		// records one by one, and the held ones are poison.
		n, err := f.deadLetterHeld(log)
		dead += n
		if err != nil {
			f.resetBatch()
			return f.retryBuffer(log, err, codeBufferDeadLetter, dead, sink.Answer{})
		}
	}
	r := seg[0]
	if ep.accepted {
		// The destination takes the other records of this batch: this
		// one is poison.
		if err := f.deadLetter(log, r, a); err != nil {
			// Start again from the buffer: if the record is still
			// pending it is isolated and dead-lettered again; if it is
			// gone (the store says "not found"), nothing loops on it.
			f.resetBatch()
			return f.retryBuffer(log, err, codeBufferDeadLetter, dead, sink.Answer{})
		}
		f.popHead()
		f.succeeded()
		return attemptResult{outcome: OutcomeDeadLettered, err: a.Err, dead: dead + 1}
	}
	f.popHead()
	ep.held = append(ep.held, held{rec: r, answer: a})
	ep.rechecked = false
	if dead > 0 {
		f.succeeded() // a handled record-level rejection
	}
	log.Info("Rejected record held", "seq", r.Seq, "held", len(ep.held), "status", a.StatusCode, "answer", a.Detail)
	switch {
	case len(f.queue) == 0:
		return f.probeNext(log, t, a, dead)
	case len(ep.held) >= ep.verifyAt:
		// Verify with the rest of the batch as one request. The
		// segments are contiguous and in order.
		f.queue = [][]store.Record{slices.Concat(f.queue...)}
		ep.verifying = true
	}
	return attemptResult{outcome: OutcomeHeld, err: a.Err, dead: dead}
}

// probeNext continues an episode whose batch is exhausted while records are
// held: with the next records of the source (up to a batch), to verify when
// enough are held. With nothing after the held records — every pending
// record was rejected alike — or with probeMax records held, it is a
// uniform rejection. Extending only while fewer than probeMax are held
// bounds the records held and the requests per cycle.
func (f *Forwarder) probeNext(log *slog.Logger, t target, a sink.Answer, dead int) attemptResult {
	n := len(f.ep.held)
	if n >= probeMax {
		return f.uniform(log, a)
	}
	recs, err := f.src.Pending(n + t.BatchSize)
	if err != nil {
		f.resetBatch()
		return f.retryBuffer(log, fmt.Errorf("read pending records: %w", err), codeBufferRead, dead, sink.Answer{})
	}
	if len(recs) < n || !heldPrefix(f.ep.held, recs) {
		// The buffer changed under the episode (records requeued or
		// removed by hand): start again from it.
		log.Info("Buffer changed during bisection: batch read again")
		f.resetBatch()
		return attemptResult{outcome: OutcomeHeld, err: a.Err, dead: dead}
	}
	rest := recs[n:min(len(recs), n+t.BatchSize)]
	if len(rest) == 0 {
		return f.uniform(log, a)
	}
	f.queue = [][]store.Record{rest}
	f.ep.verifying = n >= f.ep.verifyAt
	return attemptResult{outcome: OutcomeHeld, err: a.Err, dead: dead}
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

// uniform concludes that the destination refuses every record with the
// answer a: nothing is dead-lettered, the batch is read again after a
// backoff.
func (f *Forwarder) uniform(log *slog.Logger, a sink.Answer) attemptResult {
	n := len(f.ep.held)
	f.resetBatch()
	f.probe = min(2*f.probe, probeMax)
	log.Warn("Sink refuses every record", "held", n, "status", a.StatusCode, "answer", a.Detail)
	return f.retry(log, &uniformError{answer: a.Err}, false, HealthError, uniformProblemOf(a), sink.Answer{StatusCode: a.StatusCode})
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
func (f *Forwarder) deadLetter(log *slog.Logger, r store.Record, a sink.Answer) error {
	reason := a.Err.Error()
	if err := f.src.DeadLetter(r.Seq, reason); err != nil {
		return fmt.Errorf("dead-letter record %d: %w", r.Seq, err)
	}
	f.mu.Lock()
	f.status.DeadLettered++
	f.mu.Unlock()
	log.Warn("Record dead-lettered", "seq", r.Seq, "key", r.Key, "kind", r.Kind, "status", a.StatusCode, "reason", reason)
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
// record-level rejection: the sink is online and well, the failure count
// and the problem are cleared.
func (f *Forwarder) succeeded() {
	if f.failures > 0 {
		f.log.Info("Sink answering again", "failures", f.failures)
	}
	f.failures = 0
	f.mu.Lock()
	f.status.Online = true
	f.status.Health = HealthOK
	f.status.setProblem(sink.Message{})
	f.status.LastError = ""
	f.status.ConsecutiveFailures = 0
	f.mu.Unlock()
}

// problemOf is the Problem of a (settled) Retry answer, with its code.
func problemOf(a sink.Answer) sink.Message {
	return sink.Message{Code: a.ProblemCode, Params: a.ProblemParams, Text: a.Problem}
}

// uniformProblemOf is the UniformProblem of a (settled) rejection, with its
// code.
func uniformProblemOf(a sink.Answer) sink.Message {
	return sink.Message{Code: a.UniformProblemCode, Params: a.UniformProblemParams, Text: a.UniformProblem}
}

// retry counts a failed attempt and shows it; the caller waits out the
// backoff. online is Status.Online afterwards.
func (f *Forwarder) retry(log *slog.Logger, err error, online bool, health Health, problem sink.Message, a sink.Answer) attemptResult {
	f.failures++
	f.mu.Lock()
	f.status.Online = online
	f.status.Health = health
	f.status.setProblem(problem)
	f.status.LastError = err.Error()
	f.status.ConsecutiveFailures = f.failures
	f.mu.Unlock()
	log.Warn("Sink attempt failed", "status", a.StatusCode, "health", string(health), "error", err, "failures", f.failures)
	return attemptResult{outcome: OutcomeRetry, err: err, retryAfter: a.RetryAfter}
}

// retryBuffer is retry for a failure of the local buffer after the sink
// answered: the sink is online, but a person must look at the buffer. code
// is the loop's problem saying what failed (codeBuffer…).
func (f *Forwarder) retryBuffer(log *slog.Logger, err error, code string, dead int, a sink.Answer) attemptResult {
	res := f.retry(log, err, true, HealthError, loopProblem(code, err), a)
	res.dead = dead
	return res
}
