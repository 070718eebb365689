//go:build !unix

package testutil

// lockBlock is true: without flock, a test binary keeps only its own ports
// apart.
func lockBlock(string) bool { return true }
