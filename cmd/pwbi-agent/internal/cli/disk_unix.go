//go:build !windows

package cli

import "golang.org/x/sys/unix"

// freeDisk returns the bytes available to the agent on dir's filesystem.
func freeDisk(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
