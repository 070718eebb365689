//go:build !windows

package cli

import (
	"os"
	"syscall"
)

// keepOwner gives f the owner and group of the file it replaces (the
// service user must still read it when root edits it). Only root can.
func keepOwner(f *os.File, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() //nolint:errcheck // best effort
		d.Close()
	}
}
