package upstreamfake

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/store"
)

// maxBatchIDLen bounds batch ids (a SHA-256 hex is 64).
const maxBatchIDLen = 128

type tooLargeError struct{ msg string }

func (e *tooLargeError) Error() string { return e.msg }

func checkContentType(v string) error {
	if v == "" {
		return errors.New("missing Content-Type: want application/json")
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("unsupported Content-Type %q: want application/json", v)
	}
	return nil
}

func checkContentEncoding(v string) error {
	if !strings.EqualFold(strings.TrimSpace(v), "gzip") {
		return fmt.Errorf("unsupported Content-Encoding %q: want gzip", v)
	}
	return nil
}

// readBatch reads a gzip-compressed batch of at most maxBody bytes on the
// wire and validates it. A *tooLargeError means 413, any other error 400.
func readBatch(body io.Reader, maxBody int64) (Batch, error) {
	raw, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return Batch{}, fmt.Errorf("read body: %v", err)
	}
	if int64(len(raw)) > maxBody {
		return Batch{}, &tooLargeError{fmt.Sprintf("request body exceeds %d bytes", maxBody)}
	}
	decoded, err := gunzip(raw, MaxDecodedBytes)
	if err != nil {
		return Batch{}, err
	}
	return decodeBatch(decoded)
}

func gunzip(raw []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("body is not gzip: %v", err)
	}
	// JSON batches compress about 7:1; start near that to avoid regrowing.
	buf := bytes.NewBuffer(make([]byte, 0, min(int64(len(raw))*8, limit)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(zr, limit+1)); err != nil {
		return nil, fmt.Errorf("corrupt gzip body: %v", err)
	}
	out := buf.Bytes()
	if int64(len(out)) > limit {
		return nil, &tooLargeError{fmt.Sprintf("decompressed body exceeds %d bytes", limit)}
	}
	return out, nil
}

type wireBatch struct {
	AgentID string       `json:"agent_id"`
	BatchID string       `json:"batch_id"`
	SentAt  string       `json:"sent_at"`
	Records []wireRecord `json:"records"`
}

type wireRecord struct {
	Kind    string          `json:"kind"`
	Key     string          `json:"key"`
	Seq     uint64          `json:"seq"`
	Version string          `json:"version"`
	Data    json.RawMessage `json:"data"`
}

// decodeBatch parses and validates the JSON of a batch. Errors name the
// problem and the record index.
func decodeBatch(data []byte) (Batch, error) {
	w, err := decodeWire(data)
	if err != nil {
		return Batch{}, fmt.Errorf("body is not a valid batch: %v", err)
	}
	switch {
	case w.AgentID == "":
		return Batch{}, errors.New("agent_id is missing")
	case w.BatchID == "":
		return Batch{}, errors.New("batch_id is missing")
	case len(w.BatchID) > maxBatchIDLen:
		return Batch{}, fmt.Errorf("batch_id is longer than %d characters", maxBatchIDLen)
	case len(w.Records) == 0:
		return Batch{}, errors.New("records is missing or empty")
	}
	sentAt, err := time.Parse(time.RFC3339, w.SentAt)
	if err != nil {
		return Batch{}, fmt.Errorf("sent_at %q is not an RFC 3339 time", w.SentAt)
	}
	b := Batch{ID: w.BatchID, AgentID: w.AgentID, SentAt: sentAt, Records: make([]store.Record, len(w.Records))}
	for i, r := range w.Records {
		if err := checkRecord(r); err != nil {
			return Batch{}, fmt.Errorf("records[%d]: %v", i, err)
		}
		b.Records[i] = store.Record{Kind: r.Kind, Key: r.Key, Seq: r.Seq, Version: r.Version, Data: r.Data}
	}
	return b, nil
}

func checkRecord(r wireRecord) error {
	switch r.Kind {
	case store.KindTransaction, store.KindProduct, store.KindMokkaOrder:
	case "":
		return errors.New("kind is missing")
	default:
		return fmt.Errorf("kind %q is not transaction, product or mokka_order", r.Kind)
	}
	if r.Key == "" {
		return errors.New("key is missing")
	}
	if r.Seq == 0 {
		return errors.New("seq is missing or 0")
	}
	if !isVersion(r.Version) {
		return fmt.Errorf("version %q is not 64 lowercase hex characters", r.Version)
	}
	d := bytes.TrimSpace(r.Data)
	if len(d) == 0 || string(d) == "null" {
		return errors.New("data is missing")
	}
	if d[0] != '{' {
		return errors.New("data is not a JSON object")
	}
	return nil
}

func isVersion(v string) bool {
	if len(v) != 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// response is an answer, written normally or cut short.
type response struct {
	status int
	header http.Header
	body   []byte
}

func jsonResponse(status int, v any) *response {
	body, err := json.Marshal(v)
	if err != nil {
		body = []byte(`{"error":"internal error"}`)
	}
	return &response{
		status: status,
		header: http.Header{"Content-Type": {"application/json"}},
		body:   append(body, '\n'),
	}
}

func errorResponse(status int, msg string) *response {
	return jsonResponse(status, map[string]any{"error": msg})
}

func (r *response) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range r.header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(len(r.body)))
	w.WriteHeader(r.status)
	w.Write(r.body) //nolint:errcheck // the client may be gone
}

// writeTruncated sends the status line, headers declaring the full
// Content-Length, half of the body, and closes the connection.
func (r *response) writeTruncated(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	bw := bufio.NewWriter(conn)
	if rw != nil && rw.Writer != nil {
		bw = rw.Writer
	}
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", r.status, http.StatusText(r.status))
	for k, v := range r.header {
		for _, x := range v {
			fmt.Fprintf(bw, "%s: %s\r\n", k, x)
		}
	}
	fmt.Fprintf(bw, "Content-Length: %d\r\nConnection: close\r\n\r\n", len(r.body))
	bw.Write(r.body[:len(r.body)/2]) //nolint:errcheck // closing anyway
	bw.Flush()                       //nolint:errcheck // closing anyway
}
