package natssink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
)

// Re-learning what the stream holds for this agent (see the package doc).
//
// Every read goes through the JetStream message-get API
// ($JS.API.STREAM.MSG.GET.{stream}), which the stream leader answers: what
// it returns includes every message whose acknowledgement was sent. Each
// stored message of the agent carries its record's seq in Pwbi-Seq; a record
// stored out of order also carries Pwbi-Max-Seq, the highest seq stored
// before it. Along the agent's messages, in stream order, the value
// level = max(Pwbi-Seq, Pwbi-Max-Seq) never decreases — records are
// published in seq order, and the only exception carries the level it was
// published at — which makes the binary search below exact.

// storedMsg is one message read back.
type storedMsg struct {
	seq    uint64 // stream sequence
	recSeq uint64 // Pwbi-Seq
	level  uint64 // max(Pwbi-Seq, Pwbi-Max-Seq)
}

// errNotFound: no message of the agent at or after the position asked.
var errNotFound = errors.New("no message")

// errInconsistent: the server answered with a message before the position
// asked.
var errInconsistent = errors.New("message-get answer before the sequence asked")

// foreignError is a message on the agent's subjects without a valid
// Pwbi-Seq: not published by an agent.
type foreignError struct {
	subject string
	seq     uint64
}

func (e *foreignError) Error() string {
	return fmt.Sprintf("stream message %d on %s has no valid %s header: not published by this agent", e.seq, e.subject, HeaderSeq)
}

// getMsg asks the stream for the agent's last message (seq 0) or its first
// message at or after stream sequence seq.
func (l *link) getMsg(ctx context.Context, cfg Config, seq uint64) (storedMsg, error) {
	req := struct {
		Seq     uint64 `json:"seq,omitempty"`
		LastFor string `json:"last_by_subj,omitempty"`
		NextFor string `json:"next_by_subj,omitempty"`
	}{}
	if seq == 0 {
		req.LastFor = l.filter
	} else {
		req.Seq, req.NextFor = seq, l.filter
	}
	body, _ := json.Marshal(req)
	resp, err := l.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+cfg.Stream, body)
	if err != nil {
		return storedMsg{}, err
	}
	return parseStoredMsg(resp.Data)
}

// parseStoredMsg reads a message-get answer: the message's stream sequence
// and its Pwbi-Seq and Pwbi-Max-Seq headers, errNotFound, a JetStream API
// error, or a foreignError for a message without a valid Pwbi-Seq.
func parseStoredMsg(data []byte) (storedMsg, error) {
	var r struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject  string `json:"subject"`
			Sequence uint64 `json:"seq"`
			Header   []byte `json:"hdrs"`
		} `json:"message"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return storedMsg{}, fmt.Errorf("%w: unreadable message-get answer", jetstream.ErrInvalidJSAck)
	}
	if r.Error != nil {
		if r.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return storedMsg{}, errNotFound
		}
		return storedMsg{}, r.Error
	}
	if r.Message == nil || r.Message.Sequence == 0 {
		return storedMsg{}, fmt.Errorf("%w: message-get answer without a message", jetstream.ErrInvalidJSAck)
	}
	m := storedMsg{seq: r.Message.Sequence}
	foreign := &foreignError{subject: sink.Snippet([]byte(r.Message.Subject), "", 200), seq: m.seq}
	if len(r.Message.Header) == 0 {
		return storedMsg{}, foreign
	}
	h, err := nats.DecodeHeadersMsg(r.Message.Header)
	if err != nil {
		return storedMsg{}, foreign
	}
	m.recSeq, err = strconv.ParseUint(h.Get(HeaderSeq), 10, 64)
	if err != nil || m.recSeq == 0 {
		return storedMsg{}, foreign
	}
	m.level = m.recSeq
	if v := h.Get(HeaderMaxSeq); v != "" {
		if mx, err := strconv.ParseUint(v, 10, 64); err == nil && mx > m.level {
			m.level = mx
		}
	}
	return m, nil
}

// resync re-learns, for a batch starting at seq first, which of its records
// the stream holds: from the hint when trouble in this process left one,
// otherwise from the agent's last message and, when the batch reaches down
// to it, a binary search for where the batch's records begin. Called with
// mu held and a connection.
func (l *link) resync(ctx context.Context, cfg Config, first uint64) error {
	l.st.resyncs.Add(1)
	epoch := l.epoch.Load()
	if l.hintSet && first >= l.floor {
		if err := l.readFrom(ctx, cfg, l.hint+1, 0); err != nil {
			return err
		}
	} else {
		if err := l.resyncFresh(ctx, cfg, first); err != nil {
			return err
		}
	}
	l.synced, l.syncedEpoch = true, epoch
	l.hint, l.hintSet = 0, false
	l.probe = true
	l.log.Info("Stream position learnt", "last_seq", l.tailSeq, "last_stream_seq", l.tailStream, "from_seq", first)
	return nil
}

// resyncFresh learns the position without any earlier knowledge (first
// attempt of the process, or a batch reaching below what is remembered).
func (l *link) resyncFresh(ctx context.Context, cfg Config, first uint64) error {
	last, err := l.getMsg(ctx, cfg, 0)
	if errors.Is(err, errNotFound) {
		// The agent has nothing in the stream.
		l.tailSeq, l.tailStream = 0, 0
		l.known, l.floor = l.known[:0], 0
		return nil
	}
	if err != nil {
		return err
	}
	l.tailSeq, l.tailStream = last.level, last.seq
	if last.level < first {
		// Nothing of the batch or after it is stored.
		l.known, l.floor = l.known[:0], last.level+1
		return nil
	}
	// Find the first message of the agent whose level is ≥ first: every
	// stored record ≥ first is at or after it.
	lo, hi := uint64(1), last.seq
	for lo < hi {
		mid := lo + (hi-lo)/2
		m, err := l.getMsg(ctx, cfg, mid)
		if err == nil && m.seq < mid {
			err = errInconsistent
		}
		if err != nil {
			if errors.Is(err, errNotFound) { // cannot be: last is after mid
				err = errors.New("the stream changed while it was read")
			}
			return err
		}
		if m.level >= first {
			hi = mid
		} else {
			lo = m.seq + 1
		}
	}
	l.known, l.floor = l.known[:0], first
	return l.readFrom(ctx, cfg, lo, first)
}

// readFrom reads the agent's messages from stream sequence from to the end
// and remembers the stored records (those ≥ min).
func (l *link) readFrom(ctx context.Context, cfg Config, from, min uint64) error {
	for seq := from; ; {
		m, err := l.getMsg(ctx, cfg, seq)
		if errors.Is(err, errNotFound) {
			return nil
		}
		if err == nil && m.seq < seq {
			err = errInconsistent
		}
		if err != nil {
			return err
		}
		if m.recSeq >= min {
			l.remember(m.recSeq)
		}
		l.tailSeq = max(l.tailSeq, m.level)
		l.tailStream = max(l.tailStream, m.seq)
		seq = m.seq + 1
	}
}

// resyncAnswer is the Retry of a failed resync.
func (l *link) resyncAnswer(cfg Config, err error) sink.Answer {
	var fe *foreignError
	if errors.As(err, &fe) {
		return retryAnswer(0, err, sink.HealthError,
			sink.Say("HealthNatsForeign", map[string]any{"Stream": cfg.Stream, "Subjects": l.filter}))
	}
	code, health, problem := l.classify(cfg, err, "")
	return retryAnswer(code, fmt.Errorf("read the agent's position in stream %s: %w", cfg.Stream, err), health, problem)
}
