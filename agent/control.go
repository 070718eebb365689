package agent

import (
	"context"
	"errors"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/store"
)

// SyncNow implements localapi.Backend: poll Moka and flush every sink at
// once.
func (a *Agent) SyncNow(ctx context.Context) error {
	a.mu.Lock()
	paused := a.paused
	a.mu.Unlock()
	if paused {
		return errors.New("the agent is paused: resume it first")
	}
	a.log.Info("Sync requested")
	a.moka.SyncNow()
	a.delivery.Flush()
	a.pokeSinks()
	return nil
}

// Pause implements localapi.Backend: stop polling Moka and delivering to
// the sinks until Resume (or a restart). Nothing buffered is lost; the
// tablets' checkout gateway is not affected.
func (a *Agent) Pause(ctx context.Context) error {
	a.mu.Lock()
	if a.paused {
		a.mu.Unlock()
		return nil
	}
	a.paused = true
	a.mu.Unlock()
	if err := a.workers.Stop(); err != nil {
		a.log.Warn("Workers stopped with an error", "err", err)
	}
	a.log.Info("Syncing paused")
	return nil
}

// Resume implements localapi.Backend.
func (a *Agent) Resume(ctx context.Context) error {
	a.mu.Lock()
	if !a.paused {
		a.mu.Unlock()
		return nil
	}
	a.paused = false
	a.mu.Unlock()
	a.startWorkers()
	a.log.Info("Syncing resumed")
	return nil
}

// DeadLetters implements localapi.Backend: every dead letter, or one
// sink's (q.Sink, a sink the agent knows).
func (a *Agent) DeadLetters(ctx context.Context, q localapi.DeadLetterQuery) ([]localapi.DeadLetter, error) {
	var (
		dls []store.DeadLetter
		err error
	)
	if q.Sink != "" {
		if err := a.checkSinkName(q.Sink); err != nil {
			return nil, &localapi.BadRequestError{Err: err}
		}
		dls, err = a.store.DeadLettersOf(q.Sink, q.Limit)
	} else {
		dls, err = a.store.DeadLetters(q.Limit)
	}
	if err != nil {
		return nil, err
	}
	out := make([]localapi.DeadLetter, 0, len(dls))
	for _, d := range dls {
		dl := localapi.DeadLetter{
			ID: d.ID, Stage: d.Stage, Sink: d.Sink, Kind: d.Record.Kind, Key: d.Record.Key,
			Reason: d.Reason, At: d.At, Seq: d.Record.Seq,
		}
		if q.WithData {
			dl.Data = d.Record.Data
		}
		out = append(out, dl)
	}
	return out, nil
}

// Requeue implements localapi.Backend: dead letters go back to the end of
// the outbox, a sink's for that sink alone; with req.Sink, only that sink's.
// Those that cannot are listed with the reason.
func (a *Agent) Requeue(ctx context.Context, req localapi.RequeueRequest) (localapi.RequeueResult, error) {
	var (
		n   int
		err error
	)
	if req.Sink != "" {
		if err := a.checkSinkName(req.Sink); err != nil {
			return localapi.RequeueResult{}, &localapi.BadRequestError{Err: err}
		}
	}
	switch {
	case req.All && req.Sink != "":
		n, err = a.store.RequeueAllOf(req.Sink)
	case req.All:
		n, err = a.store.RequeueAll()
	case req.Sink != "":
		n, err = a.store.RequeueOf(req.Sink, req.IDs...)
	default:
		n, err = a.store.Requeue(req.IDs...)
	}
	res := localapi.RequeueResult{Requeued: n, NotRequeued: []string{}}
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrNotRequeueable) {
			return res, err
		}
		for _, e := range unwrapAll(err) {
			res.NotRequeued = append(res.NotRequeued, e.Error())
		}
	}
	if n > 0 {
		a.log.Info("Dead letters requeued", "count", n, "sink", req.Sink)
		a.delivery.Flush()
	}
	return res, nil
}

// unwrapAll finds the errors.Join inside err (the store wraps one error
// per skipped item) and returns its parts; err itself if there is none.
func unwrapAll(err error) []error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			return j.Unwrap()
		}
	}
	return []error{err}
}

var _ localapi.Backend = (*Agent)(nil)
