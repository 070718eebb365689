package store

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
)

func TestDocsRoundTripAndAtomicRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.GetDoc("orders", "A1"); ok || err != nil {
		t.Fatalf("empty collection: %v %v", ok, err)
	}
	rec := Input{Kind: KindMokkaOrder, Key: "mokka/s1/A1", Data: json.RawMessage(`{"order_id":"A1","status":"pending"}`)}
	res, err := s.PutDoc("orders", "A1", []byte(`{"status":"pending"}`), []Input{rec})
	if err != nil || res.Appended != 1 {
		t.Fatalf("PutDoc: %+v %v", res, err)
	}
	// Unchanged record: the document is still written, nothing appended.
	if res, err := s.PutDoc("orders", "A1", []byte(`{"status":"pending","checked":1}`), []Input{rec}); err != nil || res.Appended != 0 {
		t.Fatalf("PutDoc unchanged: %+v %v", res, err)
	}
	if _, err := s.PutDoc("orders", "B2", []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, ok, err := s.GetDoc("orders", "A1")
	if err != nil || !ok || string(v) != `{"status":"pending","checked":1}` {
		t.Fatalf("after reopen: %s %v %v", v, ok, err)
	}
	var keys []string
	if err := s.Docs("orders", func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "A1" || keys[1] != "B2" {
		t.Fatalf("keys %v", keys)
	}
	if err := s.DeleteDoc("orders", "B2"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.GetDoc("orders", "B2"); ok {
		t.Fatal("deleted document still there")
	}
	if st, _ := s.Stats(); st.Pending != 1 {
		t.Fatalf("pending %d", st.Pending)
	}
}

func TestPutDocFullWritesNothing(t *testing.T) {
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "agent.db"), MaxPendingBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := Input{Kind: KindMokkaOrder, Key: "k1", Data: json.RawMessage(`{"a":1}`)}
	if _, err := s.Append([]Input{first}, nil); err != nil {
		t.Fatal(err)
	}
	second := Input{Kind: KindMokkaOrder, Key: "k2", Data: json.RawMessage(`{"a":2}`)}
	if _, err := s.PutDoc("orders", "k2", []byte(`{"x":1}`), []Input{second}); !errors.Is(err, ErrFull) {
		t.Fatalf("want ErrFull, got %v", err)
	}
	if _, ok, _ := s.GetDoc("orders", "k2"); ok {
		t.Fatal("document written although its record was refused")
	}
}
