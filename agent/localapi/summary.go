package localapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// The day at a glance (GET /v1/summary?days=N, issue 15): what the agent
// received from Moka per outlet and business day, and what each sink has of
// it, so that the owner can reconcile with the Moka back office.
//
// Money is a decimal string (SPEC §4: "150000", "13636.36"; "." as the
// separator, no exponent, never a float), in the outlets' currency
// (Summary.Currency). Counts are of sales (transaction records), never of
// versions: a sale edited, voided or refunded after it was first received
// is counted once, as it is now.

// Limits of GET /v1/summary?days=N.
const (
	DefaultSummaryDays = 14
	MaxSummaryDays     = 180
)

// SummaryBackend is implemented by a Backend that keeps the day summary.
// When the Backend does not implement it, GET /v1/summary answers 404.
type SummaryBackend interface {
	// Summary returns the last days business days (1 <= days <=
	// MaxSummaryDays), today included.
	Summary(ctx context.Context, days int) (Summary, error)
}

// Summary is the body of GET /v1/summary?days=N.
type Summary struct {
	// Days is the number of business days covered: N of the request.
	Days int `json:"days"`
	// From and To are the first and the last business day covered
	// (YYYY-MM-DD, both included). To is Today, or the day after when an
	// outlet east of moka.timezone has already started it (its business
	// day follows its own zone, as the records' business_date does) and
	// Days is more than 1: Today is always covered.
	From string `json:"from"`
	To   string `json:"to"`
	// Today is the business date now in moka.timezone.
	Today string `json:"today"`
	// Since is the business day the agent started keeping the summary: a
	// database from before the summary starts it empty on the day it is
	// upgraded, and the sales received before are not counted (unless they
	// change later), so days before Since show less than Moka has. "" when
	// the database had the summary from its creation.
	Since string `json:"since"`
	// Currency of every amount ("IDR"); "" when no sale was seen yet.
	Currency string `json:"currency"`
	// Sinks names the sinks whose deliveries are counted (SinkCount.Sink),
	// in the agent's fixed order: the enabled ones, and any other that
	// has deliveries in the window.
	Sinks []string `json:"sinks"`
	// Outlets has one entry per outlet the agent syncs or has sales of in
	// the window, in the order of the configuration (unknown ones last, by
	// id).
	Outlets []SummaryOutlet `json:"outlets"`
	// Totals is every outlet added up, one entry per business day, oldest
	// first (Days entries, days without sales included with zeros).
	Totals []SummaryDay `json:"totals"`
	// Total is the whole window, every outlet added up.
	Total SummaryFigures `json:"total"`
}

// SummaryOutlet is one outlet's days.
type SummaryOutlet struct {
	// ID is the Moka outlet id (the record's outlet_id).
	ID string `json:"id"`
	// Name is the outlet's name as Moka or the configuration gives it; ""
	// when unknown (an outlet no longer synced).
	Name string `json:"name"`
	// Days has one entry per business day, oldest first (Days entries,
	// days without sales included with zeros).
	Days []SummaryDay `json:"days"`
	// Total is the outlet's whole window.
	Total SummaryFigures `json:"total"`
}

// SummaryDay is the figures of one business day.
type SummaryDay struct {
	// Date is the business day (YYYY-MM-DD), in moka.timezone.
	Date string `json:"date"`
	SummaryFigures
}

// SummaryFigures are the numbers of a day, an outlet or a window.
type SummaryFigures struct {
	// Sales counts the sales that were not voided: status completed,
	// refunded or partially_refunded.
	Sales int64 `json:"sales"`
	// Amount is what those sales collected (the records' amount: Moka's
	// total collected), before refunds.
	Amount string `json:"amount"`
	// Refunds counts the sales refunded in full or in part (status
	// refunded or partially_refunded) and RefundAmount is what was given
	// back (the records' refund_amount).
	Refunds      int64  `json:"refunds"`
	RefundAmount string `json:"refund_amount"`
	// NetAmount is Amount - RefundAmount: what the day kept. The tray's
	// "Today" line shows it.
	NetAmount string `json:"net_amount"`
	// Voids counts the voided sales (status void) and VoidAmount is what
	// they would have collected; neither is in Sales nor Amount.
	Voids      int64  `json:"voids"`
	VoidAmount string `json:"void_amount"`
	// Received counts the transaction records received from Moka (every
	// status: Sales + Voids). Compare it with the Moka back office's
	// transaction count for the day.
	Received int64 `json:"received"`
	// Delivered has one entry per name in Summary.Sinks, in that order:
	// how many of the Received records each sink has taken in their
	// current version (a sale changed since is counted again once the
	// sink has the change). Delivered == Received means the sink is
	// complete for the day.
	Delivered []SinkCount `json:"delivered"`
	// Incomplete is set when part of the agent's day summary behind
	// these figures could not be read (a damaged value, started afresh
	// so that sales keep flowing): they may be wrong. The sales
	// themselves are still buffered and delivered. A total is incomplete
	// when one of its days is. Omitted when false.
	Incomplete bool `json:"incomplete,omitempty"`
}

// SinkCount is one sink's share of a day's records.
type SinkCount struct {
	// Sink is the sink's name ("upstream", "nats", "jurnal").
	Sink string `json:"sink"`
	// Delivered counts the records the sink acknowledged.
	Delivered int64 `json:"delivered"`
	// DeadLetters counts the records the sink rejected (set aside; see
	// `pwbi-agent queue dead --sink NAME`). Received - Delivered -
	// DeadLetters are still on their way.
	DeadLetters int64 `json:"dead_letters"`
}

// Summary fetches the last days business days (<= 0: the server's default,
// DefaultSummaryDays).
func (c *Client) Summary(ctx context.Context, days int) (Summary, error) {
	path := "/v1/summary"
	if days > 0 {
		path += "?days=" + strconv.Itoa(days)
	}
	var s Summary
	err := c.do(ctx, http.MethodGet, path, nil, &s)
	return s, err
}

func (s *Server) registerSummary(sb SummaryBackend) {
	s.mux.HandleFunc("/v1/summary", func(w http.ResponseWriter, r *http.Request) {
		if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		days := DefaultSummaryDays
		if v := r.URL.Query().Get("days"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxSummaryDays {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("days: want a whole number from 1 to %d", MaxSummaryDays))
				return
			}
			days = n
		}
		sum, err := sb.Summary(r.Context(), days)
		if err != nil {
			code := http.StatusInternalServerError
			var bad *BadRequestError
			if errors.As(err, &bad) {
				code = http.StatusBadRequest
				s.log.Info("Local API summary failed", "err", err)
			} else {
				// The tray asks every few seconds.
				s.apiSummaryLog.failed(r.Context(), s.log, "Local API summary failed", err)
			}
			writeError(w, code, err.Error())
			return
		}
		s.apiSummaryLog.ok(r.Context(), s.log, "Local API summary readable again")
		writeJSON(w, http.StatusOK, sum)
	})
}
