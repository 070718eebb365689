package store

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The sequence high-water mark file ("<path>.seq") keeps, outside the
// database, a number no smaller than any seq the store ever committed, so
// that a database replaced by a fresh one (quarantined, deleted by hand,
// restored from an old copy) continues above it even when the PC clock is
// behind (SPEC §6: seq increases strictly across restarts, database
// replacement and clock changes).
//
// Writing it on every append would add a file write and two fsyncs to every
// commit, so the store reserves seqs ahead, lease style: before a
// transaction commits a seq above the mark, the mark moves to that seq plus
// seqLeaseStep, durably (temporary file, fsync, rename, fsync of the
// directory). The file is thus rewritten once per seqLeaseStep seqs, and
// once after each open, since Open continues above the mark.
//
// The content is one line, "seq-hwm v1 <mark> <crc>\n", where crc is the
// CRC-32 (IEEE) of "seq-hwm v1 <mark>" in 8 lowercase hex digits. A file
// that does not parse is ignored with a warning: the database's own
// sequence still holds, so seq never goes below it, and the next append
// rewrites the file. The checksum keeps a damaged file from pushing seq far
// ahead (towards 2^53, beyond which JavaScript receivers lose precision).
const (
	seqFileSuffix = ".seq"
	// seqLeaseStep is how many seqs one write of the file reserves. At
	// 1<<20, a busy outlet (a few thousand records a day) rewrites it
	// about once a year, plus once per restart; an open skips at most this
	// many seqs, so 2^53 is still billions of restarts away.
	seqLeaseStep uint64 = 1 << 20
	// maxSeqMark bounds a mark read from the file; the arithmetic on it
	// (mark + step) cannot overflow.
	maxSeqMark uint64 = 1 << 62
	// maxSeqFileSize caps what is read of the file (its content is ~40
	// bytes).
	maxSeqFileSize = 128

	seqFilePrefix = "seq-hwm v1 "
)

// seqPath returns the path of the high-water mark file.
func (s *Store) seqPath() string { return s.path + seqFileSuffix }

// readSeqMark returns the high-water mark from the file, or 0 (with a
// warning unless there is no database either, i.e. a new installation) when
// it is missing, unreadable or garbled.
func (s *Store) readSeqMark() uint64 {
	mark, err := readSeqFile(s.seqPath())
	if err == nil {
		return mark
	}
	if errors.Is(err, fs.ErrNotExist) {
		if _, dbErr := os.Stat(s.path); errors.Is(dbErr, fs.ErrNotExist) {
			return 0
		}
	}
	s.log.Warn("Sequence high-water mark file unusable; continuing from the database's own sequence",
		"path", s.seqPath(), "err", err)
	return 0
}

// readSeqFile reads and parses a high-water mark file.
func readSeqFile(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSeqFileSize+1))
	if err != nil {
		return 0, err
	}
	if len(b) > maxSeqFileSize {
		return 0, fmt.Errorf("garbled: longer than %d bytes", maxSeqFileSize)
	}
	return parseSeqFile(b)
}

// formatSeqFile returns the content of a high-water mark file.
func formatSeqFile(mark uint64) []byte {
	line := seqFilePrefix + strconv.FormatUint(mark, 10)
	return fmt.Appendf(nil, "%s %08x\n", line, crc32.ChecksumIEEE([]byte(line)))
}

// parseSeqFile parses the content of a high-water mark file. It accepts
// exactly what formatSeqFile writes.
func parseSeqFile(b []byte) (uint64, error) {
	text, ok := strings.CutSuffix(string(b), "\n")
	if !ok || !strings.HasPrefix(text, seqFilePrefix) {
		return 0, errors.New("garbled: not a high-water mark file")
	}
	sp := strings.LastIndexByte(text, ' ')
	if sp < len(seqFilePrefix) {
		return 0, errors.New("garbled: no checksum")
	}
	line, sum := text[:sp], text[sp+1:]
	digits := line[len(seqFilePrefix):]
	mark, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || strconv.FormatUint(mark, 10) != digits {
		return 0, errors.New("garbled: bad number")
	}
	if len(sum) != 8 || fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(line))) != sum {
		return 0, errors.New("garbled: checksum mismatch")
	}
	if mark > maxSeqMark {
		return 0, fmt.Errorf("garbled: mark %d out of range", mark)
	}
	return mark, nil
}

// writeSeqFile replaces the high-water mark file durably: a reader finds
// either the old content or the new one, never a mix.
func writeSeqFile(path string, mark uint64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(formatSeqFile(mark))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// reserveSeq makes sure the high-water mark file covers last before a
// write transaction commits seqs up to last; it runs inside that
// transaction. An error aborts the transaction: a seq the file does not
// cover could be handed out again after the database is lost.
func (s *Store) reserveSeq(last uint64) error {
	if last <= s.lease {
		return nil
	}
	if last > maxSeqMark {
		return fmt.Errorf("sequence %d beyond %d", last, maxSeqMark)
	}
	mark := last + s.seqStep
	if err := writeSeqFile(s.seqPath(), mark); err != nil {
		return fmt.Errorf("persist sequence high-water mark: %w", err)
	}
	s.lease = mark
	s.seqWrites.Add(1)
	return nil
}

// logSeqRaise reports that the outbox sequence (dbSeq) was raised to the
// high-water mark at open. After a clean restart the gap is at most one
// reservation; a larger one means that the database is not the one that
// handed out the latest seqs.
func (s *Store) logSeqRaise(fresh bool, dbSeq uint64) {
	switch {
	case fresh:
		s.log.Info("New database continues above the sequence high-water mark", "hwm", s.lease, "clock_seq", dbSeq)
	case s.lease-dbSeq > s.seqStep:
		s.log.Warn("Database is behind the sequence high-water mark (replaced or restored); continuing above the mark",
			"hwm", s.lease, "db_seq", dbSeq)
	}
}
