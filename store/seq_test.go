package store

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// year2000 is a PC clock far behind: a fresh database would start its seq
// from it if nothing else were known.
func year2000() time.Time { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }

// fillSeqs appends, acks and dead-letters a little, and returns the highest
// seq handed out.
func fillSeqs(t *testing.T, opts Options) uint64 {
	t.Helper()
	s := mustOpen(t, opts)
	defer s.Close()
	var last uint64
	for i := range 5 {
		res := mustAppend(t, s, inputs(100*i, 40), nil)
		last = res.LastSeq
		if err := s.Ack(res.FirstSeq, res.FirstSeq+1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeadLetter(last, "rejected"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequeueAll(); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st.LastSeq // the requeued record got the highest
}

// A fresh database (deleted by hand, or quarantined) on a PC whose clock is
// behind still continues above every seq handed out before.
func TestSeqSurvivesDatabaseLossWithClockBehind(t *testing.T) {
	for _, how := range []string{"deleted", "quarantined"} {
		t.Run(how, func(t *testing.T) {
			opts := testOptions(t, "")
			last := fillSeqs(t, opts)
			if uint64(year2000().UnixMicro()) >= last {
				t.Fatal("test is moot: the clock would do")
			}
			switch how {
			case "deleted":
				if err := os.Remove(opts.Path); err != nil {
					t.Fatal(err)
				}
			case "quarantined":
				if err := os.WriteFile(opts.Path, []byte("garbage, not a bbolt file"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			opts.Now = year2000
			s := mustOpen(t, opts)
			defer s.Close()
			if _, ok := s.Quarantine(); ok != (how == "quarantined") {
				t.Fatalf("Quarantine() = %v", ok)
			}
			res := mustAppend(t, s, inputs(5000, 3), nil)
			if res.FirstSeq <= last {
				t.Fatalf("first seq of the fresh database %d, at or below %d handed out before", res.FirstSeq, last)
			}
			if res.FirstSeq > last+2*seqLeaseStep {
				t.Errorf("first seq %d jumped far beyond %d", res.FirstSeq, last)
			}
		})
	}
}

// A missing, garbled or stale mark file with the database intact: seq
// continues from the database, neither backwards nor far ahead, and the
// file is rewritten by the next append.
func TestSeqFileUnusableFallsBackToDatabase(t *testing.T) {
	for name, content := range map[string][]byte{
		"missing":         nil,
		"empty":           {},
		"garbage":         []byte("\x00\xff garbage \x01"),
		"huge bad crc":    []byte("seq-hwm v1 9007199254740000 00000000\n"),
		"no newline":      formatSeqFile(1 << 40)[:len(formatSeqFile(1<<40))-1],
		"oversized":       []byte(strings.Repeat("9", 4096)),
		"stale but valid": formatSeqFile(12345),
	} {
		t.Run(name, func(t *testing.T) {
			opts := testOptions(t, "")
			last := fillSeqs(t, opts)
			seqFile := opts.Path + seqFileSuffix
			if content == nil {
				if err := os.Remove(seqFile); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(seqFile, content, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			opts.Now = year2000
			s := mustOpen(t, opts)
			defer s.Close()
			res := mustAppend(t, s, inputs(5000, 3), nil)
			if res.FirstSeq != last+1 {
				t.Errorf("first seq %d, want %d: continue from the database", res.FirstSeq, last+1)
			}
			if name != "stale but valid" && !strings.Contains(logs.String(), "high-water mark file unusable") {
				t.Errorf("no warning logged:\n%s", logs.String())
			}
			mark, err := readSeqFile(seqFile)
			if err != nil || mark < res.LastSeq {
				t.Errorf("mark file after append = %d, %v; want >= %d", mark, err, res.LastSeq)
			}
		})
	}
}

// Appends across many reservations: seq strictly increasing, the mark file
// always ahead of every committed seq, and rewritten about once per step.
func TestSeqLeaseAcrossManySteps(t *testing.T) {
	const step, maxBatch = 100, 37
	opts := testOptions(t, "")
	opts.seqStep = step
	s := mustOpen(t, opts)
	defer s.Close()
	seqFile := opts.Path + seqFileSuffix
	var (
		last  uint64
		count int
	)
	for i := 0; count < 5000; i++ {
		n := 1 + (i*7)%maxBatch
		res := mustAppend(t, s, inputs(count, n), nil)
		if res.FirstSeq <= last || res.LastSeq != res.FirstSeq+uint64(n)-1 {
			t.Fatalf("append %d: seqs %d..%d after %d", i, res.FirstSeq, res.LastSeq, last)
		}
		last = res.LastSeq
		count += n
		if i%10 == 9 { // requeued records take new seqs too
			if err := s.DeadLetter(res.FirstSeq, "x"); err != nil {
				t.Fatal(err)
			}
			if n, err := s.RequeueAll(); err != nil || n != 1 {
				t.Fatalf("RequeueAll = %d, %v", n, err)
			}
			last++
			count++
		}
		if mark, err := readSeqFile(seqFile); err != nil || mark < last {
			t.Fatalf("after append %d the mark file says %d (%v), below seq %d", i, mark, err, last)
		}
	}
	checkIncreasing(t, mustPending(t, s, 10000))
	writes := int(s.seqWrites.Load())
	t.Logf("%d seqs, %d writes of the mark file", count, writes)
	if writes > count/step+1 || writes < count/(step+maxBatch) {
		t.Errorf("mark file written %d times for %d seqs, step %d", writes, count, step)
	}
}

// If the mark cannot be persisted, nothing is committed: a seq the file
// does not cover could be handed out twice after the database is lost.
func TestSeqFileWriteFailureAbortsAppend(t *testing.T) {
	opts := testOptions(t, "")
	opts.seqStep = 10
	s := mustOpen(t, opts)
	defer s.Close()
	first := mustAppend(t, s, inputs(0, 5), nil)
	// A directory where the temporary file goes makes the write fail.
	tmp := opts.Path + seqFileSuffix + ".tmp"
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(inputs(10, 20), nil); err == nil || !strings.Contains(err.Error(), "high-water mark") {
		t.Fatalf("Append without a writable mark file = %v", err)
	}
	if st, _ := s.Stats(); st.Pending != 5 || st.LastSeq != first.LastSeq {
		t.Fatalf("stats after the failed append = %+v", st)
	}
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	res := mustAppend(t, s, inputs(10, 20), nil)
	if res.FirstSeq != first.LastSeq+1 {
		t.Errorf("first seq after recovery %d, want %d", res.FirstSeq, first.LastSeq+1)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(opts.Path), "agent.db.seq.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
}

func TestSeqFileFormat(t *testing.T) {
	for _, mark := range []uint64{0, 1, 1766719800001012, maxSeqMark} {
		b := formatSeqFile(mark)
		got, err := parseSeqFile(b)
		if err != nil || got != mark {
			t.Errorf("round trip of %d (%q) = %d, %v", mark, b, got, err)
		}
	}
	good := formatSeqFile(1766719800001012)
	for _, bad := range []string{
		"", "\n", "seq-hwm v1 \n", "seq-hwm v1 1\n",
		strings.Replace(string(good), "1766", "1767", 1),                // digit flipped
		strings.Replace(string(good), "v1", "v2", 1),                    // unknown version
		strings.Replace(string(good), "seq-hwm v1 ", "seq-hwm v1 0", 1), // leading zero
		string(good) + "x",
		string(formatSeqFile(maxSeqMark + 1)),
		"seq-hwm v1 -1 00000000\n",
	} {
		if m, err := parseSeqFile([]byte(bad)); err == nil {
			t.Errorf("parseSeqFile(%q) = %d, want an error", bad, m)
		}
	}
}
