// Package oauth is the Moka POS connector for the "oauth" dialect of
// SPEC §5.2: the real Moka Open API (reference/moka-open-api.md), with its
// OAuth2 authorization-code grant and rotating refresh tokens. It mirrors
// package apikey (the apikey dialect) and shares with it, through
// agent/moka/internal/wire, the request discipline (Pacer: the shared rate
// limit, backoff with jitter, Retry-After, timeouts, and the retry loop),
// the JSON scanner and field readers, the errors and MapError, and the
// store-input builders; shared.go re-exports the names this package's API
// hands out. The sync loop (package moka, the parent, which this package
// never imports: it hands the loop the vocabulary of
// agent/moka/internal/feed) owns scheduling, watermarks and the store,
// with two exceptions that need documents of their own: the grant (see
// Tokens) and the refund ledger (see Refunds below), both through narrow
// interfaces (Docs, LedgerStore) that *store.Store implements.
//
// # Authorization and tokens
//
// Authorizer starts an authorization: a one-time random state (256 bits,
// 15 minutes, compared in constant time) bound to the loopback redirect URI
// http://{local_api.listen}/oauth/moka/callback, and the URL of Moka's
// authorize page. Moka's documentation says nothing of PKCE, so there is
// none: the agent is a confidential client (it holds the client secret).
//
// Tokens holds the grant. Exchange trades the callback's code for it;
// Token hands out an access token, refreshing it five minutes before it
// expires (half its life for short-lived ones) or when Moka answers 401.
// Refreshes are serialised. Every refresh stores the rotated refresh token
// durably (TokenStore.SaveGrant: a bbolt document, collection "moka_oauth",
// committed with fsync) before the new access token is returned to anyone
// (see Tokens for why that order keeps the grant across a crash). When Moka
// refuses the refresh token (invalid_grant) the grant is marked revoked,
// durably, and every later call fails at once with an *AuthError without
// asking Moka: the syncer stops, status shows "re-authorize", nothing is
// retried until a new Exchange. An *AuthError matches
// moka.ErrUnauthorized and carries the hint a person needs.
//
// Secrets: Token (internal/secret's Secret) prints, logs and marshals as
// "<secret>". Errors and log lines name URL paths only; text from
// elsewhere (error bodies, transport errors) goes through Tokens.Redact,
// which replaces with "<redacted>" every token the manager has held, the
// client secret, and access_token=, refresh_token=, client_secret= and
// code= parameters (internal/secret's Redact and RedactParams).
//
// # API client
//
// Client (bearer token, 401 → one refresh and retry; 403 → *AuthError):
// Profile (GET /v1/profile/self: the business id when moka.business_id is
// empty), Outlets (GET /v1/businesses/{id}/outlets), Items (GET
// /v1/outlets/{id}/items, page/per_page until a short page or total_count)
// and Payments (GET /v3/outlets/{id}/reports/get_latest_transactions with
// since, until as epoch seconds with microseconds, per_page and
// reorder_type=ASC).
//
// The payments walk advances from the rows, never from next_url: the only
// next_url public code shows is the DESC one (until one step before the
// last row), which an ASC walk must not follow; the agent's next request
// asks from the newest row's time minus a microsecond, so rows sharing a
// time at a page boundary come again and are dropped by id rather than
// lost. It ends on completed=true, an empty page, or a page with nothing
// new that is not full; a full page of rows already delivered (more rows
// of one time than a page) doubles per_page up to MaxPaymentsPerPage.
// Rows before since or out of order, or a tie larger than the largest
// page, stop the walk with ErrNoProgress instead of skipping or looping.
// next_url may carry an access token: it is never followed, kept or
// logged. Envelopes the reference leaves open are read in both the
// {"data":{…}} and the bare form.
//
// # Mapping
//
// MapPayment (payments → unified.Transaction) and MapItem (items → one
// unified.Product per variant, plus modifier options) — see their
// documentation for the field rules. Sales' lines keep the catalogue ids
// (item_id, variant_id, category) and products carry item_id, variant_id
// and variant, so sales join the catalogue by id. Lines in GoBiz's shape
// (items[] with name, variant_name, variant_id, modifiers[].option_name,
// and transaction_date as the payment's date-time) are read too. Money is
// read from the JSON text into exact decimals (JSON numbers with
// fractions, "150000.0", strings, bounded scientific notation), never
// float64. A page is scanned once: the page decoder decodes each payment
// for the mapper as it goes (PaymentPage.MapPayments).
// FuzzMapPaymentOAuth and FuzzPaymentsPage hold the mapper and the
// single-pass page path to their contract.
//
// # Refunds
//
// A refund may come as flags on its sale (is_refunded, refund_amount,
// payment_refunds[] of whole payment records) or as a payment row of its
// own that points at the sale with parent_payment_id (MapRefund reads it).
// Such a row is never a sale: MapPayment refuses it, and the Connector
// records it in the refund ledger (refunds.go: documents "moka_refunds"
// and the sales index "moka_sales" in the agent's store, given with
// WithLedger) and applies it to the sale, which goes out as a new version
// of its record (status, refund_amount): at once when the sale is in the
// same page; after fetching the sale again (a 2 ms created_at window from
// the sales index) when an earlier walk had it; or, when the sale was
// never walked, whenever it comes (a later walk, an import), the refund
// waiting in the ledger meanwhile. Refunds count once each by id: a refund
// row that the sale also lists is not added again. The sale's new record
// is buffered in the same bbolt transaction as its ledger document.
//
// # Connector and the two passes
//
// Connector implements moka.Connector and moka.Updater. Per outlet
// the syncer runs Transactions (created_at since its watermark minus the
// overlap) and then Updates (time_filter=updated_at since its own
// watermark minus the overlap; on the first poll the overlap only): voids and refunds of sales older than the
// first pass's window change updated_at, not created_at, and only the
// second pass sees them. Each pass's watermark advances in the bbolt
// transaction that stores the page ending that pass. Unmappable records go
// to the dead letters with their reason.
//
// The fake Moka Open API used by the tests and the devstack is package
// oauthfake.
package oauth
