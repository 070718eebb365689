// Package sink is the vocabulary between the delivery loop (agent/deliver)
// and the sinks it drives (SPEC §6): the [Answer] a sink gives to one batch
// of records, the [Health] it reports, and [Snippet], which every sink needs
// to quote what the outside world answered, short and without secrets. A
// sink says what is wrong as a [Message]: a message id of internal/i18n's
// health catalogue with its data, and the English sentence, so that the
// status reads in the reader's language.
//
// The loop declares the interface it consumes (deliver.Sink); a sink
// (agent/deliver/httpsink, natssink, jurnalsink) implements
// it with this package's types and never imports agent/deliver: a child
// package does not import its parent. This package imports nothing of the
// agent but internal/i18n, to word a Message in English.
package sink

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pwbi/edge-agent/internal/secret"
)

// Verdict is what an answer means for the batch that was sent.
type Verdict int

const (
	// Retry: nothing of the batch is decided; the same batch is sent
	// again after a wait (the loop's backoff, or RetryAfter). Network
	// errors, timeouts, overload, and also failures a person must fix
	// (credentials refused, a wrong endpoint, an answer that is not an
	// acknowledgement) are retries: they say nothing about the records.
	// It is the zero Verdict, so that an Answer left empty never loses or
	// acknowledges anything.
	Retry Verdict = iota
	// Accepted: the destination has every record of the batch, durably
	// (an HTTP acknowledgement echoing the batch, a JetStream publish ack
	// for every message, a Jurnal document created or found existing).
	// The loop removes the records from the buffer.
	Accepted
	// TooLarge: the batch as a whole is too large for the destination
	// (HTTP 413, a message over the server's maximum payload). It says
	// nothing about the records: a batch of several is split in halves; a
	// single record that is too large is treated as Rejected.
	TooLarge
	// Rejected: the destination refuses the batch for what its records
	// contain (an HTTP 4xx such as 422, a Jurnal 422 with field messages,
	// a JetStream error that is not retryable). The loop bisects a batch
	// of several records to isolate the refused ones; a single refused
	// record goes to the sink's dead letters — unless the bisection finds
	// the destination refusing every record with the Same answer, which is
	// an endpoint failure: retried and shown, nothing dead-lettered.
	Rejected
	// Canceled: the context ended before there was an answer. The batch
	// stays buffered. Only when ctx is done; a sink that gives up for any
	// other reason answers Retry.
	Canceled
)

func (v Verdict) String() string {
	switch v {
	case Retry:
		return "retry"
	case Accepted:
		return "accepted"
	case TooLarge:
		return "too_large"
	case Rejected:
		return "rejected"
	case Canceled:
		return "canceled"
	}
	return "unknown"
}

// Health is a sink's condition in one word, for the agent's state rules.
type Health string

const (
	// HealthOK: deliveries work, or nothing was tried yet.
	HealthOK Health = ""
	// HealthOffline: trouble that retries fix by themselves — network
	// errors, timeouts, truncated answers, overload (HTTP 408, 425, 429,
	// 5xx), a cluster without a leader.
	HealthOffline Health = "offline"
	// HealthError: a person must act — credentials refused, a wrong
	// endpoint, a redirect, an answer that is not an acknowledgement, a
	// destination refusing every record, an invalid address, or the local
	// buffer failing to read, ack or dead-letter.
	HealthError Health = "error"
)

// Answer is a sink's answer to one batch. Which fields count depends on the
// Verdict; the others are left zero. Nothing in an Answer may carry a secret
// (a token, a password, a credential in a URL) or more than a short,
// sanitized extract ([Snippet]) of what the destination said.
type Answer struct {
	Verdict Verdict

	// BatchID names the attempt in logs and metrics results (the HTTP
	// sink's batch id, also sent as Idempotency-Key). It may be empty.
	BatchID string
	// StatusCode is the destination's status for metrics and logs (an
	// HTTP status, a Jurnal status, a JetStream API error code), 0 when
	// there was none (network error, timeout, canceled).
	StatusCode int
	// Err says why the batch was not accepted; nil for Accepted and
	// Canceled. For Retry it is shown as the status's LastError; for
	// Rejected and TooLarge it is the destination's answer, and its
	// Error() is the dead-letter reason of a record found poison.
	Err error

	// Health (Retry only) is HealthOffline when retries fix the trouble
	// by themselves, HealthError when a person must act. Left empty it
	// counts as HealthError.
	Health Health
	// Problem (Retry only) is one plain-language sentence for a person
	// saying what is wrong, shown in the status while it lasts.
	// ProblemCode and ProblemParams are the same sentence as a message of
	// internal/i18n's health catalogue and its data ([Message]), so that
	// the status can show it in the reader's language: set all three with
	// [Answer.WithProblem]. ProblemCode is empty for a sentence without a
	// message; Problem is then shown as it is, in every language.
	Problem       string
	ProblemCode   string
	ProblemParams map[string]any
	// RetryAfter (Retry only) is the wait the destination asked for; 0
	// leaves the wait to the loop's exponential backoff.
	RetryAfter time.Duration

	// Same (Rejected and TooLarge) identifies the answer: two rejections
	// are the same answer when their Same are equal (HTTP: the status and
	// the sanitized body). A bisection that finds every record refused
	// with the same answer concludes the destination refuses everything
	// (not poison) and dead-letters nothing, so Same must differ when the
	// destination judged the records differently, and be equal when it
	// gave one answer whatever the records. Left empty, every rejection
	// counts as the same answer: the safe side, nothing is dead-lettered.
	Same string
	// Detail (Rejected and TooLarge) is the short, sanitized extract of
	// the answer written to the logs.
	Detail string
	// UniformProblem (Rejected and TooLarge) is the Problem shown if the
	// bisection finds every record refused with this answer, e.g. "the
	// PWBI cloud refuses every record with 400 Bad Request: …";
	// UniformProblemCode and UniformProblemParams say it as a message
	// (see ProblemCode; set all three with [Answer.WithUniformProblem]).
	UniformProblem       string
	UniformProblemCode   string
	UniformProblemParams map[string]any
}

// Snippet makes a short single-line extract of text from the outside world
// (an answer body, an error message) for logs, errors, dead-letter reasons
// and the status: tok replaced by "<redacted>" (internal/secret's Redact:
// "" or one shorter than 4 bytes is left alone), control characters and
// invalid UTF-8 replaced by '?', white space collapsed, at most n bytes
// plus a trailing "…" when it was cut.
func Snippet(body []byte, tok string, n int) string {
	s := secret.Redact(string(body), tok)
	var b strings.Builder
	space := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) {
			r = '?'
		}
		need := utf8.RuneLen(r)
		if space {
			need++
		}
		if b.Len()+need > n {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
