package checkout

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
)

// maxCallbackBytes caps a callback body; Mokka's are a few hundred bytes.
const maxCallbackBytes = 64 << 10

// handleCallback takes Mokka's decision callback (POST
// /mokka/callback?signature=…, the callback_url the tablet gave Mokka).
//
// A callback with a signature is checked over the raw body before anything
// is parsed, with the secret key (or the registration secret key, whose
// store's callbacks Mokka signs with it); a wrong one is refused with 403
// and nothing is recorded. A valid one is recorded as a receipt of the
// order (when, the decision, a keyed digest of the body; never the body,
// which holds the customer's data) and triggers a Status call: the order's
// state changes only when Status confirms it. Callbacks are idempotent: a
// body already recorded for the order is acknowledged like the first one,
// with no write and no Status call, and the Status calls that callbacks
// ask for are rate limited per order (see statusEvery).
//
// Mokka may send no signature at all (its own plugins never check one), so
// a callback without one is not refused: it is a hint (see handleHint).
func (g *Gateway) handleCallback(w http.ResponseWriter, r *http.Request) {
	cfg := g.config()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCallbackBytes))
	if err != nil {
		refuseBody(w, err)
		return
	}
	sig := r.URL.Query().Get("signature")
	if sig == "" {
		g.handleHint(w, r, cfg, body)
		return
	}
	if !Verify(body, cfg.SecretKey, sig) && !Verify(body, cfg.RegistrationSecretKey, sig) {
		if g.authLog.Allow() {
			g.log.Warn("Mokka callback refused", "reason", Message(CodeSignatureWrong), "remote", remoteIP(r))
		}
		writeMokka(w, http.StatusForbidden, CodeSignatureWrong, "")
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
	res, err := g.recordCallback(cfg.StoreID, id, Receipt{Decision: decision, Body: callbackDigest(cfg.SecretKey, body)})
	if err != nil {
		g.log.Error("Recording a Mokka callback failed", "order_id", id, "err", err)
		writeMokka(w, http.StatusInternalServerError, CodeServer, "")
		return
	}
	switch res {
	case callbackRepeated:
		// Mokka retrying, or a replay: answered as before, at debug
		// level so that a flood of them cannot flood the log.
		g.log.Debug("Mokka callback repeated; nothing to do", "order_id", id)
	case callbackIgnored:
		g.log.Warn("Mokka callback for an unknown order not looked up", "order_id", id, "decision", decision)
	default:
		g.log.Info("Mokka callback received", "order_id", id, "decision", decision, "tracked", res == callbackRecorded)
	}
	writeMokka(w, http.StatusOK, CodeOK, "")
}

// handleHint takes a callback without a signature. Anyone who can reach
// callback_url can send one, so nothing in it is trusted or recorded: its
// order_id only names the order to ask Mokka about, and only an open order
// the gateway tracks is asked about (a Status call, on the same rate
// limited "confirm by Status" path as a signed callback, adding no
// receipt); a hint about any other order changes nothing. The answer is
// 200 either way, so it tells the sender nothing about which orders
// exist. A forged or replayed hint therefore costs at most the order's
// rate limited Status calls and can change nothing that Mokka's Status
// does not confirm.
func (g *Gateway) handleHint(w http.ResponseWriter, r *http.Request, cfg *runtimeConfig, body []byte) {
	var cb struct {
		OrderID json.RawMessage `json:"order_id"`
	}
	if err := json.Unmarshal(body, &cb); err != nil {
		writeMokka(w, http.StatusBadRequest, CodeJSON, "")
		return
	}
	id, verr := orderID(cb.OrderID, "order_id")
	if verr != nil {
		writeMokka(w, http.StatusBadRequest, verr.Code, verr.Detail)
		return
	}
	// Logged at a bounded rate: anyone can send these.
	if g.hint(cfg.StoreID, id) {
		if g.hintLog.Allow() {
			g.log.Info("Unsigned Mokka callback: order to be confirmed with Status", "order_id", id)
		}
	} else if g.hintLog.Allow() {
		g.log.Info("Unsigned Mokka callback for no open order; ignored", "remote", remoteIP(r))
	}
	writeMokka(w, http.StatusOK, CodeOK, "")
}

// callbackDigest identifies a callback body: the hex HMAC-SHA-256 of the
// raw bytes keyed with the secret key. "The same callback" is the same
// bytes (SPEC §7.3: "a repeated body changes nothing"): a retry or a
// replay sends exactly what Mokka signed, and any other body, even one
// that differs only in a field the gateway does not read, is a new
// callback and worth one Status check. Only signed bodies are recorded, so
// nobody without the key can make new ones. The key makes the digest
// useless for guessing the customer's data in the body.
func callbackDigest(secretKey string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secretKey))
	m.Write([]byte("pwbi mokka callback\x00"))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
