package moka

import (
	"context"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/store"
)

// The vocabulary a Connector hands the loop is declared in package feed,
// which the dialects import instead of this package; these aliases are the
// names the rest of the agent uses.
type (
	// Outlet is one outlet of the business.
	Outlet = feed.Outlet
	// Dead is source data that could not be mapped, kept with its reason.
	Dead = feed.Dead
	// Page is one page of a walk, already mapped.
	Page = feed.Page
	// AuthHinter may be implemented by an error wrapping ErrUnauthorized:
	// its AuthHint replaces the default status text (which speaks of
	// moka.api_key) with what the person must do for that dialect, such as
	// running `pwbi-agent moka connect`.
	AuthHinter = feed.AuthHinter
	// Temporary is implemented by errors that know whether a retry may
	// cure them (an HTTP answer such as 503 or 429).
	Temporary = feed.Temporary
)

// ErrUnauthorized is returned (wrapped) by a Connector whose credentials were
// refused. The syncer stops polling until its configuration changes.
var ErrUnauthorized = feed.ErrUnauthorized

// Connector is one Moka dialect, mapping to unified records. Its methods
// call emit for every page in order and stop at the first error emit
// returns.
type Connector interface {
	Outlets(ctx context.Context) ([]Outlet, error)
	Products(ctx context.Context, outletID string, emit func(Page) error) error
	Transactions(ctx context.Context, outletID string, from time.Time, emit func(Page) error) error
}

// Updater is implemented by a connector whose API can also list the sales
// that changed since a time, whatever their creation time (the oauth
// dialect's time_filter=updated_at): voids and refunds of sales older than
// the transactions window. After an outlet's transactions the syncer walks
// its updates too, with their own watermark (source ".../updates") kept by
// the same rules: it advances in the bbolt transaction that stores the page
// ending the walk. (Added for the oauth dialect; the apikey connector does
// not implement it.)
type Updater interface {
	Updates(ctx context.Context, outletID string, from time.Time, emit func(Page) error) error
}

// Sink is what the syncer needs of the store.
type Sink interface {
	Append(in []store.Input, st *store.SourceState) (store.AppendResult, error)
	AddDead(in store.Input, stage, reason string) (uint64, error)
	SourceState(source string) (store.SourceState, bool, error)
	PutSourceState(st store.SourceState) error
	Space() <-chan struct{}
}

var _ Sink = (*store.Store)(nil)
