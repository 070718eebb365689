package natssink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// The harness: real NATS servers in the test binary (nats-server/v2), on
// 127.0.0.1, with their stores in t.TempDir(), and an in-memory buffer for
// the delivery loop.

// waitLimit guards the waits for a settled cluster; elections take a few
// seconds (nats-server's raft waits 4-9 s before it campaigns).
const waitLimit = 90 * time.Second

// cluster is n JetStream servers routed together (n = 1: a single server).
type cluster struct {
	t       testing.TB
	name    string
	opts    []*server.Options
	mu      sync.Mutex
	servers []*server.Server // nil while stopped
}

// clusterOpt adjusts the options of every server.
type clusterOpt func(*server.Options)

func newCluster(t testing.TB, n int, extra ...clusterOpt) *cluster {
	t.Helper()
	ports := testutil.FreePorts(t, 2*n)
	c := &cluster{t: t, name: "pwbi-test", servers: make([]*server.Server, n)}
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			// Limits well above what the tests store, so that no
			// server refuses for lack of room on a small disk.
			JetStreamMaxMemory: 256 << 20,
			JetStreamMaxStore:  4 << 30,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: ports[n+i]}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		for _, f := range extra {
			f(o)
		}
		c.opts = append(c.opts, o)
	}
	for i := range n {
		c.start(i)
	}
	t.Cleanup(c.stopAll)
	c.waitReady()
	return c
}

// start starts server i on its ports and store.
func (c *cluster) start(i int) {
	c.t.Helper()
	o := *c.opts[i] // NewServer may change its options
	s, err := server.NewServer(&o)
	if err != nil {
		c.t.Fatalf("server %d: %v", i+1, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		c.t.Fatalf("server %d not ready", i+1)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
}

// stop shuts server i down and waits until it is gone.
func (c *cluster) stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

func (c *cluster) stopAll() {
	for i := range c.servers {
		c.stop(i)
	}
}

// urls are the client URLs of all servers.
func (c *cluster) urls() []string {
	var out []string
	for _, o := range c.opts {
		out = append(out, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return out
}

// index returns the index of the server named name, or -1.
func (c *cluster) index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	return -1
}

// waitReady waits until every running server is ready and, in a cluster,
// JetStream has a meta leader.
func (c *cluster) waitReady() {
	c.t.Helper()
	testutil.WaitFor(c.t, "JetStream ready", waitLimit, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.servers {
			if s == nil {
				continue
			}
			if !s.JetStreamEnabled() {
				return false
			}
			if len(c.servers) > 1 && !s.JetStreamIsCurrent() {
				return false
			}
		}
		return true
	})
}

// client is a plain NATS connection for checking and setting up.
func (c *cluster) client(opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(strings.Join(c.urls(), ","), opts...)
	if err != nil {
		c.t.Fatalf("connect: %v", err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// streamConfig is the stream docs/nats.md asks operators for, with test
// settings: replicas as given, and a short duplicate window.
func streamConfig(replicas int, dupWindow time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       DefaultStream,
		Subjects:   []string{DefaultSubjectPrefix + ".>"},
		Storage:    jetstream.FileStorage,
		Replicas:   replicas,
		Duplicates: dupWindow,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		// Atomic batches: each agent's records gap-free and in order.
		AllowAtomicPublish: true,
	}
}

// createStream creates the stream and waits until it has a leader and all
// its replicas are current.
func createStream(t testing.TB, js jetstream.JetStream, cfg jetstream.StreamConfig) {
	t.Helper()
	testutil.WaitFor(t, "stream created", waitLimit, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := js.CreateStream(ctx, cfg)
		return err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse)
	})
	waitStreamSettled(t, js, cfg.Name, cfg.Replicas)
}

// waitStreamSettled waits until the stream has a leader and replicas-1
// current followers.
func waitStreamSettled(t testing.TB, js jetstream.JetStream, name string, replicas int) {
	t.Helper()
	testutil.WaitFor(t, "stream "+name+" settled", waitLimit, func() bool {
		info, err := streamInfo(js, name)
		if err != nil {
			return false
		}
		if replicas <= 1 {
			return true
		}
		if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != replicas-1 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	})
}

func streamInfo(js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// stored is one message read back from the stream.
type stored struct {
	streamSeq uint64
	subject   string
	msgID     string
	seq       uint64 // Pwbi-Seq
	maxSeq    string // Pwbi-Max-Seq, if any
	key       string
	data      []byte
}

// readStream reads every message of the stream, in stream order, with
// ordered consumers: a cluster that just restarted may refuse a while, so a
// failed read resumes after the last message read.
func readStream(t testing.TB, js jetstream.JetStream, name string) []stored {
	t.Helper()
	var out []stored
	next := uint64(1)
	testutil.WaitFor(t, "the stream read", waitLimit, func() bool {
		info, err := streamInfo(js, name)
		if err != nil {
			return false
		}
		last := info.State.LastSeq
		if next > last {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   next,
		})
		if err != nil {
			return false
		}
		for next <= last {
			batch, err := cons.Fetch(int(min(1000, last-next+1)), jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				return false
			}
			got := 0
			for m := range batch.Messages() {
				md, err := m.Metadata()
				if err != nil {
					t.Fatalf("metadata: %v", err)
				}
				h := m.Headers()
				seq, _ := strconv.ParseUint(h.Get(HeaderSeq), 10, 64)
				out = append(out, stored{
					streamSeq: md.Sequence.Stream,
					subject:   m.Subject(),
					msgID:     h.Get(hdrMsgID),
					seq:       seq,
					maxSeq:    h.Get(HeaderMaxSeq),
					key:       h.Get(HeaderKey),
					data:      m.Data(),
				})
				next = md.Sequence.Stream + 1
				got++
			}
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
				return false
			}
			if got == 0 {
				return false
			}
		}
		return true
	})
	return out
}

func streamInfoRetry(t testing.TB, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	var info *jetstream.StreamInfo
	var err error
	testutil.WaitFor(t, "stream info", waitLimit, func() bool {
		info, err = streamInfo(js, name)
		return err == nil
	})
	return info, err
}

// checkExactlyOnce asserts that msgs are exactly the records of agent with
// the seqs want, each once (by Nats-Msg-Id), in seq order.
func checkExactlyOnce(t testing.TB, msgs []stored, agent string, want []uint64) {
	t.Helper()
	seen := make(map[string]int, len(msgs))
	var got []uint64
	for i, m := range msgs {
		if j, dup := seen[m.msgID]; dup {
			t.Fatalf("message %s stored twice (stream seqs %d and %d)", m.msgID, msgs[j].streamSeq, m.streamSeq)
		}
		seen[m.msgID] = i
		if want := MsgID(agent, m.seq); m.msgID != want {
			t.Fatalf("stream seq %d: Nats-Msg-Id %q, Pwbi-Seq %d: want id %q", m.streamSeq, m.msgID, m.seq, want)
		}
		if i > 0 && m.seq <= msgs[i-1].seq {
			t.Fatalf("out of order: Pwbi-Seq %d (stream seq %d) after %d (stream seq %d)", m.seq, m.streamSeq, msgs[i-1].seq, msgs[i-1].streamSeq)
		}
		got = append(got, m.seq)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("stream holds %d records, want %d (first missing: %d)", len(got), len(want), firstMissing(got, want))
	}
}

func firstMissing(got, want []uint64) uint64 {
	have := make(map[uint64]bool, len(got))
	for _, s := range got {
		have[s] = true
	}
	for _, s := range want {
		if !have[s] {
			return s
		}
	}
	return 0
}

// ---- in-memory buffer ----

// memSource is an in-memory deliver.Source with the store's contract.
type memSource struct {
	mu      sync.Mutex
	pending []store.Record
	dead    map[uint64]string
	acked   int
	notify  chan struct{}
}

func newMemSource(recs []store.Record) *memSource {
	return &memSource{pending: slices.Clone(recs), dead: map[uint64]string{}, notify: make(chan struct{}, 1)}
}

func (s *memSource) Pending(n int) ([]store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pending[:min(n, len(s.pending))]), nil
}

func (s *memSource) Ack(seqs ...uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ack := make(map[uint64]bool, len(seqs))
	for _, q := range seqs {
		ack[q] = true
	}
	kept := s.pending[:0]
	for _, r := range s.pending {
		if ack[r.Seq] {
			delete(ack, r.Seq)
			s.acked++
			continue
		}
		kept = append(kept, r)
	}
	s.pending = kept
	for q := range ack {
		return fmt.Errorf("ack %d: not pending", q)
	}
	return nil
}

func (s *memSource) DeadLetter(seq uint64, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.pending, func(r store.Record) bool { return r.Seq == seq })
	if i < 0 {
		return fmt.Errorf("dead-letter %d: not pending", seq)
	}
	s.pending = slices.Delete(s.pending, i, i+1)
	s.dead[seq] = reason
	return nil
}

func (s *memSource) Notify() <-chan struct{} { return s.notify }

func (s *memSource) counts() (pending, acked, dead int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending), s.acked, len(s.dead)
}

func (s *memSource) deadLetters() map[uint64]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[uint64]string, len(s.dead))
	for k, v := range s.dead {
		out[k] = v
	}
	return out
}

// records makes n transaction records with seqs from, from+1, ... spread
// over two outlets, the ids ordinary except for one outlet with a dot and a
// space in it.
func records(from uint64, n int) []store.Record {
	out := make([]store.Record, n)
	for i := range out {
		seq := from + uint64(i)
		outlet := "outlet_456"
		if seq%2 == 0 {
			outlet = "outlet%2E7 b" // "outlet.7 b", path-escaped as in unified.Key
		}
		data := fmt.Appendf(nil, `{"external_id":"MOK%d","source_system":"moka","business_id":"biz_1","amount":"%d","items":[{"name":"Es Kopi Susu","quantity":"2","unit_price":"25000"}]}`, seq, 25000+seq)
		out[i] = store.Record{
			Kind:    store.KindTransaction,
			Key:     fmt.Sprintf("moka/biz_1/%s/MOK%d", outlet, seq),
			Seq:     seq,
			Version: store.Version(data),
			Data:    data,
			AddedAt: time.Now(),
		}
	}
	return out
}

func seqRange(from uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = from + uint64(i)
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
