package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	writeJSON(w, http.StatusOK, s.backend.Status(r.Context()))
}

func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, actionSync, s.backend.SyncNow, http.StatusAccepted, map[string]any{"accepted": true},
		func(error) int { return http.StatusServiceUnavailable })
}

func (s *Server) handlePause(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, actionPause, s.backend.Pause, http.StatusOK, map[string]any{"paused": true}, conflictOrBad)
}

func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, actionResume, s.backend.Resume, http.StatusOK, map[string]any{"paused": false}, conflictOrBad)
}

// action runs one of the dashboard's buttons. A program gets code and body
// as JSON (or the error); a browser's form post gets 303 See Other back to
// the dashboard, which then says what happened.
func (s *Server) action(w http.ResponseWriter, r *http.Request, name string, do func(context.Context) error,
	code int, body any, errCode func(error) int) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	browser := fromBrowserForm(r)
	s.log.Debug("Local API action", "action", name, "browser", browser)
	if err := do(r.Context()); err != nil {
		s.log.Info("Local API action failed", "action", name, "err", err)
		if browser {
			s.renderDashboard(w, r, errCode(err), &flash{Error: true, Action: name, Detail: err.Error()})
			return
		}
		writeError(w, errCode(err), err.Error())
		return
	}
	if browser {
		http.Redirect(w, r, "/?"+name+"=1", http.StatusSeeOther)
		return
	}
	writeJSON(w, code, body)
}

func conflictOrBad(err error) int {
	var bad *BadRequestError
	if errors.As(err, &bad) {
		return http.StatusBadRequest
	}
	return http.StatusConflict
}

// fromBrowserForm reports whether the request is an HTML form post (or
// at least a browser asking for a page), as opposed to an API call.
func fromBrowserForm(r *http.Request) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil &&
		(mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data") {
		return true
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
			return true
		}
	}
	return false
}

func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	var req ImportRequest
	if !decodeJSON(w, r, maxSmallBody, &req) {
		return
	}
	if err := s.backend.Import(r.Context(), req); err != nil {
		code := http.StatusConflict
		var bad *BadRequestError
		if errors.As(err, &bad) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": true})
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	res := s.backend.Reload(r.Context())
	if res.RestartRequired == nil {
		res.RestartRequired = []string{}
	}
	code := http.StatusOK
	if res.Error != "" {
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, res)
}

func (s *Server) handleDeadLetters(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	q := r.URL.Query()
	limit := DefaultDeadLetterLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: want a whole number from 1 to %d", MaxDeadLetterLimit))
			return
		}
		limit = min(n, MaxDeadLetterLimit)
	}
	withData := false
	switch q.Get("data") {
	case "", "0", "false":
	case "1", "true":
		withData = true
	default:
		writeError(w, http.StatusBadRequest, "data: want 1 or 0")
		return
	}
	sink := q.Get("sink")
	dls, err := s.backend.DeadLetters(r.Context(), DeadLetterQuery{Limit: limit, WithData: withData, Sink: sink})
	if err != nil {
		code := http.StatusInternalServerError
		var bad *BadRequestError
		if errors.As(err, &bad) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	if dls == nil {
		dls = []DeadLetter{}
	}
	if len(dls) > limit {
		dls = dls[:limit]
	}
	if !withData {
		for i := range dls {
			dls[i].Data = nil
		}
	}
	// Compact, so that the records' data keeps its bytes.
	writeJSONAs(w, http.StatusOK, DeadLetters{Limit: limit, Sink: sink, DeadLetters: dls}, false)
}

func (s *Server) handleRequeue(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	var req RequeueRequest
	if !decodeJSON(w, r, maxBody, &req) {
		return
	}
	switch {
	case req.All && len(req.IDs) > 0:
		writeError(w, http.StatusBadRequest, `bad requeue request: give either "ids" or "all", not both`)
		return
	case !req.All && len(req.IDs) == 0:
		writeError(w, http.StatusBadRequest, `bad requeue request: give "ids" (a list of dead letter ids) or "all": true`)
		return
	}
	res, err := s.backend.Requeue(r.Context(), req)
	if err != nil {
		code := http.StatusInternalServerError
		var bad *BadRequestError
		if errors.As(err, &bad) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	if res.NotRequeued == nil {
		res.NotRequeued = []string{}
	}
	writeJSON(w, http.StatusOK, res)
}

// decodeJSON reads exactly one JSON value of at most limit bytes into v,
// refusing unknown fields. On failure it has written the 4xx answer.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "" && mt != "application/json" {
		// A form cannot be JSON; refusing it also keeps plain HTML forms
		// elsewhere from reaching these endpoints.
		writeError(w, http.StatusUnsupportedMediaType, "send a JSON body (Content-Type: application/json)")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
			return false
		}
		writeError(w, http.StatusBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}
