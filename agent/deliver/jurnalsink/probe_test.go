package jurnalsink_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink"
	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/jurnalfake"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// probeFake is a fake Jurnal on the real clock (a probe signs with it) and
// the config of a sink posting there.
func probeFake(t *testing.T) (*jurnalfake.Server, jurnalsink.Config) {
	t.Helper()
	fake := jurnalfake.NewServer(t, jurnalfake.Options{})
	return fake, jurnalsink.Config{BaseURL: fake.URL(), ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(),
		RequestsPerMinute: 600, Timeout: 10 * time.Second}
}

func probeJurnal(t *testing.T, cfg jurnalsink.Config) (jurnalsink.ProbeResult, *jurnalsink.ProbeError) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := jurnalsink.Probe(ctx, cfg, nil)
	if err == nil {
		return res, nil
	}
	var pe *jurnalsink.ProbeError
	if !errors.As(err, &pe) {
		t.Fatalf("probe error %T %v: want a *ProbeError", err, err)
	}
	if strings.Contains(pe.Error()+pe.Cause+pe.Problem.Text, cfg.ClientSecret) {
		t.Fatalf("the secret leaked: %q / %q / %q", pe.Error(), pe.Cause, pe.Problem.Text)
	}
	return res, pe
}

// Jurnal accepts: one signed read, nothing created, the round trip and the
// clock offset from the answer's Date.
func TestProbeReadsOnceAndCreatesNothing(t *testing.T) {
	fake, cfg := probeFake(t)
	res, pe := probeJurnal(t, cfg)
	if pe != nil {
		t.Fatalf("probe: %v (%s)", pe, pe.Problem.Text)
	}
	if res.Status != http.StatusOK || res.RoundTrip <= 0 || !res.ClockKnown || res.ClockOffset.Abs() > 2*time.Second || res.Corrected {
		t.Fatalf("probe: %+v", res)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Route != "GET /products" || reqs[0].Status != http.StatusOK || reqs[0].Processed != true {
		t.Fatalf("requests: %+v", reqs)
	}
	if len(fake.Invoices()) != 0 {
		t.Fatal("the probe created documents")
	}
}

// A wrong secret: credentials refused, the secret nowhere.
func TestProbeCredentialsRefused(t *testing.T) {
	_, cfg := probeFake(t)
	cfg.ClientSecret = "wrong-SECRET-31f9"
	_, pe := probeJurnal(t, cfg)
	if pe == nil || pe.Kind != jurnalsink.ProbeCredentials || pe.Status != http.StatusUnauthorized ||
		pe.Problem.Code != "HealthJurnalCredentials" {
		t.Fatalf("wrong secret: %+v", pe)
	}
}

// The PC's clock 20 minutes off Mekari's: the client signs again with
// Mekari's time and gets through, as the sink does, but the probe fails
// for the clock, saying by how much and which way.
func TestProbeClockSkew(t *testing.T) {
	for _, tc := range []struct {
		skew time.Duration
		code string
	}{
		{20 * time.Minute, "HealthJurnalClockBehind"},
		{-20 * time.Minute, "HealthJurnalClockAhead"},
	} {
		fake, cfg := probeFake(t)
		fake.SetSkew(tc.skew)
		res, pe := probeJurnal(t, cfg)
		if pe == nil || pe.Kind != jurnalsink.ProbeClock || pe.Problem.Code != tc.code || pe.Problem.Params["Minutes"] != "20" ||
			(pe.Skew-tc.skew).Abs() > 5*time.Second {
			t.Fatalf("skew %s: %+v", tc.skew, pe)
		}
		if !res.Corrected || res.Status != http.StatusOK || (res.ClockOffset-tc.skew).Abs() > 5*time.Second {
			t.Errorf("skew %s: result %+v", tc.skew, res)
		}
	}
}

// The monthly quota used up: 429, and when the sink tries again.
func TestProbeQuotaUsedUp(t *testing.T) {
	fake, cfg := probeFake(t)
	fake.SetMonthlyQuota(100, 0)
	before := time.Now()
	_, pe := probeJurnal(t, cfg)
	if pe == nil || pe.Kind != jurnalsink.ProbeQuota || pe.Status != http.StatusTooManyRequests ||
		pe.Problem.Code != "HealthJurnalQuota" || !pe.Until.After(before) {
		t.Fatalf("quota: %+v", pe)
	}
}

// Nothing listens at the base URL: unreachable, with the network's cause
// and without the URL.
func TestProbeUnreachable(t *testing.T) {
	_, cfg := probeFake(t)
	cfg.BaseURL = "http://" + testutil.FreeAddr(t)
	_, pe := probeJurnal(t, cfg)
	if pe == nil || pe.Kind != jurnalsink.ProbeUnreachable || pe.Status != 0 || !strings.Contains(pe.Cause, "refused") ||
		strings.Contains(pe.Cause, "http://") || strings.Contains(pe.Problem.Text, "/public/") {
		t.Fatalf("unreachable: %+v", pe)
	}
}

// Something else answers (a Wi-Fi login page): not Jurnal.
func TestProbeSomethingElseAnswers(t *testing.T) {
	for _, body := range []string{"<html>Login to the Wi-Fi</html>", `{"ok":true}`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(body))
		}))
		_, cfg := probeFake(t)
		cfg.BaseURL = srv.URL
		_, pe := probeJurnal(t, cfg)
		srv.Close()
		if pe == nil || pe.Kind != jurnalsink.ProbeFailed || pe.Problem.Code != "HealthJurnalNotAnswering" {
			t.Fatalf("answer %q: %+v", body, pe)
		}
	}
}
