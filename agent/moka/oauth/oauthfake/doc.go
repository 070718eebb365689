// Package oauthfake is a fake of the Moka Open API (the oauth dialect of
// SPEC §5.2, reference/moka-open-api.md) with its OAuth2 server, over real
// HTTP. Tests, benchmarks and the devstack run the agent against it; it is
// first-class code, not a stub. It mirrors package apikeyfake (the apikey
// dialect's fake) in structure.
//
// # Serving
//
// New builds the fake with deterministic data; Start listens on a loopback
// port (URL, Close), like httptest.Server; Handler serves it anywhere else.
//
// OAuth (Doorkeeper-style):
//
//	GET  /oauth/authorize?response_type=code&client_id&redirect_uri&state[&scope]
//	     approves at once with 302 {redirect_uri}?code=…&state=… (what a
//	     test follows), or with Options.ConsentPage shows a page whose
//	     "Authorize" link (/oauth/authorize/decide) does; "Deny" redirects
//	     with error=access_denied.
//	POST /oauth/token  grant_type=authorization_code (code, redirect_uri) or
//	     refresh_token; client_id/client_secret in the form or Basic auth.
//	     {"access_token","token_type":"Bearer","expires_in","refresh_token",
//	     "scope","created_at"}; errors {"error":"invalid_grant"|
//	     "invalid_client"|…,"error_description"} with 400/401.
//	POST /oauth/revoke token=…
//
// Refresh tokens rotate: every refresh issues a new pair. By default the old
// pair stays valid until the new access token is first used (Doorkeeper's
// refresh_token_revoked_on_use), so a client that stores the new refresh
// token before using the new access token never loses the grant;
// Options.StrictRotation revokes it at once. Codes are one-time, bound to
// their redirect_uri and valid 10 minutes.
//
// API, with "Authorization: Bearer {access_token}" (or a legacy
// ?access_token=); a missing, expired or revoked token gets 401
// {"error":"invalid_token"} with WWW-Authenticate, other errors
// {"meta":{"code","error_type","error_message"}}:
//
//	GET /v1/profile/self                         {"data":{id,email,full_name,business_id,outlet_ids,outlet_names}}
//	GET /v1/businesses/{id}/outlets              {"data":{"outlets":[…],"total_count"}}
//	GET /v1/outlets/{id}/items?page&per_page     {"data":{"items":[…],"total_count","page","per_page"}}
//	GET /v3/outlets/{id}/reports/get_latest_transactions
//	    ?since&until (epoch seconds, fractions allowed; both inclusive)
//	    &per_page (default 50, at most 100)&reorder_type=ASC|DESC (default DESC)
//	    &time_filter=created_at|updated_at|synchronized_at
//	                                             {"data":{"payments":[…],"next_url":"…","completed":bool}}
//
// next_url is an absolute URL carrying, like the real API, access_token=…
// of the request. Its shape is Options.NextURL (SetNextURLStyle changes
// it): NextURLSince (the default) repeats the query from the last row's
// time (since for ASC, until for DESC; that row comes again first on the
// next page); NextURLUntil is the only shape public code shows, the query
// with until a microsecond before the last row whatever the order;
// NextURLMissing sends none; NextURLRepeat sends the request's own URL.
// completed is true on the last page in every style.
//
// # Data
//
// Seeded and deterministic. Outlets in different zones (Jakarta +07, Bali
// +08, Jayapura +09) with their own tax (PB1 10 %, 11 %) and service charge
// (5 %, 5.5 %, none; taxed or not). Items with variants (prices on the
// variants), categories and modifier groups. Sales between 07:00 and 22:00
// local time with every field of the reference's list: money as JSON
// numbers with fractions (discounts 5100.1, taxes to four decimals), some
// integers written as 150000.0; created_at/updated_at/synchronized_at as
// ISO 8601 with milliseconds and the outlet's offset; checkouts with
// variants, modifiers and per-line discounts (sometimes negative), deleted
// lines; payment_taxes (negative totals at one outlet, as in the GoBiz
// sample), payment_gratuities, payment_discounts (negative), customer data
// on some sales (which the agent must never log), tablets syncing late.
// About 6 % of the sales of more than a week ago were voided or refunded
// (fully, or one unit: refund_type "partial", refunded_quantity) during the
// last two days: their updated_at moved, their created_at did not, so only
// a time_filter=updated_at poll sees the change (Options.NoEvents turns
// this off). Void and Refund make such changes on demand. Refunds add up
// (a full refund is what is left of the total).
//
// A refund shows in one of two shapes. RefundFlags (the default): the sale
// changes (is_refunded, refund_amount, refund_type, payment_refunds[] with
// one whole payment record per refund) and its updated_at moves.
// RefundRows: a payment row of its own, parent_payment_id = the sale,
// created and updated when the refund was made, with refund_amount, a
// negative total_collected and the refunded lines; the sale's JSON does
// not change. Options.RefundStyle picks the shape of the automatic refunds
// (RefundMixed: about half each); Refund makes a flagged refund,
// RefundRow a refund row. Expected shows a refunded sale the same way in
// both shapes, and never lists a refund row.
//
// Options.SameTimeSales makes that share of the sales share their
// created_at, to the millisecond, with the outlet's previous sale (split
// bills), so that pages get cut inside a group of one time.
//
// Sales' checkouts carry item_id, item_variant_id and category_name: the
// ids of the items and variants /v1/outlets/{id}/items serves.
//
// # Faults
//
// FailNext (API: 429 with or without Retry-After, 5xx), FailTokenNext,
// TruncateNext (half a JSON body), SetDelay, SetNextURLHost (a next_url
// pointing elsewhere), ExpireAccessTokens (401 until the client
// refreshes), Revoke (the owner revokes the app: 401 and invalid_grant),
// HoldNewTokens/Held/Release (hold the first use of a refreshed token, to
// kill a client there), Options.OnTokenIssued (a hook after a token answer
// is flushed), Options.RequestsPerMinute (server-side 429).
//
// # Observations
//
// Requests (method, path, query, time, status, whether a bearer header was
// used), BoundaryTies (answers cut inside a group of rows of one time),
// TokenEvents (issues and first uses of token pairs, in order),
// IssuedSecrets (every token, for leak checks), Truth, Payments and Payment
// (the JSON as served), and Expected/ExpectedProducts: the unified records
// a correct agent must produce, computed from the generator's state rather
// than by parsing the JSON, for exact comparison.
package oauthfake
