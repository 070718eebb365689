package natssink

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// drain runs the real delivery loop over src to s until the test ends.
type drain struct {
	src    *memSource
	fwd    *deliver.Forwarder
	cancel context.CancelFunc
	done   chan struct{}
}

func startDrain(t *testing.T, src *memSource, s *Sink, batch int, log *slog.Logger) *drain {
	t.Helper()
	fwd := deliver.New(src, s, deliver.Config{BatchSize: batch}, deliver.Options{
		Logger:     log,
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 300 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	d := &drain{src: src, fwd: fwd, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		fwd.Run(ctx)
	}()
	t.Cleanup(d.stop)
	return d
}

func (d *drain) stop() {
	d.cancel()
	<-d.done
}

// waitAcked waits until at least n records left the buffer.
func (d *drain) waitAcked(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	testutil.WaitFor(t, "records delivered", limit, func() bool {
		_, acked, _ := d.src.counts()
		return acked >= n
	})
}

// The chaos drill of issue 13: 50,000 records drained into a 3-node R3
// stream while the stream leader is shut down and restarted on its store,
// then the whole cluster is stopped for longer than the duplicate window and
// started again. Every record must end in the stream exactly once, in seq
// order, and nothing may be left pending.
func TestClusterChaosExactlyOnceInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 3-node cluster through restarts")
	}
	const (
		total     = 50_000
		dupWindow = time.Second
	)
	c := newCluster(t, 3)
	_, js := c.client()
	createStream(t, js, streamConfig(3, dupWindow))

	var logs testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	defer func() {
		if t.Failed() {
			t.Logf("sink and loop log:\n%s", logs.String())
		}
	}()
	s := New(Config{URLs: c.urls(), AgentID: testAgent, Timeout: 3 * time.Second}, Options{Logger: log})
	defer s.Close()
	src := newMemSource(records(1, total))
	d := startDrain(t, src, s, 500, log)

	// 1. Shut the stream leader down while draining, then restart it on
	// the same store.
	d.waitAcked(t, 5_000, waitLimit)
	info, err := streamInfoRetry(t, js, DefaultStream)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %v", err)
	}
	leader := c.index(info.Cluster.Leader)
	if leader < 0 {
		t.Fatalf("unknown leader %q", info.Cluster.Leader)
	}
	_, before, _ := src.counts()
	t.Logf("stopping stream leader %s after %d records", info.Cluster.Leader, before)
	c.stop(leader)
	// Two of three replicas keep a quorum: delivery goes on.
	d.waitAcked(t, before+5_000, waitLimit)
	c.start(leader)
	waitStreamSettled(t, js, DefaultStream, 3)

	// 2. Stop the whole cluster for longer than the duplicate window.
	d.waitAcked(t, 25_000, waitLimit)
	_, before, _ = src.counts()
	t.Logf("stopping the whole cluster after %d records", before)
	c.stopAll()
	waitDuration(3 * dupWindow)
	for i := range 3 {
		c.start(i)
	}
	c.waitReady()

	// 3. Everything drains.
	testutil.WaitFor(t, "buffer empty", 3*waitLimit, func() bool {
		pending, _, _ := src.counts()
		return pending == 0
	})
	d.stop()
	if pending, acked, dead := src.counts(); pending != 0 || acked != total || dead != 0 {
		t.Fatalf("buffer: %d pending, %d delivered, %d dead-lettered; want 0, %d, 0", pending, acked, dead, total)
	}
	waitStreamSettled(t, js, DefaultStream, 3)
	msgs := readStream(t, js, DefaultStream)
	checkExactlyOnce(t, msgs, testAgent, seqRange(1, total))
	st := s.Stats()
	t.Logf("stats: %+v", st)
	if st.Resyncs < 2 {
		t.Errorf("resyncs %d: the outages went unnoticed", st.Resyncs)
	}
}
