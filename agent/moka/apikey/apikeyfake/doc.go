// Package apikeyfake is a fake Moka POS API in the apikey dialect of SPEC §5.1
// (the integration guide), over real HTTP. Tests, benchmarks and the demo
// stack run the connector against it; it is first-class code, not a stub.
//
// # Serving
//
// New builds the fake with deterministic data; Start listens on a loopback
// port (URL, Close), like httptest.Server; Handler serves it anywhere else
// (the demo binds a fixed address). Endpoints, all GET with
// "Authorization: Bearer {key}" and business_id={id}:
//
//	/v1/outlets                      {"outlets":[{"id","name","address"}]}
//	/v1/transactions?from_date=YYYY-MM-DD[&outlet_id=O][&limit=N][&cursor=C]
//	/v1/products[?limit=N][&cursor=C]
//	                                 {"data":[…],"next_cursor":"…"}
//
// A wrong or missing key answers 401 {"error":"invalid api key"}, another
// business 403, a bad from_date, limit or cursor 400, another method 405.
// limit defaults to and is capped at 100. from_date selects sales whose
// local date (Options.Location) is on or after it; outlet_id filters by
// outlet. Cursors are opaque, bound to their query, and stable while new
// sales arrive (a cursor is a position, not an offset). The end of a walk
// is shown as an absent, null or empty next_cursor, varying by request.
//
// # Data
//
// Seeded and deterministic: the same Options give the same outlets (names
// with Unicode: "Café Sénja Bintaro", "Kedai Kopi Nusantara — Kemang"),
// menu ("Es Kopi Susu Gula Aren", "Nasi Goreng Spésial", "Teh Tarik 🍵",
// names with quotes and <, >, &) and sales. Each outlet sells TxPerDay
// times a day between 07:00 and 22:00 local, over Days days up to Now.
// Amounts are IDR in thousands, with a 10 % promo on some sales and PB1 tax
// of 10 % included in the price (tax_amount = grand_total × 10/110, rounded
// to the rupiah or, for one sale in five, to the sen: "13636.36"). One menu
// item costs "1500.50". Like the real API, the JSON is untidy:
//
//   - numbers mostly as strings ("150000"), sometimes with ".00", sometimes
//     as JSON numbers; quantities as "2" or 2, weighed items as "1.5";
//   - optional fields missing: no tax_amount (~5 %), no line_items (~3 %,
//     a custom-amount sale), no payment_type (~3 %) or an empty one;
//     receipt_no on most sales, payment_no on some, neither on others;
//   - created_at as "YYYY-MM-DD HH:MM:SS" local time, ~3 % as RFC 3339
//     with the zone's offset;
//   - unknown fields (table_no, customer, note) on some sales;
//   - the pagination glitch: about one page in five begins with the last
//     sale of the previous page (Options.NoPageRepeat turns it off);
//   - edits: ~4 % of sales change 5–90 minutes after they were made (a line
//     added or a quantity raised; grand_total and tax follow), visible to
//     fetches after that time (Options.NoAutoEdits turns it off); Edit(id)
//     edits a sale on demand.
//
// With Options.Live the outlets keep selling: sales and edits appear as
// Options.Now passes their time (drive it with a fake clock in tests).
// Without it the data is frozen at Now as of New.
//
// # Faults
//
// All knobs are safe to call while requests are in flight:
// FailNext(n, status, retryAfter) answers the next n requests with status
// (429 with or without Retry-After, 500, 503, …); TruncateNext(n) cuts the
// next n JSON bodies in half; DropNext(n) closes the connection without an
// answer; RepeatCursorNext(n) hands a cursor back as its own next_cursor;
// SetDelay(d) delays answers by real time; SetUnauthorized(true) answers 401
// to everything (a revoked key); Options.RequestsPerMinute enforces the rate
// limit server-side with 429 and Retry-After.
//
// # Observations
//
// Requests returns every request (method, path, query, time from
// Options.Now, status). Truth returns every visible sale with its current
// content (each once, whatever the glitches); Expected returns the unified
// transactions a correct agent must produce from them, computed from the
// generator's state rather than from the JSON; Transactions returns the JSON
// as served; Products returns the catalogue. Corrupt(id, field, value)
// breaks one sale's JSON (a bad number, a missing created_at) to check that
// bad records are set aside, never dropped; Expected leaves such sales out.
package apikeyfake
