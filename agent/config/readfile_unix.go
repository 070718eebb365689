//go:build unix

package config

import (
	"os"
	"syscall"
)

// openNoBlock opens path for reading without blocking: open(2) on a FIFO
// with no writer would otherwise wait for one forever. O_NONBLOCK does not
// change how a regular file is read (it never returns EAGAIN), and the
// caller refuses anything else before reading. O_NOCTTY keeps a terminal
// device from becoming the agent's controlling terminal in the moment
// before it is refused.
func openNoBlock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}
