package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pwbi/edge-agent/agent/deliver/natssink"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// The NATS JetStream sink inside the real binary (SPEC §6.2, issue 13),
// against a real nats-server started in this test process (a test-only
// import: deps_test.go keeps the server out of the shipped binaries). The
// tests play the NATS operator: they create the stream as docs/nats.md
// defines it, with the shortest duplicate window the server allows (100ms),
// so that exactly-once in the stream never rests on Nats-Msg-Id
// de-duplication: a record published twice more than 100ms apart would be
// stored twice, and the tests would see it.

const (
	natsStream  = "PWBI"
	natsAgentID = "e2e-pc" // agent.id of the harness's config
	// natsBatch is nats.batch_size in these tests: a record can be in both
	// streams of a reload to another stream only if it was in the one loop
	// batch in flight at the switch.
	natsBatch = 100
	// natsWindow is nats.max_in_flight: the records of one atomic batch.
	natsWindow = 25
)

// natsServer is one single-node NATS server with JetStream in the test
// process, which can be started (again) on its address later.
type natsServer struct {
	t    testing.TB
	opts server.Options

	mu  sync.Mutex
	srv *server.Server
}

// natsUser is a user of a natsServer with a password; without users the
// server takes anyone.
type natsUser struct{ name, password string }

// newNATSServer prepares a server on addr (host:port) with its store in a
// temporary directory; it does not start it.
func newNATSServer(t testing.TB, addr string, users ...natsUser) *natsServer {
	t.Helper()
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		t.Fatal(err)
	}
	n := &natsServer{t: t, opts: server.Options{
		ServerName: "e2e-nats",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
		// Well above what the tests store, so that a small disk does not
		// make the server refuse.
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  1 << 30,
	}}
	for _, u := range users {
		n.opts.Users = append(n.opts.Users, &server.User{Username: u.name, Password: u.password})
	}
	t.Cleanup(n.stop)
	return n
}

// startNATSServer starts a server on a free port of 127.0.0.1 with the
// stream created.
func startNATSServer(t testing.TB, users ...natsUser) *natsServer {
	t.Helper()
	n := newNATSServer(t, testutil.FreeAddr(t), users...)
	n.start()
	n.createStream()
	return n
}

// start starts the server and waits until it takes connections.
func (n *natsServer) start() {
	n.t.Helper()
	o := n.opts // NewServer may change its options
	srv, err := server.NewServer(&o)
	if err != nil {
		n.t.Fatalf("nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		n.t.Fatal("nats server not ready within 30s")
	}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
}

// stop shuts the server down, if it runs.
func (n *natsServer) stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

func (n *natsServer) addr() string { return net.JoinHostPort(n.opts.Host, strconv.Itoa(n.opts.Port)) }
func (n *natsServer) url() string  { return "nats://" + n.addr() }

// client connects as the operator: the first user, if the server has users.
func (n *natsServer) client() (*nats.Conn, jetstream.JetStream) {
	n.t.Helper()
	opts := []nats.Option{nats.Name("e2e operator")}
	if len(n.opts.Users) > 0 {
		opts = append(opts, nats.UserInfo(n.opts.Users[0].Username, n.opts.Users[0].Password))
	}
	nc, err := nats.Connect(n.url(), opts...)
	if err != nil {
		n.t.Fatalf("connect to nats: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		n.t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// createStream creates the stream of docs/nats.md for one server: subjects
// pwbi.>, atomic batches, direct get; one replica, and the shortest
// duplicate window (see the top of this file).
func (n *natsServer) createStream() {
	n.t.Helper()
	nc, js := n.client()
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:               natsStream,
		Subjects:           []string{"pwbi.>"},
		Storage:            jetstream.FileStorage,
		Replicas:           1,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		Duplicates:         100 * time.Millisecond,
		AllowAtomicPublish: true,
		AllowDirect:        true,
		DenyDelete:         true,
		DenyPurge:          true,
	})
	if err != nil {
		n.t.Fatalf("create stream: %v", err)
	}
}

// count is how many messages the stream holds (-1 when it cannot tell).
func (n *natsServer) count() int {
	nc, js := n.client()
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, natsStream)
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
}

// users lists the users of the server's client connections.
func (n *natsServer) users() []string {
	n.mu.Lock()
	srv := n.srv
	n.mu.Unlock()
	if srv == nil {
		return nil
	}
	cz, err := srv.Connz(&server.ConnzOptions{Username: true})
	if err != nil {
		n.t.Fatal(err)
	}
	var out []string
	for _, c := range cz.Conns {
		out = append(out, c.AuthorizedUser)
	}
	return out
}

// streamMsg is one message read back from the stream.
type streamMsg struct {
	streamSeq uint64
	msgID     string
	seq       uint64 // Pwbi-Seq
	key       string // Pwbi-Key
}

// read reads every message of the stream, in stream order.
func (n *natsServer) read() []streamMsg {
	n.t.Helper()
	nc, js := n.client()
	defer nc.Close()
	var out []streamMsg
	testutil.WaitFor(n.t, "the stream read", 30*time.Second, func() bool {
		out = out[:0]
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, natsStream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil {
			return false
		}
		total := int(info.State.Msgs)
		if total == 0 {
			return true
		}
		cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return false
		}
		for len(out) < total {
			batch, err := cons.Fetch(min(1000, total-len(out)), jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				return false
			}
			got := 0
			for m := range batch.Messages() {
				md, err := m.Metadata()
				if err != nil {
					return false
				}
				h := m.Headers()
				seq, _ := strconv.ParseUint(h.Get(natssink.HeaderSeq), 10, 64)
				out = append(out, streamMsg{streamSeq: md.Sequence.Stream, msgID: h.Get(nats.MsgIdHdr), seq: seq, key: h.Get(natssink.HeaderKey)})
				got++
			}
			if err := batch.Error(); (err != nil && !errors.Is(err, nats.ErrTimeout)) || got == 0 {
				return false
			}
		}
		return true
	})
	return out
}

// checkStreamOnceInOrder asserts that msgs, a stream's messages, are the
// seeded records from index from to index to-1, each exactly once (by
// Nats-Msg-Id), in Pwbi-Seq order, and nothing else.
func checkStreamOnceInOrder(t *testing.T, who string, msgs []streamMsg, from, to int) {
	t.Helper()
	ids := make(map[string]uint64, len(msgs))
	for i, m := range msgs {
		if at, dup := ids[m.msgID]; dup {
			t.Fatalf("%s: %s stored twice (stream seqs %d and %d)", who, m.msgID, at, m.streamSeq)
		}
		ids[m.msgID] = m.streamSeq
		if want := natssink.MsgID(natsAgentID, m.seq); m.msgID != want {
			t.Fatalf("%s: stream seq %d has Nats-Msg-Id %q for Pwbi-Seq %d, want %q", who, m.streamSeq, m.msgID, m.seq, want)
		}
		if i > 0 && m.seq <= msgs[i-1].seq {
			t.Fatalf("%s: out of order: Pwbi-Seq %d (stream seq %d) after %d", who, m.seq, m.streamSeq, msgs[i-1].seq)
		}
	}
	for i, m := range msgs {
		if want := crashKey(from + i); m.key != want {
			t.Fatalf("%s: message %d is %s, want %s", who, i, m.key, want)
		}
	}
	if len(msgs) != to-from {
		t.Fatalf("%s: the stream holds %d records, want %d (records %d to %d)", who, len(msgs), to-from, from, to-1)
	}
}

// seededIndex is the index of a seeded record given its key (crashKey).
func seededIndex(t *testing.T, key string) int {
	t.Helper()
	var i int
	if _, err := fmt.Sscanf(key, "moka/b1/o1/T%06d", &i); err != nil {
		t.Fatalf("not a seeded key: %q", key)
	}
	return i
}

// slowLink is a TCP proxy to a NATS server that holds back everything the
// server sends by its delay: a slow uplink between the cafe and the cluster,
// so that a drain lasts long enough to be interrupted (every atomic batch
// waits one delay for its acknowledgement).
type slowLink struct {
	t      testing.TB
	ln     net.Listener
	target string
	delay  time.Duration

	mu       sync.Mutex
	conns    map[net.Conn]bool
	accepted int
	wg       sync.WaitGroup
}

func newSlowLink(t testing.TB, target string, delay time.Duration) *slowLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowLink{t: t, ln: ln, target: target, delay: delay, conns: map[net.Conn]bool{}}
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *slowLink) url() string { return "nats://" + p.ln.Addr().String() }

func (p *slowLink) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.accepted++
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(c, s, 0) })
		p.wg.Go(func() { p.pipe(s, c, p.delay) })
	}
}

// pipe copies src to dst, each read delay late, until either end closes;
// then it closes both.
func (p *slowLink) pipe(src, dst net.Conn, delay time.Duration) {
	defer func() {
		src.Close()
		dst.Close()
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			time.Sleep(delay) // the link's latency, not a wait for a condition
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// open is how many client connections pass through the link now.
func (p *slowLink) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

func (p *slowLink) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// natsConfig is what the tests vary in the agent's config.
type natsConfig struct {
	urls           []string
	user, password string
	upstream       bool // deliver to the harness's fake upstream too
}

// writeNATSConfig writes the agent's config: the harness's [agent] and
// [local_api], Moka off, [upstream] on the fake upstream or without a url,
// and [nats] as c says.
func (e *testEnv) writeNATSConfig(t *testing.T, c natsConfig) {
	t.Helper()
	upstream := "[upstream]\nflush_interval = \"200ms\"\n"
	if c.upstream {
		upstream = fmt.Sprintf("[upstream]\nurl = %q\ntoken_file = \"upstream.token\"\nbatch_size = 200\nflush_interval = \"200ms\"\ntimeout = \"5s\"\n", e.up.URL())
	}
	quoted := make([]string, len(c.urls))
	for i, u := range c.urls {
		quoted[i] = strconv.Quote(u)
	}
	auth := ""
	if c.user != "" {
		auth = fmt.Sprintf("user = %q\npassword = %q\n", c.user, c.password)
	}
	cfg := fmt.Sprintf(`version = 1
[agent]
id = %q
data_dir = "data"
log_level = "debug"
[moka]
enabled = false
%s[nats]
enabled = true
urls = [%s]
%sstream = %q
batch_size = %d
max_in_flight = %d
timeout = "5s"
[local_api]
listen = %q
`, natsAgentID, upstream, strings.Join(quoted, ", "), auth, natsStream, natsBatch, natsWindow, e.apiAddr)
	// Write and rename, as an editor saves: the config watcher never reads
	// half a file.
	tmp := e.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.cfgPath); err != nil {
		t.Fatal(err)
	}
}

// natsSinkStatus returns the named sink of st.
func natsSinkStatus(t *testing.T, st localapi.Status, name string) localapi.SinkStatus {
	t.Helper()
	for _, s := range st.Sinks {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no sink %q in the status: %+v", name, st.Sinks)
	return localapi.SinkStatus{}
}

// natsReload applies the config file now and waits for generation gen.
func (e *testEnv) natsReload(t *testing.T, gen uint64) localapi.Status {
	t.Helper()
	// The config watcher may have applied the file already: then the
	// manual reload finds it unchanged.
	if res, err := localapi.NewClient(e.apiAddr, nil).Reload(t.Context()); err != nil || (!res.Applied && !res.Unchanged) {
		t.Fatalf("reload: %+v %v", res, err)
	}
	var st localapi.Status
	testutil.WaitFor(t, "generation "+strconv.FormatUint(gen, 10), 30*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil && st.Config.Generation == gen
	})
	if st.Config.Error != "" {
		t.Fatalf("config error after reload: %s", st.Config.Error)
	}
	return st
}

// Kill -9 of the agent, repeatedly, while it drains a backlog to JetStream
// (NATS alone, no other sink) over a slow link; after a clean restart, the
// stream holds every record exactly once, in seq order, and nothing is left
// in the buffer. Records stored by a batch whose acknowledgement the kill
// cut off are still pending in the buffer at the restart: the sink must find
// them in the stream and skip them, since the duplicate window (100ms) is
// long gone by then.
func TestNATSKill9WhileDraining(t *testing.T) {
	const n = 5000
	ns := startNATSServer(t)
	link := newSlowLink(t, ns.addr(), 20*time.Millisecond)
	e := newEnv(t)
	e.writeNATSConfig(t, natsConfig{urls: []string{link.url()}})
	e.seed(t, n)

	rng := rand.New(rand.NewPCG(13, 2))
	for round := 0; round < 5; round++ {
		p := e.start(t)
		before := ns.count()
		testutil.WaitFor(t, "progress into the stream", 60*time.Second, func() bool {
			c := ns.count()
			return c > before || c >= n
		})
		// A random moment after it: between a commit and its
		// acknowledgement, between the acknowledgement and the ack in the
		// buffer, in the middle of an atomic batch.
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
		t.Logf("round %d: killed with %d records in the stream", round, ns.count())
	}
	if c := ns.count(); c >= n {
		t.Fatalf("the stream had all %d records before the last kill: the kills tested nothing", c)
	}

	p := e.start(t)
	st := e.waitDrained(t, 120*time.Second)
	checkStreamOnceInOrder(t, "stream", ns.read(), 0, n)
	if ss := natsSinkStatus(t, st, "nats"); !ss.Enabled || !ss.Configured || ss.Pending != 0 || ss.DeadLetters != 0 {
		t.Errorf("nats sink after the drain: %+v", ss)
	}
	if ss := natsSinkStatus(t, st, "upstream"); ss.Enabled {
		t.Errorf("upstream enabled without a url: %+v", ss)
	}
	p.stop(t)
}

// Two sinks, the HTTP upstream and NATS, with the NATS server down for the
// whole backfill: the upstream receives everything at once, the buffer
// keeps every record for NATS alone, and the status, the dashboard and the
// state say NATS is offline. Once the server is up, NATS catches up exactly
// once, in order, and the buffer empties.
func TestNATSDownForTheBackfillCatchesUpLater(t *testing.T) {
	const n = 2000
	ns := newNATSServer(t, testutil.FreeAddr(t)) // not started yet
	e := newEnv(t)
	e.writeNATSConfig(t, natsConfig{urls: []string{ns.url()}, upstream: true})
	e.seed(t, n)
	p := e.start(t)

	var st localapi.Status
	testutil.WaitFor(t, "the upstream has everything, NATS is offline", 60*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		if err != nil || len(e.up.Keys()) < n {
			return false
		}
		up, nt := natsSinkStatus(t, st, "upstream"), natsSinkStatus(t, st, "nats")
		// Not sending: the buffer shows the last batch acked before the
		// loop counts it delivered (judged below).
		return up.Pending == 0 && !up.Sending && nt.Health == localapi.SinkHealthOffline && nt.Pending == n
	})
	if st.Queue.Pending != n {
		t.Errorf("the buffer holds %d records for NATS, want %d", st.Queue.Pending, n)
	}
	nsStatus := natsSinkStatus(t, st, "nats")
	if nsStatus.Title != "NATS JetStream" || !nsStatus.Enabled || !nsStatus.Configured || nsStatus.Online || nsStatus.Delivered != 0 ||
		!strings.Contains(nsStatus.Problem, "cannot reach the NATS servers") {
		t.Errorf("nats sink while its server is down: %+v", nsStatus)
	}
	if st.State != localapi.StateOffline || !natsAnyContains(st.Problems, "cannot reach the NATS servers") {
		t.Errorf("state %q, problems %q: want offline with a sentence about NATS", st.State, st.Problems)
	}
	if up := natsSinkStatus(t, st, "upstream"); !up.Online || up.Delivered != n {
		t.Errorf("upstream sink: %+v", up)
	}
	page := mustGet(t, "http://"+e.apiAddr+"/")
	if !strings.Contains(page, `id="sink-nats"`) || !strings.Contains(page, `class="conn off" id="state-nats"`) ||
		!strings.Contains(page, `class="conn on" id="state-upstream"`) {
		t.Errorf("the dashboard does not show NATS offline beside a connected upstream")
	}

	ns.start()
	ns.createStream()
	testutil.WaitFor(t, "NATS caught up", 120*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil && st.Queue.Pending == 0 && natsSinkStatus(t, st, "nats").Pending == 0
	})
	checkStreamOnceInOrder(t, "stream", ns.read(), 0, n)
	if keys := e.up.Keys(); len(keys) != n || e.up.OrderViolations() != 0 || len(e.up.Records()) != n {
		t.Errorf("upstream: %d distinct, %d records, %d order violations; want %d once each, in order",
			len(keys), len(e.up.Records()), e.up.OrderViolations(), n)
	}
	testutil.WaitFor(t, "state ok", 30*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil && st.State == localapi.StateOK
	})
	if nt := natsSinkStatus(t, st, "nats"); !nt.Online || nt.Health != localapi.SinkHealthOK || nt.Delivered != n || nt.LastSuccessAt == nil {
		t.Errorf("nats sink after catching up: %+v", nt)
	}
	if page := mustGet(t, "http://"+e.apiAddr+"/"); !strings.Contains(page, `class="conn on" id="state-nats"`) {
		t.Errorf("the dashboard does not show NATS connected")
	}
	p.stop(t)
}

// The converse: the upstream down for the whole backfill, NATS up. NATS
// receives everything at once; the buffer keeps every record for the
// upstream alone until it is back.
func TestUpstreamDownNATSTakesEverything(t *testing.T) {
	const n = 2000
	ns := startNATSServer(t)
	e := newEnv(t)
	e.writeNATSConfig(t, natsConfig{urls: []string{ns.url()}, upstream: true})
	e.up.SetDown(true)
	e.seed(t, n)
	p := e.start(t)

	var st localapi.Status
	testutil.WaitFor(t, "NATS has everything, the upstream is offline", 60*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		if err != nil || ns.count() < n {
			return false
		}
		up, nt := natsSinkStatus(t, st, "upstream"), natsSinkStatus(t, st, "nats")
		// Not sending: the buffer shows the last batch acked before the
		// loop counts it delivered (judged below).
		return nt.Pending == 0 && !nt.Sending && up.Health == localapi.SinkHealthOffline && up.Pending == n
	})
	checkStreamOnceInOrder(t, "stream", ns.read(), 0, n)
	if st.Queue.Pending != n || st.State != localapi.StateOffline {
		t.Errorf("buffer %d records (want %d for the upstream), state %q (want offline)", st.Queue.Pending, n, st.State)
	}
	if nt := natsSinkStatus(t, st, "nats"); !nt.Online || nt.Delivered != n {
		t.Errorf("nats sink: %+v", nt)
	}
	if len(e.up.Records()) != 0 {
		t.Fatalf("the upstream accepted %d records while down", len(e.up.Records()))
	}

	e.up.SetDown(false)
	testutil.WaitFor(t, "the upstream caught up", 120*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil && st.Queue.Pending == 0 && len(e.up.Keys()) >= n
	})
	if e.up.OrderViolations() != 0 || len(e.up.Records()) != n {
		t.Errorf("upstream: %d records, %d order violations; want %d once each, in order", len(e.up.Records()), e.up.OrderViolations(), n)
	}
	checkStreamOnceInOrder(t, "stream after the upstream caught up", ns.read(), 0, n)
	// The upstream's recovery shows: the state is ok again and its sink
	// online, with everything delivered.
	testutil.WaitFor(t, "state ok", 30*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil && st.State == localapi.StateOK
	})
	if up := natsSinkStatus(t, st, "upstream"); !up.Online || up.Health != localapi.SinkHealthOK || up.Delivered != n ||
		up.Pending != 0 || up.LastSuccessAt == nil {
		t.Errorf("upstream sink after catching up: %+v", up)
	}
	p.stop(t)
}

// Hot reload of [nats] while records flow, to the same stream: first a new
// URL (another way to the same server, as a second address of one cluster
// would be), then new credentials (another user). Each applies at once —
// the agent's connection moves to the new address, then to the new user —
// and the stream ends with every record exactly once, in order: a batch cut
// off by the switch is resent on the new connection only after the sink
// re-learnt what the stream holds. The HTTP upstream, whose section did not
// change, goes on and gets everything too.
func TestNATSReloadNewURLAndCredentialsSameStream(t *testing.T) {
	const n = 6000
	const alicePW, bobPW = "alice-SECRET-pw-1", "bob-SECRET-pw-2"
	ns := startNATSServer(t, natsUser{"operator", "op-pw"}, natsUser{"alice", alicePW}, natsUser{"bob", bobPW})
	first := newSlowLink(t, ns.addr(), 20*time.Millisecond)
	second := newSlowLink(t, ns.addr(), 20*time.Millisecond)
	e := newEnv(t)
	e.writeNATSConfig(t, natsConfig{urls: []string{first.url()}, user: "alice", password: alicePW, upstream: true})
	e.seed(t, n)
	p := e.start(t)

	testutil.WaitFor(t, "records flowing", 60*time.Second, func() bool { return ns.count() >= 500 })
	e.writeNATSConfig(t, natsConfig{urls: []string{second.url()}, user: "alice", password: alicePW, upstream: true})
	at := ns.count()
	e.natsReload(t, 2)
	if at >= n {
		t.Fatalf("the stream had everything before the reload: it tested nothing")
	}
	testutil.WaitFor(t, "records flowing through the new URL", 60*time.Second, func() bool {
		return ns.count() >= at+500 && second.open() == 1 && first.open() == 0
	})

	e.writeNATSConfig(t, natsConfig{urls: []string{second.url()}, user: "bob", password: bobPW, upstream: true})
	at = ns.count()
	e.natsReload(t, 3)
	if at >= n {
		t.Fatalf("the stream had everything before the second reload: it tested nothing")
	}
	testutil.WaitFor(t, "records flowing as the new user", 60*time.Second, func() bool {
		users := ns.users()
		return ns.count() > at && !natsAnyContains(users, "alice") && natsAnyContains(users, "bob")
	})

	e.waitDrained(t, 120*time.Second)
	checkStreamOnceInOrder(t, "stream", ns.read(), 0, n)
	if len(e.up.Keys()) != n || e.up.OrderViolations() != 0 {
		t.Errorf("upstream: %d distinct records, %d order violations", len(e.up.Keys()), e.up.OrderViolations())
	}
	raw := mustGet(t, "http://"+e.apiAddr+"/v1/status")
	p.stop(t)
	out := p.stderr.String()
	if strings.Count(out, "changed=[nats]") != 2 {
		t.Errorf("the log does not name the [nats] section as changed by each reload")
	}
	for _, secret := range []string{alicePW, bobPW} {
		if strings.Contains(out, secret) || strings.Contains(raw, secret) {
			t.Errorf("a NATS password leaked into the log or the status")
		}
	}
}

// Hot reload of [nats] to another stream (another server) while records
// flow. The two streams together hold every record; each holds each record
// at most once, in order: the old one the records delivered before the
// switch (from the first), the new one those still buffered for NATS at the
// switch (to the last). A record is in both only if it was in the one batch
// in flight at the switch, which the old server may have stored while the
// agent cut the connection before its acknowledgement: at least once, as
// for any sink, and at most nats.batch_size records.
func TestNATSReloadToAnotherStream(t *testing.T) {
	const n = 4000
	oldNS, newNS := startNATSServer(t), startNATSServer(t)
	oldLink := newSlowLink(t, oldNS.addr(), 20*time.Millisecond)
	e := newEnv(t)
	e.writeNATSConfig(t, natsConfig{urls: []string{oldLink.url()}})
	e.seed(t, n)
	p := e.start(t)

	testutil.WaitFor(t, "records flowing", 60*time.Second, func() bool { return oldNS.count() >= 500 })
	e.writeNATSConfig(t, natsConfig{urls: []string{newNS.url()}})
	e.natsReload(t, 2)
	// The old stream is read once its connection is gone: nothing more can
	// reach it then.
	testutil.WaitFor(t, "everything delivered, the old connection closed", 120*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && st.Queue.Pending == 0 && oldLink.open() == 0
	})
	olds, news := oldNS.read(), newNS.read()
	if len(olds) >= n || len(news) == 0 {
		t.Fatalf("old stream %d, new stream %d records: the reload did not happen while records flowed", len(olds), len(news))
	}
	checkStreamOnceInOrder(t, "old stream", olds, 0, len(olds))
	from := seededIndex(t, news[0].key)
	checkStreamOnceInOrder(t, "new stream", news, from, n)
	if overlap := len(olds) - from; from > len(olds) || overlap > natsBatch {
		t.Fatalf("old stream has records 0 to %d, new stream from %d: want no gap and at most %d in both", len(olds)-1, from, natsBatch)
	}
	t.Logf("old stream %d records, new stream %d, in both %d", len(olds), len(news), len(olds)-from)
	p.stop(t)
}

func natsAnyContains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
