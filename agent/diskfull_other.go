//go:build !windows

package agent

import (
	"errors"
	"syscall"
)

// diskFull reports whether err says the disk has no space left.
func diskFull(err error) bool { return errors.Is(err, syscall.ENOSPC) }
