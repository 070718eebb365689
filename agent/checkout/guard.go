package checkout

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failed tablet token attempts are limited per client address (SPEC §7.2):
// each address may fail guardBurst times at once, then once per
// guardEvery; while it has no attempt left, its tablet requests are
// answered 429 with Retry-After before the token is even looked at, so a
// guesser cannot test tokens faster than that, not even by luck. Requests
// with a valid token never count.
const (
	guardBurst = 10
	guardEvery = 6 * time.Second
	// maxGuarded bounds the addresses remembered. Beyond it (only a flood
	// from thousands of addresses gets there), addresses that are not
	// remembered share one budget (overflow): an attacker with many
	// addresses can neither grow the map nor buy fresh budgets by pushing
	// others out.
	maxGuarded = 4096
)

// authGuard is the per-address budget of failed token attempts. The zero
// value is not usable; see newAuthGuard. Its methods are safe for
// concurrent use.
type authGuard struct {
	mu       sync.Mutex
	addrs    map[netip.Prefix]*rate.Limiter
	overflow *rate.Limiter
}

func newAuthGuard() *authGuard {
	return &authGuard{addrs: make(map[netip.Prefix]*rate.Limiter), overflow: newGuardLimiter()}
}

func newGuardLimiter() *rate.Limiter { return rate.NewLimiter(rate.Every(guardEvery), guardBurst) }

// guardKey is the address a budget belongs to. IPv6 addresses count one
// by one: on a shop LAN every device shares the same /64. A remote
// address that is not an IP address (a pipe, a test) is one unit.
func guardKey(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	a := ap.Addr().Unmap()
	return netip.PrefixFrom(a, a.BitLen())
}

// limiterLocked returns the budget of key: its own, the shared overflow
// budget when the map is full, or (create unset) nil when it has none.
// g.mu must be held.
func (g *authGuard) limiterLocked(key netip.Prefix, now time.Time, create bool) *rate.Limiter {
	if l := g.addrs[key]; l != nil {
		return l
	}
	if len(g.addrs) >= maxGuarded {
		// Forget the addresses whose budget is whole again: the same as
		// never having failed.
		for k, l := range g.addrs {
			if l.TokensAt(now) >= guardBurst {
				delete(g.addrs, k)
			}
		}
		if len(g.addrs) >= maxGuarded {
			return g.overflow
		}
	}
	if !create {
		return nil
	}
	l := newGuardLimiter()
	g.addrs[key] = l
	return l
}

// wait returns how long the address must wait before its next token
// attempt: 0 when it may try now.
func (g *authGuard) wait(remoteAddr string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.limiterLocked(guardKey(remoteAddr), now, false)
	if l == nil {
		return 0
	}
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) * float64(guardEvery)))
}

// fail counts a failed attempt of the address and reports whether that
// used its last one (from now on it waits).
func (g *authGuard) fail(remoteAddr string, now time.Time) (exhausted bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.limiterLocked(guardKey(remoteAddr), now, true)
	l.AllowN(now, 1)
	return l.TokensAt(now) < 1
}
