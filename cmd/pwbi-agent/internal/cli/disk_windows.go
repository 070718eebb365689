//go:build windows

package cli

import "golang.org/x/sys/windows"

// freeDisk returns the bytes available to the agent on dir's volume.
func freeDisk(dir string) (uint64, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, err
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return 0, err
	}
	return avail, nil
}
