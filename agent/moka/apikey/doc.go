// Package apikey is the Moka POS connector for the "apikey" dialect of
// SPEC §5.1 (the integration guide): an HTTP client for its API, the mapper
// from its JSON to the unified records of package unified, and a Connector
// that puts both behind the sync loop's interface (package moka, the
// parent, which this package never imports: it hands the loop the
// vocabulary of agent/moka/internal/feed). The loop owns scheduling, state
// and the store; this package never touches the store beyond building
// store.Input values.
//
// # Client
//
// NewClient(ClientConfig, ClientOptions) gives a Client safe for concurrent
// use. Outlets lists the outlets (and is the credentials check);
// Transactions and Products walk the cursor-paginated lists, calling a
// function per page. Every request:
//
//   - first waits on the rate limiter, shared by all outlets of the business.
//     NewLimiter(rpm) spaces requests 60/rpm seconds apart with a burst of 1,
//     so no 60-second window ever holds more than rpm requests while a long
//     walk still uses the whole budget;
//   - sends "Authorization: Bearer {api_key}" and never puts the key in an
//     error or a log line (text coming back from the server is redacted too);
//   - is retried, at most MaxRetries times (default 8), after a 429 (waiting
//     Retry-After, in seconds or as an HTTP date, capped at 15 minutes, or
//     else backing off), a 408 or 5xx, a timeout or connection error, or a
//     2xx body that is not the expected JSON (truncated, HTML): exponential
//     backoff min(MaxBackoff, MinBackoff·2ⁿ) with jitter in [½, 1];
//   - stops at once on 401/403 (ErrUnauthorized: "invalid API key") and on
//     any other 4xx (*HTTPError);
//   - reads at most MaxBodyBytes (default 16 MiB; ErrResponseTooLarge).
//
// All waits go through the injected clockwork.Clock, so tests drive them with
// a fake clock; OnRequest and OnWait observe requests and waits (metrics,
// tests). A walk stops with ErrCursorLoop when the server hands back a
// cursor it already used in that walk (the page that repeats it is not
// delivered), and with ErrTooManyPages after MaxPages pages.
//
// # Mapping
//
// MapTransaction and MapProduct turn one raw record into a unified record;
// TransactionInput/ProductInput (and TransactionInputs/ProductInputs for a
// page) make the store inputs: key "moka/{business}/{outlet}/{id}", data the
// canonical JSON. Decisions:
//
//   - Numbers may come as JSON strings or numbers ("150000", "150000.50",
//     150000, 2, "2", "1.5"; surrounding spaces inside a string are
//     trimmed). They are read from their text, never through float64, and
//     must be plain decimals of at most 32 characters: exponents ("1e5"),
//     NaN, Inf, "+", thousands separators and ".5"/"5." are rejected, since
//     none of them is what the guide documents and guessing could misstate
//     revenue. Output decimals are canonical (trailing zeros dropped:
//     "150000.00" → "150000", "150000.50" → "150000.5"), so the same
//     content always yields the same bytes and record version; no digit is
//     ever rounded away (IDR amounts with sen keep them).
//   - amount = grand_total (required). tax_amount, discount_amount and the
//     optional service_charge_amount default to "0". subtotal is taken from
//     a subtotal field when present, else amount − tax − service charge: net
//     sales after discounts, before tax and service (the guide's example:
//     150000 − 13636 = 136364). status is always "completed" and
//     refund_amount "0": this dialect carries neither.
//   - payment_method = payment_type, or "unknown" when it is absent or empty
//     (as the guide's own mapping does). receipt_no is receipt_no, else
//     payment_no, else "".
//   - created_at is "YYYY-MM-DD HH:MM:SS" in MapContext.Location
//     (moka.timezone), or "YYYY-MM-DDTHH:MM:SS" likewise, or RFC 3339 with
//     an offset; fractional seconds are kept. timestamp is RFC 3339 in the
//     outlet's zone (e.g. +07:00) and business_date the local date, so a
//     sale at 23:30 in Jakarta stays on its day although it is 16:30 UTC.
//     Years outside 1970–9998 are rejected as a broken clock.
//   - line_items → items: item_name → name, quantity and price → unit_price
//     (both required per line), total = quantity × unit_price exactly (item
//     discounts are reported apart, not subtracted); optional variant_name,
//     sku, discount_amount and modifiers[{name, price}] are mapped when
//     present, and so are the catalogue ids item_id (else product_id),
//     variant_id and category, which the guide does not show ("" when
//     absent). A product's item_id is its id: this dialect has no
//     variants. Negative quantities and amounts are accepted: returns and
//     corrections are real data, and rejecting them would only move revenue
//     into the dead letters.
//   - The id (string or number) is required; outlet_id falls back to
//     MapContext.DefaultOutletID and one of them is required.
//   - Keys are matched exactly; unknown keys are ignored; a repeated key
//     takes its last value.
//
// A record that cannot be mapped gives a *MapError (kind, id and outlet when
// readable, JSON path of the field, reason): the caller keeps it aside with
// that reason. Any other error (ErrNoBusinessID) is a configuration problem.
// Records are parsed with a small single-pass validating scanner instead of
// encoding/json (several times faster on the ingest path); FuzzScanner
// holds it to json.Valid and FuzzMapTransaction checks the mapper's output.
//
// # Connector
//
// NewConnector(client, MapContext) implements moka.Connector: per outlet
// it walks transactions from the local day of the requested time (sending
// outlet_id, and also filtering by each record's outlet, as the guide does
// not promise the filter), maps each page into inputs and dead entries, and
// marks refused credentials with moka.ErrUnauthorized.
//
// # Shared with the oauth dialect
//
// The request discipline (rate limit, backoff, Retry-After, timeouts, body
// bounds, observers: wire.Pacer, with the retry loop and the common reading
// of an answer), the JSON scanner and field readers, MapContext, MapError
// and the errors other than ErrUnauthorized live in
// agent/moka/internal/wire, which the oauth dialect uses too; this package
// re-exports the names its API hands out (shared.go).
//
// The fake Moka API used by the tests is package apikeyfake.
package apikey
