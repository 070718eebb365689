//go:build !windows

package pairing

import (
	"os"
	"syscall"
)

// ownLikeDir gives f the owner and group of dir when root writes it (the
// CLI run with sudo): the agent's service user must read its key. Other
// users cannot give files away and need not.
func ownLikeDir(f *os.File, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}
