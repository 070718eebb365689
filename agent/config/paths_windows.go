//go:build windows

package config

import (
	"os"
	"path/filepath"
)

// programData is %ProgramData%\PWBI\Agent.
func programData() string {
	base := os.Getenv("ProgramData")
	if base == "" {
		base = `C:\ProgramData`
	}
	return filepath.Join(base, "PWBI", "Agent")
}

func osDefaultPath() string    { return filepath.Join(programData(), "config.toml") }
func osDefaultDataDir() string { return filepath.Join(programData(), "data") }
