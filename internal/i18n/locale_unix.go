//go:build !windows

package i18n

func osLocales() []string { return unixLocales() }
