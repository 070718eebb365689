// Package moka runs the Moka POS sync: on a schedule (and on "Sync now")
// it walks every outlet of the business, products first, then transactions,
// through a Connector (one per Moka dialect) and appends what it gets to the
// store, advancing each outlet's watermark in the same transaction as the
// records of the page that completes the walk (SPEC §5.3).
//
// The first sync of an outlet reaches back Config.InitialBackfillDays; later
// ones start from the last successful sync minus Overlap, because the Moka
// API filters by day and late edits must be caught. Re-fetched transactions
// cost nothing downstream: the store forwards a record again only when its
// content changed.
//
// A connector that also implements Updater (the oauth dialect) gets a
// second walk per outlet after its transactions: the sales changed since
// the last such walk (voids and refunds of older sales), with its own
// watermark under the same rules; its first walk reaches back Overlap only,
// since the backfill has just fetched the current state.
//
// When the buffer is full the walk blocks on the page it holds until the
// forwarder frees space; nothing is dropped and the watermark stays put.
//
// # Layout of the Moka subtree
//
// This package is the loop and the interfaces it consumes (Connector,
// Updater, Sink). The dialects implement Connector: agent/moka/apikey (the
// integration guide's API key dialect, SPEC §5.1) and agent/moka/oauth (the
// Moka Open API with OAuth, SPEC §5.2), each with its fake beside it
// (apikey/apikeyfake, oauth/oauthfake). What a dialect hands the loop
// (Outlet, Page, Dead, ErrUnauthorized, AuthHinter, Temporary) is declared
// in agent/moka/internal/feed and re-exported here, so that the dialects
// never import this package; the request discipline, JSON scanner and
// field readers both dialects use live in agent/moka/internal/wire.
//
// The oauth dialect keeps a refund ledger of its own in the store (refund
// rows waiting for their sale, an index of the sales walked): a refund that
// arrives as a payment row of its own is applied to its sale there, and
// the sale's new record is buffered with the ledger's document in one
// transaction, outside the pages this loop writes (agent/moka/oauth,
// refunds.go).
//
// Files: connector.go (the interfaces and the feed aliases), syncer.go
// (schedule, per-outlet passes, failures), walk.go (watermarked walks and
// buffer writes), status.go, failure.go (error kinds), import.go
// (historical import).
package moka
