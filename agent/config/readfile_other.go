//go:build !unix

package config

import "os"

// openNoBlock opens path for reading. Without O_NONBLOCK (Windows), the
// caller's Stat before opening is what keeps pipes and devices out.
func openNoBlock(path string) (*os.File, error) {
	return os.Open(path)
}
