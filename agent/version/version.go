// Package version holds the agent's build version, stamped by the linker:
//
//	go build -ldflags "-X github.com/pwbi/edge-agent/agent/version.Version=1.2.3"
package version

import "runtime/debug"

// Version is the release version; "dev" for builds that were not stamped.
var Version = "dev"

// String returns the version, with the VCS revision for unstamped builds.
func String() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			return "dev-" + rev + dirty
		}
	}
	return Version
}
