#!/bin/sh
# `cmake --install` into a fresh DESTDIR: the agent in sbin, poolctl and its links in bin, the unit
# pointing at them and passing `systemd-analyze verify`, the config passing
# --check-config; a second install keeps an edited config; and an install whose link
# cannot be made exits non-zero.
set -eu
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
d=$tmp/root
DESTDIR=$d cmake --install "$build" --prefix /usr > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
for l in pool depool drain ispooled; do
  [ "$(readlink "$d/usr/bin/$l")" = poolctl ] || { echo "no link $l -> poolctl"; exit 1; }
  [ "$(readlink "$d/usr/share/man/man8/$l.8")" = poolctl.8 ] || { echo "no man link $l.8"; exit 1; }
done
for f in usr/sbin/poolkeeper usr/bin/poolctl lib/systemd/system/poolkeeper.service etc/poolkeeper/poolkeeper.toml \
    usr/share/doc/poolkeeper/README.md usr/share/doc/poolkeeper/examples/poolkeeper.toml usr/share/man/man8/poolkeeper.8 \
    usr/share/bash-completion/completions/poolctl usr/lib/sysusers.d/poolkeeper.conf; do
  [ -e "$d/$f" ] || { echo "missing $f"; exit 1; }
done
"$d/usr/sbin/poolkeeper" --check-config "$d/etc/poolkeeper/poolkeeper.toml"
# The unit names the installed paths; verify it with them pointed into DESTDIR.
grep -q '^ExecStart=/usr/sbin/poolkeeper --config /etc/poolkeeper/poolkeeper.toml$' "$d/lib/systemd/system/poolkeeper.service"
sed "s|/usr/sbin/poolkeeper|$d/usr/sbin/poolkeeper|g" "$d/lib/systemd/system/poolkeeper.service" > "$tmp/poolkeeper.service"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/poolkeeper.service" 2>&1 || true)
[ -z "$out" ] || { echo "systemd-analyze verify: $out"; exit 1; }
# An operator's config survives a reinstall.
echo "# edited" >> "$d/etc/poolkeeper/poolkeeper.toml"
DESTDIR=$d cmake --install "$build" --prefix /usr > "$tmp/log" 2>&1
grep -q '^# edited$' "$d/etc/poolkeeper/poolkeeper.toml" || { echo "the config was overwritten"; exit 1; }
# Another prefix: the unit follows it.
DESTDIR=$tmp/local cmake --install "$build" --prefix /usr/local > "$tmp/log" 2>&1
grep -q '^ExecStart=/usr/local/sbin/poolkeeper --config /usr/local/etc/poolkeeper/poolkeeper.toml$' \
  "$tmp/local/usr/local/lib/systemd/system/poolkeeper.service" || { echo "unit not rewritten for /usr/local"; exit 1; }
[ "$(readlink "$tmp/local/usr/local/bin/depool")" = poolctl ] || { echo "no link under /usr/local"; exit 1; }
# A link that cannot be made fails the install.
mkdir -p "$tmp/bad/usr/bin/depool/in-the-way"
if DESTDIR=$tmp/bad cmake --install "$build" --prefix /usr > "$tmp/log" 2>&1; then
  echo "install exited 0 although depool could not be linked"; exit 1
fi
grep -q "cannot link" "$tmp/log" || { cat "$tmp/log"; exit 1; }
echo "1 passed, 0 failed"
