package pairing

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
)

// CheckEvery is how often a running Manager looks at its identity: renews
// it when it is due, takes the file when it was replaced on disk.
const CheckEvery = time.Hour

// Manager keeps the gateway's TLS identity current while the agent runs:
// it serves it to TLS handshakes (TLSConfig), renews it before it expires
// and takes a file replaced on disk (an administrator's own certificate).
// Its methods are safe for concurrent use.
type Manager struct {
	dir   string
	clock clockwork.Clock
	log   *slog.Logger
	cur   atomic.Pointer[Identity]
	mu    sync.Mutex // serialises Check
	// checkErr is the last Check's failure (nil after a good one), under mu.
	checkErr error
}

// NewManager returns a manager of the identity in dataDir, which it
// creates, or renews, if needed (see Ensure). A nil clock is the real one,
// a nil logger discards.
func NewManager(dataDir string, clock clockwork.Clock, log *slog.Logger) (*Manager, error) {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id, err := Ensure(dataDir, clock.Now())
	if err != nil {
		return nil, err
	}
	m := &Manager{dir: dataDir, clock: clock, log: log}
	m.cur.Store(id)
	m.warnForeign(id)
	return m, nil
}

// Identity returns the identity being served.
func (m *Manager) Identity() *Identity { return m.cur.Load() }

// TLSConfig returns the server configuration of the gateway's listener:
// TLS 1.2 or later, HTTP/1.1, always the current identity.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &m.cur.Load().Certificate, nil
		},
	}
}

// Check looks at the identity file: a file replaced on disk is taken, a
// deleted one is written again from memory (tablets pin what is served),
// and an identity of this package is renewed when it is due. On an error
// the current identity stays in use.
func (m *Manager) Check() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checkErr = m.check()
	return m.checkErr
}

// Problem says, in a sentence for a person, what is wrong with the identity
// in use that nothing will cure by itself: expired (tablets refuse the
// connection), or ending within RenewBefore without a renewal to come
// (someone else's certificate, or the last renewal check failed). ""
// when nothing is wrong or the renewal is still on its way.
func (m *Manager) Problem() (detail string, expired bool) {
	id := m.cur.Load()
	now := m.clock.Now()
	m.mu.Lock()
	checkErr := m.checkErr
	m.mu.Unlock()
	end := id.NotAfter.UTC().Format("2006-01-02")
	switch {
	case !now.Before(id.NotAfter):
		return fmt.Sprintf("the checkout TLS certificate expired on %s: tablets refuse to connect (replace %s or delete it to get a new one, then pair the tablets again)", end, Path(m.dir)), true
	case now.Before(id.NotAfter.Add(-RenewBefore)):
		return "", false
	case !id.own:
		return fmt.Sprintf("the checkout TLS certificate from %s ends on %s and is not the agent's to renew: replace it", Path(m.dir), end), false
	case checkErr != nil:
		return fmt.Sprintf("the checkout TLS certificate ends on %s and renewing it failed: %v", end, checkErr), false
	}
	return "", false
}

func (m *Manager) check() error {
	cur := m.cur.Load()
	id, err := Load(m.dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := writeNew(m.dir, cur.raw); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("write TLS identity back: %w", err)
		}
		m.log.Warn("Checkout TLS identity file was missing; written again", "path", Path(m.dir))
		id, err = Load(m.dir)
	}
	if err != nil {
		return err
	}
	if now := m.clock.Now(); id.Due(now) {
		if id, err = renew(m.dir, id, now); err != nil {
			return err
		}
		m.log.Info("Checkout TLS certificate renewed", "sha256", id.Fingerprint, "not_after", id.NotAfter)
	}
	if !bytes.Equal(id.raw, cur.raw) {
		m.cur.Store(id)
		m.log.Info("Checkout TLS identity changed", "sha256", id.Fingerprint, "spki_sha256", id.KeyPin, "not_after", id.NotAfter)
		m.warnForeign(id)
	}
	return nil
}

// warnForeign warns about a certificate of someone else's that ends soon:
// the agent does not renew it.
func (m *Manager) warnForeign(id *Identity) {
	if !id.own && !m.clock.Now().Before(id.NotAfter.Add(-RenewBefore)) {
		m.log.Warn("Checkout TLS certificate from the file expires soon and is not the agent's to renew; replace it",
			"path", Path(m.dir), "not_after", id.NotAfter)
	}
}

// Run checks the identity every CheckEvery until ctx is canceled, and
// returns nil then.
func (m *Manager) Run(ctx context.Context) error {
	for {
		t := m.clock.NewTimer(CheckEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.Chan():
		}
		if err := m.Check(); err != nil {
			m.log.Error("Checkout TLS identity check failed; the current one stays in use", "err", err)
		}
	}
}
