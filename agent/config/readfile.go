package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// MaxFileSize bounds the config file: ReadFileSafe refuses a larger one.
// A real config file is a few KiB.
const MaxFileSize = 1 << 20

// Errors of ReadFileSafe, for errors.Is. The errors returned carry a
// message naming the file; these only classify them.
var (
	// ErrNotRegular: the path (after resolving symlinks) is a named pipe,
	// a device, a directory, a socket or another file that is not a
	// regular file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file holds more than the limit.
	ErrTooLarge = errors.New("file too large")
)

// fileError is a ReadFileSafe error: a message naming the file, classified
// by one of the sentinels above.
type fileError struct {
	msg  string
	kind error
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return e.kind }

// ReadFileSafe reads the file at path, which must be a regular file after
// symlinks are resolved, and must hold at most limit bytes. It is how this
// package reads every file it is pointed at — the config file (Load, with
// MaxFileSize) and each `*_file` secret — and how the config watcher and
// a manual reload read the config file, so that no path an administrator
// (or a mistake) puts there can hang or exhaust the agent:
//
//   - A named pipe, a device (a symlink to /dev/zero), a directory or a
//     socket is refused with ErrNotRegular and never read. On Unix the file
//     is opened with O_NONBLOCK, so even a FIFO swapped in after the first
//     check does not block the open, and the type is checked again on the
//     open file (fstat) before anything is read.
//   - A file larger than limit is refused with ErrTooLarge; the read goes
//     through an io.LimitReader, so a file that grows, or lies about its
//     size (/proc), cannot make it allocate more than limit+1 bytes.
//
// what names the file's role in error messages, e.g. "config file" gives
// "config file /etc/pwbi-agent/config.toml is not a regular file (named
// pipe)". Errors name the path and never contain the file's content, so
// they are safe for a secret's file. Errors from the OS (a missing file,
// permission denied) are returned as they are: errors.Is(err,
// fs.ErrNotExist) works.
//
// info describes the file as opened (size, modification time).
func ReadFileSafe(path, what string, limit int64) (data []byte, info fs.FileInfo, err error) {
	// Stat first: a non-regular file is not even opened (opening a device
	// can have effects of its own, and Windows has no O_NONBLOCK).
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := checkFile(path, what, fi, limit); err != nil {
		return nil, nil, err
	}
	f, err := openNoBlock(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	// The path may have been replaced between Stat and open: check what
	// was actually opened.
	if fi, err = f.Stat(); err != nil {
		return nil, nil, err
	}
	if err := checkFile(path, what, fi, limit); err != nil {
		return nil, nil, err
	}
	data, err = io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(data)) > limit {
		return nil, nil, tooLarge(path, what, limit)
	}
	return data, fi, nil
}

// checkFile refuses what ReadFileSafe must not read.
func checkFile(path, what string, fi fs.FileInfo, limit int64) error {
	if !fi.Mode().IsRegular() {
		kind := fileKind(fi.Mode())
		// Say where a symlink leads: "(character device /dev/zero)".
		if target, err := filepath.EvalSymlinks(path); err == nil && target != filepath.Clean(path) {
			kind += " " + target
		}
		return &fileError{msg: fmt.Sprintf("%s %s is not a regular file (%s)", what, path, kind), kind: ErrNotRegular}
	}
	if fi.Size() > limit {
		return tooLarge(path, what, limit)
	}
	return nil
}

func tooLarge(path, what string, limit int64) error {
	return &fileError{msg: fmt.Sprintf("%s %s is larger than %s", what, path, sizeText(limit)), kind: ErrTooLarge}
}

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "special file"
}

// sizeText renders a limit: "1 MiB", "64 KiB", "100 bytes".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
