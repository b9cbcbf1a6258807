#!/usr/bin/env bash
# Fetch the source of the kernel foliolab models — Linux 7.2.13 as Debian ships it
# (linux-source-7.2 7.2.13-1, suite sid, architecture all, ~164 MB) — into a cache outside the
# repository, and unpack it. The behaviour notes were written without the source; this is the
# authority they are checked against (cite file:function).
#
# It uses a private apt configuration (its own sources list, lists and cache under the cache
# directory), so the host's apt sources stay as they are and no root is needed. Needs apt-get,
# dpkg-deb, tar and xz (Debian/Ubuntu hosts have them).
#
#   scripts/kernel-source.sh            # prints the source directory when done
#   FOLIOLAB_CACHE=/somewhere scripts/kernel-source.sh
set -euo pipefail
VERSION=${KERNEL_SOURCE_VERSION:-7.2.13-1}
PKG=linux-source-7.2
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${FOLIOLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/foliolab}
DIR=$CACHE/kernel-source
SRC=$DIR/$PKG-$VERSION
log() { printf '[kernel-source] %s\n' "$*" >&2; }

if [ -f "$SRC/.unpacked" ]; then
	echo "$SRC/linux-source-7.2"
	exit 0
fi
for t in apt-get dpkg-deb tar xz; do
	command -v "$t" >/dev/null || { log "needs $t"; exit 2; }
done
APT=$DIR/apt
mkdir -p "$APT"/lists/partial "$APT"/cache/archives/partial "$APT"/parts "$DIR"/debs
echo "deb [arch=arm64] $MIRROR sid main" >"$APT/sources.list"
: >"$APT/preferences"
OPTS=(-q -o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/parts"
	-o "Dir::Etc::Preferences=$APT/preferences" -o "Dir::Etc::PreferencesParts=$APT/parts"
	-o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
	-o "APT::Architecture=arm64" -o "APT::Architectures::=arm64" -o "Debug::NoLocking=1")
DEB=$DIR/debs/${PKG}_${VERSION}_all.deb
if [ ! -f "$DEB" ]; then
	log "apt-get update (private sid source, $MIRROR)"
	apt-get "${OPTS[@]}" update >&2
	log "apt-get download $PKG=$VERSION"
	(cd "$DIR/debs" && apt-get "${OPTS[@]}" download "$PKG=$VERSION" >&2)
fi
rm -rf "$SRC" && mkdir -p "$SRC"
log "unpack $(basename "$DEB")"
dpkg-deb -x "$DEB" "$SRC/pkg"
tar -xf "$SRC/pkg/usr/src/linux-source-7.2.tar.xz" -C "$SRC"
rm -rf "$SRC/pkg"
grep -q '^SUBLEVEL = 13$' "$SRC/linux-source-7.2/Makefile" || { log "unexpected Makefile version"; exit 1; }
touch "$SRC/.unpacked"
log "Linux $(sed -n 's/^VERSION = //p' "$SRC/linux-source-7.2/Makefile").$(sed -n 's/^PATCHLEVEL = //p' "$SRC/linux-source-7.2/Makefile").13 source ready"
echo "$SRC/linux-source-7.2"
