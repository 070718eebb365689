// Package wire holds what both Moka dialects (agent/moka/apikey and
// agent/moka/oauth) share below their own API rules, so that neither
// reaches into the other:
//
//   - the request discipline: Pacer (client-side rate limit, exponential
//     backoff with jitter and Retry-After — both internal/backoff's —,
//     per-attempt timeout, body bounds,
//     the OnRequest/OnWait observations, all on one injected clock), Do
//     (one attempt), Retry (the attempts of one request) and Judge (the
//     common reading of a GET's answer); the errors both clients return
//     (ErrBadResponse, ErrResponseTooLarge, ErrCursorLoop,
//     ErrTooManyPages, *HTTPError); the redaction helpers are
//     internal/secret's;
//   - the strict single-pass JSON Scanner of the ingest path and the field
//     readers (IDField, TextField, DecimalField, …): numbers are read from
//     their text, never through float64;
//   - the mapping contract: MapContext, *MapError, ErrNoBusinessID, the
//     store-input builders and DeadEntry.
//
// What a status or a field means for one API stays with its dialect. The
// dialects re-export the names their own API hands out (ClientOptions,
// MapContext, MapError, the errors) with aliases. This package imports
// only agent/moka/internal/feed of the Moka subtree, never the loop or a
// dialect.
package wire
