package jurnalsink

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// The days not posted yet are indexed in memory. Posted days stay in the
// store for keepState (a late edit or void finds what the day's invoice
// holds), so reading every day document to find the open ones — as the
// status (asked every few seconds by the dashboard and the tray) and each
// minute's Tick did — meant decoding half a year of ledgers, seconds and
// hundreds of MB each time (BenchmarkStatusDailySummary). The index is
// loaded from the store once and kept in step by putDay, the only writer
// of day documents after that.

// openDay is an open day as the index holds it.
type openDay struct {
	Outlet, Date string
	Sales        int // sales in the ledger
}

// dayIndex is the index and what keeps it honest; it lives in shared,
// under shared.mu.
type dayIndex struct {
	open map[string]openDay // dayKey → the day; nil until loaded
	docs Docs               // the store open was loaded from
	// writes counts putDay's writes, so that a load that ran while one
	// happened (the status loads without holding work) is not kept.
	writes uint64
}

// putDay writes the day d and keeps the index of open days in step.
func (s *Sink) putDay(d *dayState) error {
	if err := putJSON(s.docs, dayKey(d.Outlet, d.Date), d); err != nil {
		return &storeError{err}
	}
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	ix := &s.sh.index
	ix.writes++
	if ix.open == nil || ix.docs != s.docs {
		return nil
	}
	if d.Posted {
		delete(ix.open, dayKey(d.Outlet, d.Date))
	} else {
		ix.open[dayKey(d.Outlet, d.Date)] = openDay{Outlet: d.Outlet, Date: d.Date, Sales: len(d.Sales)}
	}
	return nil
}

// openDays returns the days not posted yet, by date then outlet. The
// first call reads the store; the index is kept when no day was written
// meanwhile (always under work), else the next call reads again.
func (s *Sink) openDays() ([]openDay, error) {
	s.sh.mu.Lock()
	ix := &s.sh.index
	if ix.open != nil && ix.docs == s.docs {
		days := make([]openDay, 0, len(ix.open))
		for _, d := range ix.open {
			days = append(days, d)
		}
		s.sh.mu.Unlock()
		sortDays(days)
		return days, nil
	}
	writes := ix.writes
	s.sh.mu.Unlock()

	open := map[string]openDay{}
	err := s.docs.Docs(Collection, func(key string, value []byte) error {
		if !strings.HasPrefix(key, "d/") || bytes.HasPrefix(value, postedPrefix) {
			return nil
		}
		// Only what the index keeps: the sales' values are skipped, not
		// decoded.
		var d struct {
			Outlet string              `json:"outlet"`
			Date   string              `json:"date"`
			Sales  map[string]struct{} `json:"sales"`
			Posted bool                `json:"posted"`
		}
		if json.Unmarshal(value, &d) != nil || d.Posted {
			return nil
		}
		open[key] = openDay{Outlet: d.Outlet, Date: d.Date, Sales: len(d.Sales)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.sh.mu.Lock()
	if ix.writes == writes {
		ix.open, ix.docs = open, s.docs
	}
	s.sh.mu.Unlock()
	days := make([]openDay, 0, len(open))
	for _, d := range open {
		days = append(days, d)
	}
	sortDays(days)
	return days, nil
}

// postedPrefix starts the document of a posted day (dayState's first
// field). A document written before that order, or by hand, is decoded.
var postedPrefix = []byte(`{"posted":true,`)

func sortDays(days []openDay) {
	slices.SortFunc(days, func(a, b openDay) int { return strings.Compare(a.Date+"/"+a.Outlet, b.Date+"/"+b.Outlet) })
}
