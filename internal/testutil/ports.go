package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
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
// in use". The kernel never picks a source port below that range.
//
// No port is handed out twice in one test binary, and none is handed out
// to two test binaries (`go test ./...` runs packages in parallel): a
// binary takes ports from blocks of blockSize that it locks for its whole
// life (a lock file per block in the temporary directory, released by the
// kernel when the process ends), so a port stays its own while nothing
// listens on it — before a child binds it, while a server is down to be
// restarted on it, or when a test wants an address where nothing answers.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := portRange()
	return ports.take(t, n, lo, hi)
}

// blockSize is how many ports a test binary locks at a time.
const blockSize = 100

// ports is the test binary's pool.
var ports = portPool{dir: filepath.Join(os.TempDir(), "pwbi-test-ports"), size: blockSize}

// portPool hands out the ports of the blocks it locked, in order.
type portPool struct {
	dir  string // where the blocks' lock files are
	size int    // ports in a block

	mu        sync.Mutex
	next, end int          // the rest of the current block: [next, end)
	tried     map[int]bool // blocks (by first port) taken or found locked
}

func (p *portPool) take(t testing.TB, n, lo, hi int) []int {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tried == nil {
		p.tried = map[int]bool{}
	}
	blocks := (hi - lo) / p.size
	if blocks < 1 {
		t.Fatalf("no block of %d ports in [%d, %d)", p.size, lo, hi)
	}
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries == 1000 {
			t.Fatalf("no free TCP port found in [%d, %d)", lo, hi)
		}
		if p.next == p.end {
			start := lo + rand.IntN(blocks)*p.size
			if p.tried[start] {
				continue
			}
			p.tried[start] = true
			if !lockBlock(filepath.Join(p.dir, fmt.Sprintf("%d-%d", start, p.size))) {
				continue // another test binary's
			}
			p.next, p.end = start, start+p.size
		}
		port := p.next
		p.next++
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // something else listens there
		}
		ln.Close()
		out = append(out, port)
	}
	return out
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
