#!/bin/sh
# Builds the pwbi-agent .deb with nfpm from the Linux binaries in
# BIN_DIR (pwbi-agent, pwbi-tray) and writes it to OUT_DIR.
# Usage: scripts/build-deb.sh BIN_DIR OUT_DIR VERSION
# NFPM names the nfpm binary (default: nfpm on PATH).
set -eu
bin=$1
out=$2
version=$3
root=$(cd "$(dirname "$0")/.." && pwd)
nfpm=${NFPM:-nfpm}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$bin/pwbi-agent" "$bin/pwbi-tray" "$stage/"
# The packaged config: the example with the data directory the unit
# provides. `config check` of the result is part of the installer tests.
sed 's|^data_dir = ""|data_dir = "/var/lib/pwbi-agent"|' "$root/config.example.toml" > "$stage/config.toml"
grep -q '^data_dir = "/var/lib/pwbi-agent"$' "$stage/config.toml" || {
	echo "build-deb: config.example.toml has no 'data_dir = \"\"' line to set" >&2
	exit 1
}

mkdir -p "$out"
deb_version=$("$root/scripts/pkgversion.sh" "$version" deb)
target="$out/pwbi-agent_${deb_version}_amd64.deb"
rm -f "$target"
cd "$root"
STAGE=$stage DEB_VERSION=$deb_version "$nfpm" package --config installer/linux/nfpm.yaml \
	--packager deb --target "$target"
