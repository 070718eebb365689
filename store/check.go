package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// confirmReadable reads the whole file through s.openRead. It returns nil
// if every byte could be read, else an error wrapping ErrIO. It runs only
// when the file looks corrupt, before the file is given up: reading it all
// costs seconds for a large file on a slow disk, once.
func (s *Store) confirmReadable() error {
	f, err := s.openRead(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < fi.Size(); {
		want := min(int64(len(buf)), fi.Size()-off)
		n, err := f.ReadAt(buf[:want], off)
		if errors.Is(err, io.EOF) {
			return nil // the file shrank meanwhile; what was there was read
		}
		if err == nil && int64(n) < want {
			err = io.ErrNoProgress // a reader that breaks the ReaderAt contract
		}
		if err != nil {
			return readError(err, fmt.Sprintf("read at offset %d", off+int64(n)))
		}
		off += int64(n)
	}
	return nil
}

// readError classifies an error from ReadAt: the end of the file means a
// truncated (corrupt) file, anything else is an I/O error.
func readError(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corruptf("%s: %v", what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrIO, what, err)
}

// probe checks an existing file before it is opened for writing: it takes
// bbolt's shared lock (so a file in use elsewhere gives ErrLocked and is
// never read), then checks the meta pages, the file length and the freelist
// page by reading them directly (through s.openRead). These are the
// structures bbolt trusts when it opens a file for writing; damage there
// would crash it. Cost: a few pages, whatever the size of the database.
func (s *Store) probe() error {
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: open: %w", err)
	}
	if fi.Size() == 0 {
		return nil // bbolt initialises an empty file
	}
	o := s.bopt
	o.ReadOnly = true
	db, err := openBolt(s.path, o)
	if err != nil {
		return s.classifyOpenErr(err)
	}
	defer db.Close()
	f, err := s.openRead(s.path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	warn, err := checkFile(f, db.Info().PageSize, st.Size())
	if err != nil {
		return err
	}
	if warn != "" {
		// bbolt falls back to the other meta page: the previous committed
		// transaction, whose pages are intact by design. Records and sync
		// state roll back together, so nothing is inconsistent.
		s.log.Warn("Database meta page damaged; recovered the previous transaction", "path", s.path, "detail", warn)
	}
	return nil
}

// bbolt on-disk layout (format version 2), as far as checkFile needs it.
const (
	pageHeaderSize   = 16
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	freelistPageFlag = 0x10
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	pgidNoFreelist   = ^uint64(0)
	maxFreelistBytes = 256 << 20
)

type rawMeta struct {
	valid                 bool
	root, freelist, pgid  uint64
	txid                  uint64
	magic, version, psize uint32
}

func parseMeta(p []byte) rawMeta {
	if len(p) < pageHeaderSize+64 {
		return rawMeta{}
	}
	m := p[pageHeaderSize:]
	le := binary.LittleEndian
	r := rawMeta{
		magic:    le.Uint32(m[0:]),
		version:  le.Uint32(m[4:]),
		psize:    le.Uint32(m[8:]),
		root:     le.Uint64(m[16:]),
		freelist: le.Uint64(m[32:]),
		pgid:     le.Uint64(m[40:]),
		txid:     le.Uint64(m[48:]),
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:56])
	r.valid = r.magic == boltMagic && r.version == boltVersion && h.Sum64() == le.Uint64(m[56:])
	return r
}

// checkFile validates the structures bbolt reads when opening a file for
// writing. It returns a warning when one meta page is damaged (bbolt then
// uses the other) and a *corruptError when the file cannot be used. A read
// error other than the end of the file is not corruption: it gives an error
// wrapping ErrIO.
func checkFile(f io.ReaderAt, pageSize int, size int64) (warn string, err error) {
	if pageSize < 512 || pageSize > 1<<20 {
		return "", corruptf("page size %d", pageSize)
	}
	ps := int64(pageSize)
	if size < 2*ps {
		return "", corruptf("file of %d bytes is shorter than two pages", size)
	}
	page := func(id uint64, n int) ([]byte, error) {
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, int64(id)*ps); err != nil {
			return nil, readError(err, fmt.Sprintf("read page %d", id))
		}
		return buf, nil
	}
	var metas [2]rawMeta
	for i := range metas {
		b, err := page(uint64(i), pageHeaderSize+64)
		if err != nil {
			return "", err
		}
		metas[i] = parseMeta(b)
	}
	m := metas[0]
	switch {
	case metas[0].valid && metas[1].valid:
		if metas[1].txid > metas[0].txid {
			m = metas[1]
		}
	case metas[0].valid:
		warn = "meta page 1 invalid"
	case metas[1].valid:
		m, warn = metas[1], "meta page 0 invalid"
	default:
		return "", corruptf("both meta pages invalid")
	}
	if m.psize != uint32(pageSize) {
		return "", corruptf("meta page size %d, expected %d", m.psize, pageSize)
	}
	if hwm := int64(m.pgid) * ps; m.pgid < 3 || hwm/ps != int64(m.pgid) || hwm > size {
		return "", corruptf("file truncated: %d bytes, meta needs %d pages of %d", size, m.pgid, pageSize)
	}
	if m.root < 2 || m.root >= m.pgid {
		return "", corruptf("root page %d outside [2,%d)", m.root, m.pgid)
	}
	hdr, err := page(m.root, pageHeaderSize)
	if err != nil {
		return "", err
	}
	if id, flags := binary.LittleEndian.Uint64(hdr), binary.LittleEndian.Uint16(hdr[8:]); id != m.root || (flags != branchPageFlag && flags != leafPageFlag) {
		return "", corruptf("root page %d: bad header (id %d, flags %#x)", m.root, id, flags)
	}
	if m.freelist == pgidNoFreelist {
		return warn, nil
	}
	if m.freelist < 2 || m.freelist >= m.pgid {
		return "", corruptf("freelist page %d outside [2,%d)", m.freelist, m.pgid)
	}
	if hdr, err = page(m.freelist, pageHeaderSize+8); err != nil {
		return "", err
	}
	le := binary.LittleEndian
	id, flags, count, overflow := le.Uint64(hdr), le.Uint16(hdr[8:]), uint64(le.Uint16(hdr[10:])), uint64(le.Uint32(hdr[12:]))
	if id != m.freelist || flags != freelistPageFlag {
		return "", corruptf("freelist page %d: bad header (id %d, flags %#x)", m.freelist, id, flags)
	}
	if m.freelist+overflow+1 > m.pgid {
		return "", corruptf("freelist page %d: overflow %d beyond high water mark %d", m.freelist, overflow, m.pgid)
	}
	start := uint64(pageHeaderSize)
	if count == 0xFFFF {
		count = le.Uint64(hdr[pageHeaderSize:])
		start += 8
	}
	span := (overflow + 1) * uint64(ps)
	if count > maxFreelistBytes/8 || start+count*8 > span {
		return "", corruptf("freelist page %d: %d ids do not fit %d pages", m.freelist, count, overflow+1)
	}
	buf := make([]byte, count*8)
	if _, err := f.ReadAt(buf, int64(m.freelist)*ps+int64(start)); err != nil {
		return "", readError(err, "read freelist")
	}
	for i := uint64(0); i < count; i++ {
		if p := le.Uint64(buf[i*8:]); p < 2 || p >= m.pgid {
			return "", corruptf("freelist page %d: free page id %d outside [2,%d)", m.freelist, p, m.pgid)
		}
	}
	return warn, nil
}

// fullCheck runs bbolt's consistency check over the whole file.
func fullCheck(db *bolt.DB) error {
	var problems []string
	err := safeTx(db, false, func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			if len(problems) < 5 {
				problems = append(problems, err.Error())
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return corruptf("consistency check: %s", strings.Join(problems, "; "))
	}
	return nil
}
