package checkout

import (
	"encoding/json"
	"io"
	"net/http"
)

// maxCallbackBytes caps a callback body; Mokka's are a few hundred bytes.
const maxCallbackBytes = 64 << 10

// handleCallback takes Mokka's decision callback (POST
// /mokka/callback?signature=…, the callback_url the tablet gave Mokka).
// The signature is checked over the raw body before anything is parsed; a
// missing or wrong one is refused with 403 and nothing is recorded. A valid
// one is recorded in the order's history and triggers a Status call: the
// order's state changes only when Status confirms it.
func (g *Gateway) handleCallback(w http.ResponseWriter, r *http.Request) {
	cfg := g.config()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCallbackBytes))
	if err != nil {
		refuseBody(w, err)
		return
	}
	sig := r.URL.Query().Get("signature")
	if sig == "" || !Verify(body, cfg.SecretKey, sig) {
		code := CodeSignatureWrong
		if sig == "" {
			code = CodeSignatureMissing
		}
		if g.authLog.Allow() {
			g.log.Warn("Mokka callback refused", "reason", Message(code), "remote", remoteIP(r))
		}
		writeMokka(w, http.StatusForbidden, code, "")
		return
	}
	var cb struct {
		OrderID  json.RawMessage `json:"order_id"`
		Decision json.RawMessage `json:"decision"`
	}
	if err := json.Unmarshal(body, &cb); err != nil {
		g.log.Warn("Signed Mokka callback is not JSON", "remote", remoteIP(r))
		writeMokka(w, http.StatusBadRequest, CodeJSON, "")
		return
	}
	id, verr := orderID(cb.OrderID, "order_id")
	if verr != nil {
		g.log.Warn("Signed Mokka callback without a usable order_id", "mokka_status", verr.Code)
		writeMokka(w, http.StatusBadRequest, verr.Code, verr.Detail)
		return
	}
	decision, _ := stringValue(cb.Decision)
	if decision != "approved" && decision != "declined" {
		decision = ""
	}
	tracked, err := g.recordCallback(cfg.StoreID, id, decision)
	if err != nil {
		g.log.Error("Recording a Mokka callback failed", "order_id", id, "err", err)
		writeMokka(w, http.StatusInternalServerError, CodeServer, "")
		return
	}
	g.log.Info("Mokka callback received", "order_id", id, "decision", decision, "tracked", tracked)
	writeMokka(w, http.StatusOK, CodeOK, "")
}
