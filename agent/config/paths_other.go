//go:build !windows

package config

func osDefaultPath() string    { return "/etc/pwbi-agent/config.toml" }
func osDefaultDataDir() string { return "/var/lib/pwbi-agent" }
