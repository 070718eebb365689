package natssink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
)

// link is one NATS connection and what the sink knows of the agent's
// messages in the stream. It is shared by the Sinks of successive reloads
// that connect alike (Options.Previous) and lives until the last of them is
// closed.
type link struct {
	key     string
	clock   clockwork.Clock
	log     *slog.Logger
	version string
	filter  string // {prefix}.{agent}.>

	refs atomic.Int32 // Sinks using the link; 0: closed for good

	// Set by nats.go's handlers, read by send.
	epoch    atomic.Uint64                // bumped by every disconnect and reconnect
	asyncErr atomic.Pointer[asyncProblem] // the last permission violation or async error
	asyncN   atomic.Uint64                // numbers the async errors
	asyncC   chan struct{}                // signalled with asyncErr (capacity 1)

	mu      sync.Mutex // held by send for the whole attempt, and by release
	closed  bool       // release closed the connection
	nc      *nats.Conn
	inbox   string        // the connection's reply inbox; answers come to {inbox}.{batch}.{i}
	dialing chan struct{} // non-nil while a dial runs; closed when it ends
	dialErr error         // the last dial's error, nil once connected

	// The batch being published: the reply handler passes it its answers.
	batchNo atomic.Uint64
	current atomic.Pointer[currentBatch]

	builder msgBuilder // used by send only (mu held)

	// atomic: the stream takes atomic batches; probe: the next batch is a
	// single record that finds out (after every resync). Guarded by mu.
	atomic, probe bool

	// What the stream holds for this agent (see the package doc and
	// resync.go). Guarded by mu.
	synced      bool   // the view below is exact for this connection epoch
	syncedEpoch uint64 // epoch the view was learnt or kept in
	tailSeq     uint64 // highest Pwbi-Seq stored (0: none known)
	tailStream  uint64 // stream sequence of the agent's last message (0: none)
	// known holds, sorted, every stored Pwbi-Seq ≥ floor (the ones below
	// floor were forgotten). A record at or above floor is stored if and
	// only if it is in known.
	known []uint64
	floor uint64
	// hint, when nonzero, is a stream sequence after which every stored
	// record missing from known lies (set by trouble in this process,
	// cleared by a resync): the resync reads from there instead of
	// searching.
	hint    uint64
	hintSet bool

	st struct {
		published, duplicates, skipped, resyncs, outOfOrder atomic.Uint64
	}
}

// asyncProblem is an error the server sent outside any request (a
// permission violation) or a connection error, numbered from asyncN.
type asyncProblem struct {
	err error
	n   uint64
}

func newLink(key string, cfg Config, clock clockwork.Clock, log *slog.Logger, version string) *link {
	l := &link{
		key:     key,
		clock:   clock,
		log:     log,
		version: version,
		filter:  AgentFilter(cfg.SubjectPrefix, cfg.AgentID),
		asyncC:  make(chan struct{}, 1),
		probe:   true,
	}
	l.refs.Store(1)
	return l
}

// retain adds a user of the link, unless it is closed already.
func (l *link) retain() bool {
	for {
		n := l.refs.Load()
		if n <= 0 {
			return false
		}
		if l.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a user; the last one closes the connection.
func (l *link) release() {
	if l.refs.Add(-1) > 0 {
		return
	}
	// Close the connection first without the lock, so that a send in
	// flight fails at once instead of holding mu until its deadline.
	l.mu.Lock()
	nc := l.nc
	l.closed = true
	l.nc = nil
	l.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
}

func (l *link) stats() Stats {
	s := Stats{
		Published:  l.st.published.Load(),
		Duplicates: l.st.duplicates.Load(),
		Skipped:    l.st.skipped.Load(),
		Resyncs:    l.st.resyncs.Load(),
		OutOfOrder: l.st.outOfOrder.Load(),
	}
	l.mu.Lock()
	if l.nc != nil {
		s.Connected = l.nc.IsConnected()
	}
	l.mu.Unlock()
	return s
}

// noteAsync records an asynchronous error and wakes a send waiting for
// acknowledgements.
func (l *link) noteAsync(err error) {
	l.asyncErr.Store(&asyncProblem{err: err, n: l.asyncN.Add(1)})
	select {
	case l.asyncC <- struct{}{}:
	default:
	}
}

// connOptions are the nats.go options of the connection.
func (l *link) connOptions(cfg Config) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("pwbi-agent/" + l.version + " " + cfg.AgentID),
		nats.Timeout(min(cfg.Timeout, 10*time.Second)),
		// Nothing published while disconnected may reach the server
		// later, after messages lost with the old connection: a publish
		// during a reconnect fails at once and its batch with it.
		nats.ReconnectBufSize(-1),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		// A dead TCP connection (a cafe's router rebooted) is noticed
		// within about a minute instead of the default six.
		nats.PingInterval(20 * time.Second),
		nats.MaxPingsOutstanding(3),
		// A write the network does not take (a stalled uplink) fails
		// after the attempt timeout instead of blocking the sink.
		nats.FlusherTimeout(cfg.Timeout),
		// Replies come to an inbox of this agent only, so that an
		// operator can let each agent subscribe to its own replies.
		nats.CustomInboxPrefix("_INBOX." + Token(cfg.AgentID)),
		nats.NoCallbacksAfterClientClose(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			l.epoch.Add(1)
			if err != nil {
				l.noteAsync(err)
				l.log.Warn("NATS connection lost", "error", err)
			} else {
				l.log.Info("NATS connection lost")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			l.epoch.Add(1)
			l.log.Info("NATS connection restored", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				l.noteAsync(err)
				l.log.Debug("NATS reconnect attempt failed", "error", err)
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			l.epoch.Add(1)
			l.log.Debug("NATS connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			l.noteAsync(err)
			l.log.Warn("NATS server reported an error", "error", err)
		}),
	}
	switch {
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("read nkey seed file: %w", errors.Unwrap(err))
		}
		opts = append(opts, o)
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCAFile))
	}
	if cfg.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCertFile, cfg.TLSKeyFile))
	}
	return opts, nil
}

// dialResult is what a dial produced.
type dialResult struct {
	nc    *nats.Conn
	inbox string
	err   error
}

// currentBatch is the batch whose answers the reply handler passes on.
type currentBatch struct {
	no uint64
	c  chan batchReply // capacity: one answer per message
}

// onReply passes an answer for {inbox}.{batch}.{i} to the current batch;
// answers to an earlier batch are dropped.
func (l *link) onReply(inbox string, m *nats.Msg) {
	cur := l.current.Load()
	if cur == nil {
		return
	}
	rest, ok := strings.CutPrefix(m.Subject, inbox+".")
	if !ok {
		return
	}
	bs, is, ok := strings.Cut(rest, ".")
	if !ok {
		return
	}
	b, err1 := strconv.ParseUint(bs, 10, 64)
	i, err2 := strconv.Atoi(is)
	if err1 != nil || err2 != nil || b != cur.no || i < 1 {
		return
	}
	select {
	case cur.c <- batchReply{i: i, msg: m}:
	default: // more answers than messages: not the server's
	}
}

// connect makes sure the link has a connection, dialing if needed (which
// takes up to the dial timeout per server, so it runs beside the caller: ctx
// ending returns at once, and the connection, if one comes, is kept for the
// next attempt). Called with mu held; it may release and retake mu while it
// waits.
func (l *link) connect(ctx context.Context, cfg Config) error {
	for {
		if l.closed {
			return errClosed
		}
		if l.nc != nil {
			if !l.nc.IsClosed() {
				return nil
			}
			// Closed for good (nats.go gave up, e.g. refused
			// credentials twice): dial again.
			l.nc = nil
		}
		if l.dialing == nil {
			l.dialing = make(chan struct{})
			go l.dial(cfg, l.dialing)
		}
		done := l.dialing
		l.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
		}
		l.mu.Lock()
		select {
		case <-done:
		default:
			return errDialTimeout
		}
		if l.nc == nil {
			err := l.dialErr
			if err == nil {
				err = errClosed
			}
			return err
		}
	}
}

var (
	errClosed      = errors.New("nats: sink closed")
	errDialTimeout = errors.New("nats: no connection within the timeout")
)

// dial connects and stores the result in the link, then closes done.
func (l *link) dial(cfg Config, done chan struct{}) {
	r := l.open(cfg)
	l.mu.Lock()
	defer l.mu.Unlock()
	defer close(done)
	l.dialing = nil
	if r.err != nil {
		l.dialErr = r.err
		return
	}
	if l.closed {
		r.nc.Close()
		return
	}
	l.dialErr = nil
	l.nc, l.inbox = r.nc, r.inbox
	l.epoch.Add(1) // a new connection: what was learnt must be checked again
	l.log.Info("NATS connected", "server", r.nc.ConnectedUrlRedacted())
}

// open dials the servers and, with CreateStream, makes sure the stream
// exists.
func (l *link) open(cfg Config) dialResult {
	opts, err := l.connOptions(cfg)
	if err != nil {
		return dialResult{err: err}
	}
	nc, err := nats.Connect(joinURLs(cfg.URLs), opts...)
	if err != nil {
		return dialResult{err: err}
	}
	inbox := nc.NewInbox()
	if _, err := nc.Subscribe(inbox+".>", func(m *nats.Msg) { l.onReply(inbox, m) }); err != nil {
		nc.Close()
		return dialResult{err: fmt.Errorf("subscribe to the reply inbox: %w", err)}
	}
	if cfg.CreateStream {
		if err := ensureStream(nc, cfg); err != nil {
			nc.Close()
			return dialResult{err: err}
		}
	}
	return dialResult{nc: nc, inbox: inbox}
}

// ensureStream creates the stream for the demo and tests: subjects
// {prefix}.>, file storage, one replica, a two-minute duplicate window.
func ensureStream(nc *nats.Conn, cfg Config) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	_, err = js.Stream(ctx, cfg.Stream)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("look up stream %s: %w", cfg.Stream, err)
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Subjects:    []string{cfg.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    1,
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
		// Atomic batches keep each agent's records gap-free and in
		// order (package doc).
		AllowAtomicPublish: true,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("create stream %s: %w", cfg.Stream, err)
	}
	return nil
}

func joinURLs(urls []string) string {
	out := make([]byte, 0, 64)
	for i, u := range urls {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, u...)
	}
	return string(out)
}

// waitConnected waits, mu held (released meanwhile), until the connection
// is up or ctx ends.
func (l *link) waitConnected(ctx context.Context) error {
	nc := l.nc
	if nc.IsConnected() {
		return nil
	}
	ch := nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	defer nc.RemoveStatusListener(ch)
	if nc.IsConnected() {
		return nil
	}
	l.mu.Unlock()
	defer l.mu.Lock()
	for {
		select {
		case st := <-ch:
			if st == nats.CONNECTED {
				return nil
			}
			return errClosed
		case <-ctx.Done():
			if nc.IsConnected() {
				return nil
			}
			return errDialTimeout
		}
	}
}

// remember records seq as stored.
func (l *link) remember(seq uint64) {
	if seq < l.floor {
		return
	}
	n := len(l.known)
	if n == 0 || l.known[n-1] < seq {
		l.known = append(l.known, seq)
		return
	}
	if i, found := slices.BinarySearch(l.known, seq); !found {
		l.known = slices.Insert(l.known, i, seq)
	}
}

// stored reports whether seq is known to be stored; ok is false when seq is
// below floor (forgotten: a resync must tell).
func (l *link) stored(seq uint64) (stored, ok bool) {
	if seq < l.floor {
		return false, false
	}
	_, found := slices.BinarySearch(l.known, seq)
	return found, true
}

// maxKnown bounds the stored seqs remembered; below the first record of a
// batch they are forgotten once there are more.
const maxKnown = 8192

// forgetBelow forgets the stored seqs below seq when known is large.
func (l *link) forgetBelow(seq uint64) {
	if len(l.known) <= maxKnown || seq <= l.floor {
		return
	}
	i, _ := slices.BinarySearch(l.known, seq)
	l.known = slices.Delete(l.known, 0, i)
	l.floor = seq
}

// trouble marks the view of the stream stale: the next attempt resyncs
// first, reading from stream sequence after (the last position known for
// sure before the failure), and restarts the window at one.
func (l *link) trouble(after uint64) {
	if l.synced || !l.hintSet || after < l.hint {
		l.hint, l.hintSet = after, true
	}
	l.synced = false
}

// retryAnswer is the Retry of a failure: err for logs and LastError, the
// health, and the Problem sentence.
func retryAnswer(code int, err error, health sink.Health, problem sink.Message) sink.Answer {
	a := retry(err, health, problem)
	a.StatusCode = code
	return a
}
