package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/moka/apikey/apikeyfake"
	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/store"
)

func TestConnector(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 21, Outlets: 2, Days: 3, TxPerDay: 120})
	c, _ := newTestClient(t, s, fc, ClientOptions{})
	k := NewConnector(c, MapContext{BusinessID: s.BusinessID(), Currency: "IDR", Location: s.Location()})

	truth := s.Truth()
	var bad string
	for _, tr := range truth {
		if tr.OutletID == "outlet_1" {
			bad = tr.ID
			break
		}
	}
	if err := s.Corrupt(bad, "grand_total", json.RawMessage(`"12a"`)); err != nil {
		t.Fatal(err)
	}

	outlets, err := k.Outlets(context.Background())
	if err != nil || len(outlets) != 2 {
		t.Fatalf("outlets %v %v", outlets, err)
	}
	want := expectedByKey(t, s)
	got := map[string]string{}
	var dead []feed.Dead
	for _, o := range outlets {
		var last feed.Page
		from := time.Date(2025, 12, 1, 0, 0, 0, 0, s.Location())
		err := k.Transactions(context.Background(), o.ID, from, func(p feed.Page) error {
			for _, in := range p.Inputs {
				if in.Kind != store.KindTransaction || !strings.HasPrefix(in.Key, "moka/biz_1/"+o.ID+"/") {
					t.Errorf("input %s of kind %s in the walk of %s", in.Key, in.Kind, o.ID)
				}
				got[in.Key] = string(in.Data)
			}
			dead = append(dead, p.Dead...)
			last = p
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !last.Last || last.Through.IsZero() {
			t.Errorf("last page %+v", last)
		}
	}
	compareMaps(t, got, want)
	if len(dead) != 1 || dead[0].Input.Key != "moka/biz_1/outlet_1/"+bad ||
		!strings.Contains(dead[0].Reason, `grand_total: bad number "12a"`) || !json.Valid(dead[0].Input.Data) {
		t.Errorf("dead = %+v", dead)
	}

	var products int
	for _, o := range outlets {
		err := k.Products(context.Background(), o.ID, func(p feed.Page) error {
			for _, in := range p.Inputs {
				if in.Kind != store.KindProduct || !strings.HasPrefix(in.Key, "moka/biz_1/"+o.ID+"/products/") {
					t.Errorf("product input %s", in.Key)
				}
			}
			products += len(p.Inputs)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if products != len(s.Products()) {
		t.Errorf("%d products, want %d", products, len(s.Products()))
	}

	s.SetUnauthorized(true)
	_, err = k.Outlets(context.Background())
	if !errors.Is(err, feed.ErrUnauthorized) || !errors.Is(err, ErrUnauthorized) {
		t.Errorf("unauthorized: %v", err)
	}
}
