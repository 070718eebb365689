package moka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/store"
)

func (s *Syncer) syncProducts(ctx context.Context, conn Connector, cfg Config, outlet string) error {
	src := source(cfg.BusinessID, outlet, "products")
	return conn.Products(ctx, outlet, func(p Page) error {
		st, _, err := s.sink.SourceState(src)
		if err != nil {
			return stored(err)
		}
		st.Source, st.Cursor, st.LastAttemptAt = src, p.Cursor, s.clock.Now()
		if p.Last {
			st.LastSyncAt, st.LastError, st.Cursor = s.clock.Now(), "", ""
		}
		_, err = s.store(ctx, p, &st)
		return err
	})
}

func (s *Syncer) syncTransactions(ctx context.Context, conn Connector, cfg Config, outlet string, start time.Time) error {
	return s.syncWalk(ctx, cfg, outlet, start, "transactions", conn.Transactions)
}

// syncWalk runs one watermarked walk of an outlet ("transactions", or
// "updates" for an Updater) from its watermark minus Overlap (or the
// initial backfill), and advances the watermark to start with the page that
// ends the walk.
func (s *Syncer) syncWalk(ctx context.Context, cfg Config, outlet string, start time.Time, what string,
	walk func(ctx context.Context, outletID string, from time.Time, emit func(Page) error) error) error {
	src := source(cfg.BusinessID, outlet, what)
	prev, ok, err := s.sink.SourceState(src)
	if err != nil {
		return stored(err)
	}
	from := start.AddDate(0, 0, -cfg.InitialBackfillDays)
	if what == "updates" {
		// A first updates walk need not repeat the backfill: the
		// transactions walk of this same poll has just fetched the
		// current state of every sale in the window. It only has to
		// catch up with the last Overlap.
		from = start.Add(-Overlap)
	}
	if ok && prev.Watermark != "" {
		wm, err := time.Parse(time.RFC3339Nano, prev.Watermark)
		if err != nil {
			return fmt.Errorf("bad watermark %q in sync state: %w", prev.Watermark, err)
		}
		from = wm.Add(-Overlap)
	}
	from = from.In(cfg.Location)
	s.log.Debug("Syncing transactions", "outlet", outlet, "pass", what, "from", from.Format(time.DateOnly))
	var fetched, dead int
	var buffered int64
	err = walk(ctx, outlet, from, func(p Page) error {
		fetched += len(p.Inputs)
		dead += len(p.Dead)
		st, _, err := s.sink.SourceState(src)
		if err != nil {
			return stored(err)
		}
		st.Source, st.Cursor, st.LastAttemptAt = src, p.Cursor, s.clock.Now()
		if p.Last {
			// The walk that started at start is complete: everything up to
			// start is in the buffer once this page is.
			st.Watermark = start.UTC().Format(time.RFC3339Nano)
			st.LastSyncAt, st.LastError, st.Cursor = s.clock.Now(), "", ""
		}
		res, err := s.store(ctx, p, &st)
		buffered += int64(res.Appended)
		return err
	})
	if err != nil {
		return err
	}
	attrs := []any{"outlet", outlet, "from", from.Format(time.DateOnly),
		"fetched", fetched, "new_or_changed", buffered, "unmappable", dead,
		"took", s.clock.Since(start).Round(time.Millisecond)}
	if what == "transactions" {
		s.log.Info("Outlet synced", attrs...)
	} else {
		s.log.Info("Outlet updates synced", attrs...)
	}
	return nil
}

// store writes one page: dead entries first (a crash before the records
// only repeats them), then records and state in one transaction. On ErrFull
// it waits for space and tries again: polling pauses, nothing is dropped.
func (s *Syncer) store(ctx context.Context, p Page, st *store.SourceState) (store.AppendResult, error) {
	for _, d := range p.Dead {
		id, err := s.sink.AddDead(d.Input, store.StageMap, d.Reason)
		if err != nil {
			return store.AppendResult{}, stored(fmt.Errorf("set aside unmappable record: %w", err))
		}
		if id != 0 { // 0: the same record was set aside by an earlier poll
			s.log.Warn("Moka record could not be mapped", "key", d.Input.Key, "reason", d.Reason, "dead_letter", id)
		}
	}
	var res store.AppendResult
	err := s.whileFull(ctx, func() (err error) {
		res, err = s.sink.Append(p.Inputs, st)
		return err
	})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) { // stopped while waiting for space
			return store.AppendResult{}, err
		}
		return store.AppendResult{}, stored(fmt.Errorf("buffer records: %w", err))
	}
	if res.Appended > 0 && st != nil {
		s.count(st.Source, int64(res.Appended))
	}
	return res, nil
}

// whileFull is feed.WhileFull on the buffer, with the syncer as the gate:
// the loop's page and import writes, like the oauth refund ledger's, pause
// and show it the same way.
func (s *Syncer) whileFull(ctx context.Context, write func() error) error {
	return feed.WhileFull(ctx, s.sink.Space, write, s)
}

// WaitForSpace marks the sync paused because the buffer is full (the
// status, OnFull and one log line say so) and waits until space, a channel
// from the buffer's Space taken before the write that failed, fires or ctx
// ends. The caller retries its write and calls SpaceAgain once one
// succeeds. It is exported for the dialects' own buffer writes (the oauth
// refund ledger), so that their pauses show like the loop's.
func (s *Syncer) WaitForSpace(ctx context.Context, space <-chan struct{}) error {
	if !s.setFull(true) {
		s.log.Warn("Buffer full: Moka sync paused until the sinks take records")
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-space:
		return nil
	}
}

// SpaceAgain ends a pause WaitForSpace began: a write to the buffer went
// through.
func (s *Syncer) SpaceAgain() { s.setFull(false) }

// count adds n to a source's buffered counter. It is cosmetic, so it is not
// worth holding up the records' transaction for.
func (s *Syncer) count(src string, n int64) {
	st, _, err := s.sink.SourceState(src)
	if err != nil {
		return
	}
	if st.Counts == nil {
		st.Counts = map[string]int64{}
	}
	st.Counts["buffered"] += n
	if err := s.sink.PutSourceState(st); err != nil {
		s.log.Warn("Saving sync counters failed", "err", err)
	}
}

// setFull records the buffer-full state and returns the previous one.
func (s *Syncer) setFull(v bool) bool {
	s.mu.Lock()
	old := s.full
	s.full = v
	s.mu.Unlock()
	if old && !v {
		s.log.Info("Buffer has space again: polling resumed")
	}
	if old != v && s.onFull != nil {
		s.onFull(v)
	}
	return old
}
