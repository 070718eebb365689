package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pwbi/edge-agent/agent/localapi"
)

// syncAgent is a running agent's local API for sync: POST /v1/sync is
// accepted, GET /v1/status serves sts in turn, the last one for ever.
func syncAgent(t *testing.T, sts ...localapi.Status) string {
	t.Helper()
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/sync":
			w.WriteHeader(http.StatusAccepted)
		case "/v1/status":
			mu.Lock()
			st := sts[0]
			if len(sts) > 1 {
				sts = sts[1:]
			}
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(st)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return langConfig(t, "en", strings.TrimPrefix(srv.URL, "http://"))
}

// natsOnly is an agent delivering to NATS alone (the PWBI cloud, the first
// sink, is not set up), with pending records for it.
func natsOnly(pending int64, online bool, lastError string) localapi.Status {
	return localapi.Status{
		State: localapi.StateOK,
		Queue: localapi.QueueStatus{Pending: pending},
		Sinks: []localapi.SinkStatus{
			{Name: "upstream", Title: "PWBI cloud"},
			{Name: "nats", Title: "NATS JetStream", Enabled: true, Configured: true, Online: online,
				LastError: lastError, Pending: pending},
		},
	}
}

// sync --wait waits for every sink that delivers, not only the first one
// (regression: with NATS alone, it said "sync done: … 5 record(s) sent"
// at once, while NATS could not be reached and the 5 stayed in the buffer).
func TestSyncWaitJudgesEverySink(t *testing.T) {
	t.Run("a sink down fails", func(t *testing.T) {
		cfg := syncAgent(t, natsOnly(5, false, "dial tcp: connection refused"))
		code, out, errOut := run("sync", "--wait", "--config", cfg)
		if code != exitError || strings.Contains(out, "sync done") ||
			!strings.Contains(errOut, "cannot reach nats (dial tcp: connection refused); 5 record(s) stay in the buffer") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("done once its records are sent", func(t *testing.T) {
		cfg := syncAgent(t, natsOnly(5, true, ""), natsOnly(5, true, ""), natsOnly(0, true, ""))
		code, out, errOut := run("sync", "--wait", "--config", cfg)
		if code != exitOK || !strings.Contains(out, "sync done: 0 outlet(s) polled, 5 record(s) sent") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if !strings.Contains(errOut, "sending (5 waiting): 0/5") {
			t.Errorf("no progress while NATS had records: %q", errOut)
		}
	})
	t.Run("no sink set up: nothing to wait for", func(t *testing.T) {
		st := natsOnly(5, false, "")
		st.Sinks[1].Configured = false
		cfg := syncAgent(t, st)
		if code, out, errOut := run("sync", "--wait", "--config", cfg); code != exitOK || !strings.Contains(out, "sync done") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
}
