//go:build !windows

package service

import "github.com/kardianos/service"

// withStatus returns s: kardianos's Status serves as it is off Windows.
func withStatus(s service.Service) service.Service { return s }

// delayedStartUnsupported is a Windows matter.
func delayedStartUnsupported(error) bool { return false }
