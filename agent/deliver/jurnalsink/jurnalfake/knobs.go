package jurnalfake

import (
	"slices"
	"sort"
	"time"
)

// ---- knobs ----

// SetSkew moves the server's clock by d from Options.Clock (positive: the
// server is ahead of the client).
func (s *Server) SetSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew = d
}

// SetDown makes the server unreachable: every request's connection is
// closed without an answer. FailNext(n, 503) is the "down behind a proxy"
// variant.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// FailNext answers the next n requests with status (500, 502, 503, 504,
// 429 …) and {"message": <status text>}, without looking at them.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus = n, status
}

// LoseAnswerNext processes the next n requests that reach Jurnal fully (a
// create creates), then closes the connection without an answer: a
// response lost on the way back, the case that made batch_create retries
// duplicate invoices.
func (s *Server) LoseAnswerNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseN = n
}

// SetLatency delays every answer by d of real time (a client's timeout is
// real time) after authentication. A client that gives up meanwhile gets
// nothing and its request does not take effect.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetLooseFilters makes GET /products match its name and product_code
// filters, and GET /customers its display_name, as substrings, as q does:
// the API documents no exact matching, so a client must read the rows it
// gets, not trust the filter.
func (s *Server) SetLooseFilters(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.looseFilters = on
}

// SetRequireDigest makes a request with a body but no Digest header fail
// with 401. By default it is accepted, as the real API does.
func (s *Server) SetRequireDigest(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requireDigest = on
}

// SetNotFoundStatus sets the status of "not found" answers to lookups:
// http.StatusUnprocessableEntity (422, the default) or http.StatusNotFound.
// A '#' in a custom_id is always 404.
func (s *Server) SetNotFoundStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notFoundStatus = status
}

// RejectCustomID makes creating any document with this custom_id answer
// 422 {"errors":{"base":[msg]}}; an empty msg removes the rule.
func (s *Server) RejectCustomID(customID, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg == "" {
		delete(s.rejects, customID)
		return
	}
	s.rejects[customID] = msg
}

// SetRequestsPerMinute limits authenticated requests to n per minute of
// the server's clock (fixed windows starting on the minute, as an API
// gateway counts); the next one gets 429 MsgRateLimited with Retry-After
// (seconds to the next minute) and X-RateLimit-Remaining-Minute: 0.
// Requests answered 429 do not count. n ≤ 0 removes the limit.
func (s *Server) SetRequestsPerMinute(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rpm = n
}

// SetMonthlyQuota sets the plan's monthly API-call quota: limit calls a
// month, remaining of them left this month (by the server's clock, UTC).
// At 0 every authenticated request gets 429 MsgRateLimited with
// X-RateLimit-Remaining-Month: 0 and Retry-After (seconds to the next
// month) until the month turns and remaining is limit again. limit ≤ 0
// removes the quota. Every authenticated answer carries
// X-RateLimit-Limit-Month and X-RateLimit-Remaining-Month while a quota is
// set.
func (s *Server) SetMonthlyQuota(limit, remaining int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quotaLimit, s.quotaRemaining = limit, max(0, remaining)
	s.quotaMonth = monthOf(s.clock.Now().Add(s.skew))
}

// QuotaRemaining is what is left of the monthly quota (-1: no quota).
func (s *Server) QuotaRemaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quotaLimit <= 0 {
		return -1
	}
	s.rollQuotaLocked(s.clock.Now().Add(s.skew))
	return s.quotaRemaining
}

// ---- observations ----

// Requests returns every request received, in the order their handling
// ended (answered, refused or hung up); RequestLog.At is the arrival time.
func (s *Server) Requests() []RequestLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// InFlight is the number of requests being handled now (waiting out
// SetLatency, for instance).
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight
}

// Counts returns how many requests each route received (RequestLog.Route).
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int)
	for _, r := range s.requests {
		m[r.Route]++
	}
	return m
}

// PerMinute is the histogram of all requests received (whatever their
// answer) per minute of the server's clock, in time order; minutes without
// requests between the first and the last are included with 0.
func (s *Server) PerMinute() []MinuteCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return nil
	}
	counts := make(map[time.Time]int)
	first, last := s.requests[0].At.Truncate(time.Minute), s.requests[0].At.Truncate(time.Minute)
	for _, r := range s.requests {
		m := r.At.Truncate(time.Minute)
		counts[m]++
		if m.Before(first) {
			first = m
		}
		if m.After(last) {
			last = m
		}
	}
	var out []MinuteCount
	for m := first; !m.After(last); m = m.Add(time.Minute) {
		out = append(out, MinuteCount{Minute: m, Requests: counts[m]})
	}
	return out
}

// MaxInAnyMinute is the largest number of requests received within any 60
// seconds (a sliding window over arrival times, of the server's clock).
func (s *Server) MaxInAnyMinute() int {
	s.mu.Lock()
	times := make([]time.Time, len(s.requests))
	for i, r := range s.requests {
		times[i] = r.At
	}
	s.mu.Unlock()
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	best, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) >= time.Minute {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}
