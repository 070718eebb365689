package moka

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ImportStatus is the progress of a historical import.
type ImportStatus struct {
	Running   bool
	Since     time.Time
	OutletID  string
	DaysDone  int
	DaysTotal int
	Records   int64
	StartedAt time.Time
	Error     string
}

type importReq struct {
	since    time.Time
	outletID string
}

// Import starts a historical import of transactions since the given day, for
// one outlet or (outletID "") all of them. It runs between polls.
func (s *Syncer) Import(since time.Time, outletID string) error {
	s.mu.Lock()
	running := s.imp != nil && s.imp.Running
	s.mu.Unlock()
	if running {
		return errors.New("an import is already running")
	}
	select {
	case s.imports <- importReq{since: since, outletID: outletID}:
		s.mu.Lock()
		s.imp = &ImportStatus{Running: true, Since: since, OutletID: outletID, StartedAt: s.clock.Now()}
		s.mu.Unlock()
		return nil
	default:
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
	s.log.Info("Historical import started", "since", since.Format(time.DateOnly), "outlet", req.outletID)

	err := func() error {
		if conn == nil {
			return errors.New("moka is not configured")
		}
		outlets, err := s.outlets(ctx, conn, cfg)
		if err != nil {
			return err
		}
		for _, o := range outlets {
			if req.outletID != "" && o.ID != req.outletID {
				continue
			}
			err := conn.Transactions(ctx, o.ID, since, func(p Page) error {
				// An import never moves the watermark: the regular poll owns it.
				if _, err := s.store(ctx, p, nil); err != nil {
					return err
				}
				s.updateImport(func(is *ImportStatus) {
					is.Records += int64(len(p.Inputs))
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
		}
		return nil
	}()
	s.updateImport(func(is *ImportStatus) {
		is.Running = false
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

func (s *Syncer) updateImport(f func(*ImportStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.imp != nil {
		f(s.imp)
	}
}
