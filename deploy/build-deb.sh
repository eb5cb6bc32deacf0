#!/bin/sh
# Builds the Debian package: copies the source tree (tracked and new files, not build
# output) to a temporary directory, puts deploy/debian there as debian/, runs
# `dpkg-buildpackage -b -us -uc` and copies the .deb files to OUTDIR.
#   deploy/build-deb.sh OUTDIR
# The package's unit tests run inside the build (ctest -L unit). DEB_BUILD_OPTIONS
# is passed through ("nocheck" skips the tests); without a parallel=N in it the build
# uses every CPU (parallel=$(nproc)). With ccache installed, compiles go through it
# (CMAKE_CXX_COMPILER_LAUNCHER), with the temporary directory as its base so that
# rebuilds hit the cache — and so do the compiles of tests/run.sh's build/, which uses
# the same flags.
set -eu
[ $# = 1 ] || { echo "usage: deploy/build-deb.sh OUTDIR" >&2; exit 2; }
out=$1
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

# A fixed place per user, so that compile commands (and ccache's hashes) repeat.
work=${TMPDIR:-/tmp}/poolkeeper-deb-$(id -u)
rm -rf "$work"
mkdir -p "$work/poolkeeper"
trap 'rm -rf "$work"' EXIT
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard | xargs -0 -r sh -c \
     'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh | tar --null -T - -cf -) | tar -C "$work/poolkeeper" -xf -
else
  tar -C "$src" --exclude='./build*' --exclude='./.git' -cf - . | tar -C "$work/poolkeeper" -xf -
fi
rm -rf "$work/poolkeeper/debian"
cp -a "$src/deploy/debian" "$work/poolkeeper/debian"

if command -v ccache >/dev/null 2>&1; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_BASEDIR="$work" CCACHE_NOHASHDIR=1
  # The build path appears in these only to be mapped away.
  export CCACHE_IGNOREOPTIONS="-ffile-prefix-map=* -fdebug-prefix-map=*"
  # debhelper (compat 13) gives dh_auto_* a fresh empty HOME, which would put the cache
  # there and throw it away with the build: keep the caller's.
  CCACHE_DIR="${CCACHE_DIR:-$(ccache -k cache_dir)}"
  export CCACHE_DIR
fi
case " ${DEB_BUILD_OPTIONS:-} " in
  *" parallel="*) ;;
  *) export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$(nproc)" ;;
esac
(cd "$work/poolkeeper" && dpkg-buildpackage -b -us -uc)
found=0
for deb in "$work"/*.deb; do
  [ -e "$deb" ] || continue
  cp "$deb" "$out/"
  echo "built $out/$(basename "$deb")"
  found=1
done
[ $found = 1 ] || { echo "build-deb.sh: no .deb was built" >&2; exit 1; }
