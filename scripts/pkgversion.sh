#!/bin/sh
# Turns the build version (git describe --tags --always --dirty, or a
# VERSION given to make) into a package version:
#   pkgversion.sh VERSION deb   Debian version: 1.2.3, 1.2.3+5.gabc1234,
#                               or 0.0.0~git.N.gabc1234[.dirty] before any tag
#   pkgversion.sh VERSION msi   MSI ProductVersion: three numbers, the third
#                               at most 65535: 1.2.3, or 0.0.N before any
#                               tag, where N is the commit count, so that
#                               every commit upgrades the previous one
# Usage: scripts/pkgversion.sh VERSION deb|msi
set -eu
v=${1#v}
kind=$2
count=$(git rev-list --count HEAD 2>/dev/null || echo 0)

case "$v" in
[0-9]*.[0-9]*.[0-9]*)
	base=$(printf '%s' "$v" | sed -E 's/^([0-9]+\.[0-9]+\.[0-9]+).*/\1/')
	rest=${v#"$base"}
	;;
*)
	base=""
	rest=$v
	;;
esac

if [ "$kind" = msi ]; then
	if [ -n "$base" ]; then
		echo "$base"
	else
		echo "0.0.$((count % 65536))"
	fi
	exit 0
fi

# deb: only [A-Za-z0-9.+~] may follow; "-" would start a Debian revision.
suffix=$(printf '%s' "$rest" | sed -E 's/^-//; s/[^A-Za-z0-9.+~]+/./g')
if [ -n "$base" ]; then
	if [ -n "$suffix" ]; then
		echo "$base+$suffix"
	else
		echo "$base"
	fi
else
	echo "0.0.0~git.$count.$suffix"
fi
