// Package feed is the vocabulary a Moka dialect hands the sync loop: the
// outlets of the business, pages of records already mapped to store inputs
// (with the records that could not be mapped set aside), and the error
// contracts the loop branches on (refused credentials and the hint a person
// needs, failures a retry may cure).
//
// The loop (package moka) re-exports every name here with an alias, so
// code outside agent/moka writes moka.Page. The dialects (agent/moka/apikey,
// agent/moka/oauth) import this package and never the loop: the producer
// of pages does not depend on its consumer. It holds types and sentinels,
// and WhileFull, the one loop in which the loop and the dialects write to
// a full buffer.
package feed

import (
	"context"
	"errors"
	"time"

	"github.com/pwbi/edge-agent/store"
)

// Gate is told when a write to the buffer waits for space, so that the
// pause shows in the status; the sync loop (*moka.Syncer) is one.
// WaitForSpace marks the pause and waits until space fires or ctx ends;
// SpaceAgain ends it.
type Gate interface {
	WaitForSpace(ctx context.Context, space <-chan struct{}) error
	SpaceAgain()
}

// WhileFull runs write until it does not fail with store.ErrFull, waiting
// through gate in between for the buffer's space channel (space is called
// before each write, so that a release between the write and the wait is
// not missed). A write that succeeds tells gate SpaceAgain. It returns
// write's other error, or the context's.
func WhileFull(ctx context.Context, space func() <-chan struct{}, write func() error, gate Gate) error {
	for {
		ch := space()
		err := write()
		if !errors.Is(err, store.ErrFull) {
			if err == nil {
				gate.SpaceAgain()
			}
			return err
		}
		if err := gate.WaitForSpace(ctx, ch); err != nil {
			return err
		}
	}
}

// ErrUnauthorized is returned (wrapped) by a connector whose credentials
// were refused. The syncer stops polling until its configuration changes.
var ErrUnauthorized = errors.New("moka rejected the credentials")

// Outlet is one outlet of the business.
type Outlet struct {
	ID   string
	Name string
}

// Dead is source data that could not be mapped, kept with its reason.
type Dead struct {
	Input  store.Input
	Reason string
}

// Page is one page of a walk, already mapped.
type Page struct {
	Inputs []store.Input
	Dead   []Dead
	// Cursor is the position after this page, kept for diagnosis.
	Cursor string
	// Last is true on the page that ends the walk.
	Last bool
	// Through is the newest source timestamp in the page (import progress).
	Through time.Time
}

// AuthHinter may be implemented by an error wrapping ErrUnauthorized: its
// AuthHint replaces the default status text (which speaks of
// moka.api_key) with what the person must do for that dialect, such as
// running `pwbi-agent moka connect`. (Added for the oauth dialect.)
type AuthHinter interface {
	AuthHint() string
}

// Temporary is implemented by errors that know whether a retry may cure
// them (an HTTP answer such as 503 or 429).
type Temporary interface {
	Temporary() bool
}
