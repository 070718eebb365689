// Package installer holds the installer sources of the PWBI Edge Agent
// (SPEC §10) and their tests; it has no Go code of its own.
//
//   - linux/: the .deb, built with nfpm (nfpm.yaml): the systemd unit,
//     maintainer scripts and the tray's XDG autostart entry.
//   - windows/: the MSI, built with wixl (pwbi-agent.wxs) and completed
//     with msibuild by scripts/build-msi.sh.
//
// `make dist` builds both; the tests here inspect what it built (the
// directory in $PWBI_DIST_DIR, which `make test` sets) and, when
// $PWBI_INSTALL_TEST=1 and running as root, install and purge the .deb on
// this machine. docs/installers.md describes every check.
package installer
