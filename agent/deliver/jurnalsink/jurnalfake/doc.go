// Package jurnalfake is a fake of the Jurnal (Mekari) accounting API, the
// parts a sales integration uses (SPEC §6.3, reference/jurnal-api.md),
// served over real HTTP. It is first-class code like net/http/httptest:
// the Jurnal sink's tests, the devstack and demos run against it, so it
// authenticates, validates and answers as the real service does, with its
// known quirks and fault knobs, and it records every document so that tests
// can reconcile totals exactly.
//
// # Serving
//
// New listens at once on Options.Addr (a loopback port by default) and
// panics if it cannot, like httptest.NewServer; NewServer does the same for
// a test and closes at its end; NewUnstarted plus Listen or Handler serve
// it elsewhere. URL is the base ("http://127.0.0.1:port", standing for
// https://api.mekari.com); the API lives under URL()+APIPrefix
// ("/public/jurnal/api/v1/"). Any other path answers 404 MsgNoRoute.
//
// # Authentication (Mekari HMAC)
//
// Every request under APIPrefix must carry
//
//	Authorization: hmac username="<client id>", algorithm="hmac-sha256",
//	    headers="date request-line", signature="<base64 HMAC-SHA256(secret,
//	    "date: <Date>\n<METHOD> <path+query as sent> HTTP/1.1")>"
//	Date: <RFC 7231 date>, at most MaxClockSkew (300 s) from the server's clock
//
// (mekari-engineering/devcenter-kb docs/hmac-authentication; the query is
// part of the request line, as the tokopedia-treelogy-dev tests show). The
// signed headers are taken in the order named and must include date and
// request-line. A body may carry Digest: SHA-256=<base64 sha256(body)>; a
// Digest that does not match is refused. A body without Digest is accepted,
// as the real API does (tokopedia-treelogy-dev's client never sends one and
// posts invoices live); SetRequireDigest makes it mandatory.
//
// Failures are 401 {"message": …} with the texts of the Kong hmac-auth
// plugin, whose header format Mekari's is (that Mekari's gateway is Kong is
// an inference): no Authorization → MsgUnauthorized; not an hmac-sha256
// header over date and request-line, or an unknown username →
// MsgSignatureInvalid; Date missing, unparseable or out of the 300 s window
// → MsgDateOutOfRange; wrong signature or Digest → MsgSignatureMismatch.
// Every answer carries the server's own Date header (its clock, SetSkew
// included), from which a client can learn its skew.
//
// # Endpoints
//
// Bodies are JSON envelopes as Jurnal's ({"sales_invoice": {…}}); unknown
// fields are ignored; quantities, rates and amounts may be JSON numbers or
// numeric strings. Answers render money as strings with a fraction
// ("200000.0", "13636.36") plus *_currency_format ("Rp. 200.000,00"), and
// dates as DD/MM/YYYY (devcenter-kb webhook schemas; edrus.gitbook.io).
// Creates answer 201. Lists take page and page_size (default 20, at most
// 100) and carry total_count, current_page and total_pages.
//
//	GET  products?q=&name=&product_code=   {"products":[{id,name,product_code,sell_price_per_unit,unit{name},…}]}
//	POST products     {"product":{name,product_code,sell_price_per_unit,unit_name,product_categories_string}}
//	GET  products/{id}
//	GET  customers?q=&display_name=        also under contacts/ ({"contacts":[…]})
//	POST customers    {"customer":{display_name,email}}
//	GET  customers/{id}
//	GET  accounts | taxes | warehouses | payment_methods
//	POST sales_invoices {"sales_invoice":{transaction_date,due_date,term_name,person_name,custom_id,
//	     reference_no,transaction_no,memo,tags,warehouse_name,address,shipping_address,deposit,
//	     deposit_to_name,transaction_lines_attributes:[{product_code|product_name,quantity,rate,
//	     discount,description,line_tax_name}]}}
//	GET  sales_invoices?page&page_size&sort_key=transaction_date&sort_order=asc|desc
//	GET  sales_invoices/{id|transaction_no|custom_id}
//	POST sales_invoices/batch_create {"sales_invoices":[{…}|{"sales_invoice":{…}},…]}
//	POST receive_payments {"receive_payment":{transaction_date,records_attributes:[{transaction_no,
//	     amount}],payment_method_name|payment_method_id,deposit_to_name,custom_id,memo,tags,is_draft}}
//	POST sales_returns {"sales_return":{transaction_date,sales_invoice_id,custom_id,memo,tags,
//	     transaction_lines_attributes:[{product_code|product_name,quantity,rate,description}]}}
//	POST journal_entries {"journal_entry":{transaction_date,transaction_no,custom_id,memo,tags,
//	     transaction_account_lines_attributes:[{account_name,debit|credit,description}]}}
//	GET  receive_payments/{key}, sales_returns/{key}, journal_entries/{key}   (key as for invoices)
//
// A key is tried as an id, then a transaction_no, then a custom_id (the
// first created, where several share it).
//
// A sales invoice needs its contact (person_name) and every line's product
// (product_code, else product_name; names match case-insensitively) to
// exist, as the Jurnal integration guideline says; a line needs a quantity
// above 0 and a rate (no default from the product's price); its discount is
// a percent (tokopedia-treelogy-dev: money discounts are folded into the
// rate). Its amounts are exact decimals: a line's amount is quantity × rate
// × (100 − discount) / 100 rounded to cents, its tax amount × the tax rate
// / 100 rounded to cents (taxes PPN 11 % and PB1 10 % by default); the
// total is the sum of both. deposit with deposit_to_name pays at creation.
// A payment pays invoices named by transaction_no, at most what remains of
// each; a sales return (the reversing document of a void or refund) takes
// back at most the invoiced quantity of products of the invoice, at the
// invoice line's rate, discount and tax unless a rate is sent; a journal
// entry must balance.
//
// # Errors and quirks
//
// Gateway errors are {"message": …}; Jurnal's are {"errors": …}, an object
// of field → messages for validation (422) and a string otherwise — the
// shapes tokopedia-treelogy-dev's client parses ({message}/{errors}).
//
//   - custom_id is unique per document kind: a repeat create is 409
//     {"id": <existing id>, "custom_id", "errors": MsgDuplicateCustomID}
//     (the only error body carrying an id, as that project notes), checked
//     before any validation.
//   - Not found is 422 {"errors": "Data not found"} (MsgNotFound), not 404
//     (tokopedia-treelogy-dev sync.js); SetNotFoundStatus(404) gives the
//     other answer seen.
//   - A '#' in a custom_id breaks both halves (seen live by that project):
//     the uniqueness check does not see it (a repeat creates a duplicate)
//     and GET by it answers 404. A '/' makes the key another path.
//   - batch_create does not de-duplicate custom_id at all (472 invoices
//     became 891 there): every valid item is created, 200
//     {"sales_invoices":[…],"errors":[{index,custom_id,errors}]}, 422 when
//     none is.
//   - 422 MsgMemoEmoji for an emoji in a memo; MsgDiscountTooLarge for a
//     discount over 100 (a money discount read as a percent); "… is too long
//     (maximum is N characters)" for address and shipping_address over
//     AddressLimit (250, sourced) and memo, custom_id, reference_no, names
//     and tags over MemoLimit/StringLimit (the fake's choice); unknown
//     contact, product, tax, warehouse, account or payment method: `<Kind>
//     "<name>" does not exist`; a payment without method:
//     MsgPaymentMethodMissing (sourced).
//   - Limits: SetRequestsPerMinute counts authenticated requests per
//     minute of the server's clock (fixed windows); SetMonthlyQuota is the
//     plan's monthly call quota. Both answer 429 MsgRateLimited with
//     Retry-After and X-RateLimit-Limit/Remaining-Minute|Month headers, the
//     Kong rate-limiting plugin's shape (no public source gives Mekari's).
//
// # Knobs
//
// SetSkew (the server's clock off the injected Options.Clock), SetDown
// (connections closed, no answer), FailNext (n answers of a status, e.g.
// 503), LoseAnswerNext (processed, then the connection closed: the lost
// answer of a timed-out create), SetLatency (real time), SetRequireDigest,
// SetNotFoundStatus, RejectCustomID (422 with a message),
// SetRequestsPerMinute, SetMonthlyQuota, Seed* (products, contacts,
// accounts, taxes, warehouses, payment methods; Options seed them at New,
// with DefaultAccounts — Kas, Bank BCA, … — and the other Default* lists
// when nil).
//
// # Truth
//
// Invoices, Invoice, Payments, Returns, JournalEntries, Products, Contacts,
// Accounts: copies of what the fake holds, with exact decimal amounts.
// Requests: every request (server time, route, status, custom_id, first
// error message, whether it took effect); Counts per route; PerMinute, the
// per-minute histogram of requests received; MaxInAnyMinute, the most in
// any sliding 60 s. Reset returns to the state after New.
//
// All methods are safe for concurrent use.
package jurnalfake
