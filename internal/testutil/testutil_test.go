package testutil

import (
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
				_ = b.String() // read while others write
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
}

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	WaitFor(t, "three increments", time.Minute, func() bool { return n.Load() == 3 })
	calls := 0
	WaitFor(t, "a condition true at once", time.Minute, func() bool { calls++; return true })
	if calls != 1 {
		t.Fatalf("a true condition was asked %d times", calls)
	}
}

// fatalTB records a Fatalf and ends its goroutine as testing does.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestWaitForFailsAfterTheTimeout(t *testing.T) {
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		WaitFor(ft, "the impossible", 20*time.Millisecond, func() bool { return false })
	}()
	<-done
	if want := "timed out after 20ms waiting for the impossible"; ft.msg != want {
		t.Fatalf("Fatalf(%q), want %q", ft.msg, want)
	}
}

func TestClockDriverAdvancesByEachWait(t *testing.T) {
	t0 := time.Date(2025, 12, 26, 3, 0, 0, 0, time.UTC)
	fc := clockwork.NewFakeClockAt(t0)
	d := NewClockDriver(t, fc)
	done := make(chan time.Time)
	go func() {
		for _, w := range []Wait{{"backoff", time.Second}, {"retry_after", 0}, {"rate_limit", 30 * time.Second}} {
			d.OnWait(w.Reason, w.Dur)
			if w.Dur > 0 {
				<-fc.After(w.Dur) // the client sleeps on the fake clock
			}
		}
		done <- fc.Now()
	}()
	select {
	case now := <-done:
		if want := t0.Add(31 * time.Second); !now.Equal(want) {
			t.Errorf("clock at %v, want %v", now, want)
		}
	case <-time.After(time.Minute):
		t.Fatal("the client was not woken")
	}
	want := []Wait{{"backoff", time.Second}, {"retry_after", 0}, {"rate_limit", 30 * time.Second}}
	if got := d.Waits(); !slices.Equal(got, want) {
		t.Errorf("Waits() = %v, want %v", got, want)
	}
}

func TestFreePortsAreBelowTheEphemeralRangeAndDistinct(t *testing.T) {
	lo, hi := portRange()
	ports := FreePorts(t, 50)
	seen := map[int]bool{}
	for _, p := range ports {
		if p < lo || p >= hi {
			t.Errorf("port %d outside [%d, %d)", p, lo, hi)
		}
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d is not free: %v", p, err)
			continue
		}
		ln.Close()
	}
	if len(ports) != 50 {
		t.Fatalf("got %d ports, want 50", len(ports))
	}
}

func TestFreePortsSkipsABusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	if probe, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(busy+1))); err != nil {
		t.Skipf("the port next to the busy one is taken too: %v", err)
	} else {
		probe.Close()
	}
	// One block of two ports, one listened on: the pick is the other.
	p := &portPool{dir: t.TempDir(), size: 2}
	if got := p.take(t, 1, busy, busy+2); got[0] != busy+1 {
		t.Fatalf("picked port %d; want %d (port %d is listened on)", got[0], busy+1, busy)
	}
}

// A block of ports another test binary holds is not handed out, though
// nothing listens there yet (its child process is still starting).
func TestFreePortsLeaveAnotherBinarysBlock(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock: a binary keeps only its own ports apart")
	}
	lo, _ := portRange()
	const size = 10
	theirs, ours := [2]int{lo, lo + size}, [2]int{lo + size, lo + 2*size}
	// Two blocks, the other binary's and a free one, picked among at
	// random: twenty times, never the other's.
	for range 20 {
		dir := t.TempDir()
		// The other binary locks its block through another open file
		// (flock locks of two open files exclude each other as two
		// processes' do).
		if got := (&portPool{dir: dir, size: size}).take(t, 1, theirs[0], theirs[1])[0]; got >= theirs[1] {
			t.Fatalf("the other binary got port %d outside its block %v", got, theirs)
		}
		got := (&portPool{dir: dir, size: size}).take(t, 1, lo, lo+2*size)[0]
		if got < ours[0] || got >= ours[1] {
			t.Fatalf("handed out port %d of the block %v another binary holds", got, theirs)
		}
	}
}
