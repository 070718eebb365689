package moka

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
)

// ErrorKind says who can cure a failed poll.
type ErrorKind int

const (
	// KindOther: Moka answered something the agent cannot use (an
	// unreadable page, a 4xx): retrying alone is unlikely to help.
	KindOther ErrorKind = iota
	// KindTransient: network trouble, timeouts, 408/429/5xx: retries
	// will cure it.
	KindTransient
	// KindStorage: the records could not be written to the buffer (disk
	// full, database failure).
	KindStorage
)

func (k ErrorKind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindStorage:
		return "storage"
	}
	return "other"
}

// storageError marks a failure of the buffer itself.
type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// stored marks err, returned by the Sink, as a storage failure.
func stored(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var se *storageError
	if errors.As(err, &se) {
		return err
	}
	return &storageError{err: err}
}

// Kind classifies a poll failure.
func Kind(err error) ErrorKind {
	var se *storageError
	if errors.As(err, &se) {
		return KindStorage
	}
	// Any transport failure is network trouble (url.Error and net.Error
	// have a Temporary method of their own, deprecated and narrower than
	// what we mean, so they are looked at first).
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return KindTransient
	}
	var t Temporary
	if errors.As(err, &t) && t.Temporary() {
		return KindTransient
	}
	return KindOther
}

// failure is a run of failed polls.
type failure struct {
	err  error
	msg  string
	kind ErrorKind
	n    int
}

// next counts one more failure with err.
func (f failure) next(err error) failure {
	return failure{err: err, msg: err.Error(), kind: Kind(err), n: f.n + 1}
}
