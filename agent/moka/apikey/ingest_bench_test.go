package apikey

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pwbi/edge-agent/store"
)

// BenchmarkIngestPage is the whole ingest path of SPEC §11: a 100-transaction
// Moka page body as it comes off the wire → decoded → mapped → appended to the
// store in one durable transaction (fsync on, dedupe index checked). The
// business id changes every cycle through the sample pages so that every
// record is new and really written.
func BenchmarkIngestPage(b *testing.B) {
	raws, m := benchData(b)
	var pages [][]byte
	for i := 0; i+100 <= len(raws); i += 100 {
		p, err := json.Marshal(map[string]any{"data": raws[i : i+100], "next_cursor": "c"})
		if err != nil {
			b.Fatal(err)
		}
		pages = append(pages, p)
	}
	st, err := store.Open(store.Options{Path: filepath.Join(b.TempDir(), "agent.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		mc := m
		mc.BusinessID = fmt.Sprintf("biz_%d", n/len(pages))
		items, _, err := decodeListPage(pages[n%len(pages)])
		if err != nil {
			b.Fatal(err)
		}
		ins, rejects, err := TransactionInputs(items, mc)
		if err != nil || len(rejects) != 0 {
			b.Fatal(err, rejects)
		}
		res, err := st.Append(ins, &store.SourceState{Source: "moka/bench/o1/transactions", Cursor: "c"})
		if err != nil || res.Appended != len(ins) {
			b.Fatalf("append: %v (%d of %d)", err, res.Appended, len(ins))
		}
		n++
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "tx/s")
}
