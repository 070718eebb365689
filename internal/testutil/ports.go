package testutil

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// FreeAddr returns "127.0.0.1:<port>" for a TCP port nothing listens on
// now, for a child process or a server started later to listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePorts(t, 1)[0]))
}

// FreePorts returns n distinct TCP ports nothing listens on, on 127.0.0.1,
// now.
//
// The ports are taken below the kernel's ephemeral range. A port the
// kernel hands out for ":0" is free again the moment the test closes its
// probe, and until the child binds it any outgoing connection on the
// machine (the test's own HTTP clients, a parallel package) may take it
// as its source port: CI saw the agent fail with "bind: address already
// in use". The kernel never picks a source port below that range. No port
// is handed out twice in one test binary, so parallel tests do not
// collide with each other either.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := portRange()
	return freePortsIn(t, n, lo, hi)
}

func freePortsIn(t testing.TB, n, lo, hi int) []int {
	t.Helper()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			t.Fatalf("no free TCP port found in [%d, %d)", lo, hi)
		}
		p := lo + rand.IntN(hi-lo)
		if !claim(p) {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // someone listens there; the port stays claimed
		}
		ln.Close()
		ports = append(ports, p)
	}
	return ports
}

var (
	claimedMu sync.Mutex
	claimed   = map[int]bool{}
)

func claim(port int) bool {
	claimedMu.Lock()
	defer claimedMu.Unlock()
	if claimed[port] {
		return false
	}
	claimed[port] = true
	return true
}

// portRange is where FreePorts picks: from 20000 up to the start of the
// ephemeral range (Linux reads it from /proc; elsewhere 49152, the IANA
// dynamic range Windows and macOS use).
func portRange() (lo, hi int) {
	lo, hi = 20000, 49152
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				hi = v
			}
		}
	}
	if hi-lo < 2000 { // an unusual ephemeral range: start lower
		lo = max(hi-10000, 1024)
	}
	return lo, hi
}
