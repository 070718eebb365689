//go:build windows

package i18n

import (
	"unsafe"

	"golang.org/x/sys/windows"
)

var procGetUserDefaultLocaleName = windows.NewLazySystemDLL("kernel32.dll").NewProc("GetUserDefaultLocaleName")

// osLocales is the POSIX variables when set (a shell under MSYS, a test),
// else the user's default locale name ("id-ID").
func osLocales() []string {
	if l := unixLocales(); l != nil {
		return l
	}
	const localeNameMaxLength = 85
	buf := make([]uint16, localeNameMaxLength)
	n, _, _ := procGetUserDefaultLocaleName.Call(uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	if n == 0 {
		return nil
	}
	return []string{windows.UTF16ToString(buf)}
}
