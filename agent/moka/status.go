package moka

import "time"

// Status is a snapshot of the syncer for /v1/status.
type Status struct {
	Outlets    []OutletStatus
	LastPollAt time.Time
	NextPollAt time.Time
	Polling    bool
	Full       bool // paused: the buffer is full
	// AuthError is set while Moka refuses the credentials: polling stops
	// until the configuration or the tokens change.
	AuthError string
	// PollError is why the last poll failed as a whole (the outlets could
	// not be listed), with its kind and how many polls in a row failed so.
	PollError     string
	PollErrorKind ErrorKind
	PollFailures  int
	Import        *ImportStatus
}

// Error is the reason polling does not work as a whole: refused
// credentials first, else the last poll's failure; empty when neither.
func (st Status) Error() string {
	if st.AuthError != "" {
		return st.AuthError
	}
	return st.PollError
}

// OutletStatus is one outlet's sync state.
type OutletStatus struct {
	ID, Name     string
	LastSyncAt   time.Time
	LastError    string
	Transactions int64 // transactions buffered (new or changed) since the first sync
	Products     int64
	// Failures counts the polls in a row (since the agent started) in
	// which this outlet failed; ErrorKind is the kind of the last failure
	// and Err the failure itself (nil when the last poll went well).
	Failures  int
	ErrorKind ErrorKind
	Err       error
}

// Status returns a snapshot, reading per-outlet state from the sink.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	st := Status{
		LastPollAt: s.lastPoll,
		NextPollAt: s.nextPoll,
		Polling:    s.polling,
		Full:       s.full,
		AuthError:  s.authErr,
	}
	st.PollError, st.PollErrorKind, st.PollFailures = s.pollErr.msg, s.pollErr.kind, s.pollErr.n
	failing := make(map[string]failure, len(s.failing))
	for k, v := range s.failing {
		failing[k] = v
	}
	if s.imp != nil {
		imp := *s.imp
		st.Import = &imp
	}
	ids := append([]string(nil), s.outletIDs...)
	if len(ids) == 0 {
		ids = append(ids, s.cfg.Outlets...)
	}
	names := make(map[string]string, len(s.names))
	for k, v := range s.names {
		names[k] = v
	}
	biz := s.cfg.BusinessID
	s.mu.Unlock()

	for _, id := range ids {
		os := OutletStatus{ID: id, Name: names[id]}
		if f, ok := failing[id]; ok {
			os.Failures, os.ErrorKind, os.Err = f.n, f.kind, f.err
		}
		if tx, ok, _ := s.sink.SourceState(source(biz, id, "transactions")); ok {
			os.LastSyncAt, os.LastError = tx.LastSyncAt, tx.LastError
			os.Transactions = tx.Counts["buffered"]
		}
		if up, ok, _ := s.sink.SourceState(source(biz, id, "updates")); ok {
			os.Transactions += up.Counts["buffered"] // changed sales found by the updates pass
		}
		if pr, ok, _ := s.sink.SourceState(source(biz, id, "products")); ok {
			os.Products = pr.Counts["buffered"]
			if os.LastError == "" {
				os.LastError = pr.LastError
			}
		}
		st.Outlets = append(st.Outlets, os)
	}
	return st
}

func source(biz, outlet, what string) string {
	return "moka/" + biz + "/" + outlet + "/" + what
}
