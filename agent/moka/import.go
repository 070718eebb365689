package moka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/store"
)

// ImportStatus is the progress of a historical import.
type ImportStatus struct {
	Running   bool
	Since     time.Time
	OutletID  string
	DaysDone  int
	DaysTotal int
	// Records counts the transactions fetched from Moka; of them, New
	// were not in the buffer before, Changed were there in another
	// version (the rest were unchanged).
	Records, New, Changed int64
	// Outlets counts the outlets imported so far.
	Outlets    int
	StartedAt  time.Time
	FinishedAt time.Time
	Error      string
	// Sink is the sink the import is for; "" for every sink.
	Sink string
}

type importReq struct {
	since    time.Time
	outletID string
	sink     string
}

// SinkAppender is what an import for one sink needs of the buffer besides
// Sink: appending records for that sink alone, even those the dedupe index
// holds (store.Store.AppendFor).
type SinkAppender interface {
	AppendFor(sinks []string, in []store.Input, st *store.SourceState) (store.AppendResult, error)
}

var _ SinkAppender = (*store.Store)(nil)

// Import starts a historical import of transactions since the given day, for
// one outlet or (outletID "") all of them. It runs between polls.
func (s *Syncer) Import(since time.Time, outletID string) error {
	return s.ImportFor(since, outletID, "")
}

// ImportFor is Import for one sink (`import --sink NAME`, SPEC §6): the
// transactions fetched again are buffered for that sink alone when the
// other sinks have them already (unchanged since they were buffered), and
// for every sink when they are new or changed. sink "" is Import. The
// buffer must be a SinkAppender.
func (s *Syncer) ImportFor(since time.Time, outletID, sink string) error {
	if _, ok := s.sink.(SinkAppender); sink != "" && !ok {
		return errors.New("this buffer cannot import for one sink")
	}
	// The status is in place before the request is handed over: the
	// loop may start the import (and record its progress in s.imp) the
	// moment it is sent.
	s.mu.Lock()
	if s.imp != nil && s.imp.Running {
		s.mu.Unlock()
		return errors.New("an import is already running")
	}
	prev := s.imp
	s.imp = &ImportStatus{Running: true, Since: since, OutletID: outletID, Sink: sink, StartedAt: s.clock.Now()}
	s.mu.Unlock()
	select {
	case s.imports <- importReq{since: since, outletID: outletID, sink: sink}:
		return nil
	default:
		s.mu.Lock()
		s.imp = prev
		s.mu.Unlock()
		return errors.New("an import is already queued")
	}
}

func (s *Syncer) runImport(ctx context.Context, req importReq) {
	s.mu.Lock()
	conn, cfg := s.conn, s.cfg
	s.mu.Unlock()
	now := s.clock.Now().In(cfg.Location)
	since := req.since.In(cfg.Location)
	total := int(now.Sub(since).Hours()/24) + 1
	s.updateImport(func(is *ImportStatus) { is.DaysTotal = total })
	s.log.Info("Historical import started", "since", since.Format(time.DateOnly), "outlet", req.outletID, "sink", req.sink)

	err := func() error {
		if conn == nil {
			return errors.New("moka is not configured")
		}
		outlets, err := s.outlets(ctx, conn, cfg)
		if err != nil {
			return err
		}
		if req.outletID != "" && !slices.ContainsFunc(outlets, func(o Outlet) bool { return o.ID == req.outletID }) {
			return UnknownOutletError{ID: req.outletID, Known: outlets}
		}
		put := s.store
		if req.sink != "" {
			put = func(ctx context.Context, p Page, _ *store.SourceState) (store.AppendResult, error) {
				return s.storeFor(ctx, p, req.sink)
			}
		}
		for _, o := range outlets {
			if req.outletID != "" && o.ID != req.outletID {
				continue
			}
			err := conn.Transactions(ctx, o.ID, since, func(p Page) error {
				// An import never moves the watermark: the regular poll owns it.
				res, err := put(ctx, p, nil)
				if err != nil {
					return err
				}
				s.updateImport(func(is *ImportStatus) {
					is.Records += int64(len(p.Inputs))
					is.Changed += int64(res.Changed)
					is.New += int64(res.Appended - res.Changed - res.Refetched)
					if !p.Through.IsZero() {
						if d := int(p.Through.Sub(since).Hours()/24) + 1; d > is.DaysDone {
							is.DaysDone = min(d, total)
						}
					}
				})
				return nil
			})
			if err != nil {
				return fmt.Errorf("outlet %s: %w", o.ID, err)
			}
			s.updateImport(func(is *ImportStatus) { is.Outlets++ })
		}
		return nil
	}()
	s.updateImport(func(is *ImportStatus) {
		is.Running = false
		is.FinishedAt = s.clock.Now()
		if err != nil {
			is.Error = err.Error()
		} else {
			is.DaysDone = total
		}
	})
	if err != nil {
		s.log.Warn("Historical import failed", "err", err)
	} else {
		s.log.Info("Historical import finished")
	}
}

// storeFor is store for an import for one sink: unmappable records are set
// aside as always, the page's records are appended for that sink
// (SinkAppender.AppendFor); on ErrFull it waits for space.
func (s *Syncer) storeFor(ctx context.Context, p Page, sink string) (store.AppendResult, error) {
	app := s.sink.(SinkAppender) // checked by ImportFor
	if _, err := s.store(ctx, Page{Dead: p.Dead}, nil); err != nil {
		return store.AppendResult{}, err
	}
	var res store.AppendResult
	err := s.whileFull(ctx, func() (err error) {
		res, err = app.AppendFor([]string{sink}, p.Inputs, nil)
		return err
	})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) { // stopped while waiting for space
			return store.AppendResult{}, err
		}
		return store.AppendResult{}, stored(fmt.Errorf("buffer records for sink %s: %w", sink, err))
	}
	return res, nil
}

// UnknownOutletError is the error of an import for an outlet the business
// does not have (or the configuration does not sync); it lists the known
// ones.
type UnknownOutletError struct {
	ID    string
	Known []Outlet
}

func (e UnknownOutletError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown outlet %q; the outlets are: ", e.ID)
	if len(e.Known) == 0 {
		b.WriteString("none yet (Moka has not listed any)")
	}
	for i, o := range e.Known {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(o.ID)
		if o.Name != "" {
			fmt.Fprintf(&b, " (%s)", o.Name)
		}
	}
	return b.String()
}

func (s *Syncer) updateImport(f func(*ImportStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.imp != nil {
		f(s.imp)
	}
}
