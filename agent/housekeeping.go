package agent

import (
	"context"
	"time"
)

const (
	// housekeepingEvery is how often the store is tidied.
	housekeepingEvery = time.Hour
	// dedupeRetention is how long the dedupe index remembers a record. It
	// exceeds the 180-day import window, so an import never re-sends a
	// record whose content did not change.
	dedupeRetention = 200 * 24 * time.Hour
)

// housekeeping keeps the database small on a service that runs for months:
// it forgets dedupe entries older than any import can reach and compacts
// the file once a drained backlog left it mostly empty.
func (a *Agent) housekeeping(ctx context.Context) {
	t := time.NewTicker(housekeepingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := a.store.PruneDedupe(time.Now().Add(-dedupeRetention)); err != nil {
			a.log.Warn("Pruning the dedupe index failed", "err", err)
		} else if n > 0 {
			a.log.Info("Pruned the dedupe index", "entries", n)
		}
		if err := a.store.MaybeCompact(); err != nil {
			a.log.Error("Compacting the database failed", "err", err)
		}
	}
}
