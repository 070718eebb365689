package httpsink

import (
	"slices"
	"testing"

	"github.com/pwbi/edge-agent/store"
)

func TestBatchIDDeterministic(t *testing.T) {
	a := []store.Record{{Seq: 1}, {Seq: 2}, {Seq: 3}}
	id := BatchID("pc", a)
	if len(id) != 64 || id != BatchID("pc", slices.Clone(a)) {
		t.Fatalf("id %q not stable", id)
	}
	for _, other := range []string{BatchID("pc2", a), BatchID("pc", a[:2]), BatchID("pc", a[1:])} {
		if other == id {
			t.Errorf("collision %s", id)
		}
	}
}
