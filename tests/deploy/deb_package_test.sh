#!/bin/sh
# The Debian package deploy/build-deb.sh builds, checked by lintian (no errors),
# installed with dpkg -i on this disposable machine: the maintainer scripts restart the
# service and never the socket on an upgrade; the installed agent accepts the installed
# config, poolctl answers --help, the links, user and groups exist, the unit passes
# `systemd-analyze verify` and rates at most 2.0 in `systemd-analyze security
# --offline=yes`; what the docs name is what the package holds (the units'
# Documentation=, the man pages' paths and cross-references, the shipped config's
# pointer, the README's installed files) and the commands are on a normal user's PATH;
# the README's first run (the installed agent started as the unit starts it, then
# `poolctl status`) works; then purged.
#   deb_package_test.sh SRC [DEB_DIR]
# Under ctest DEB_DIR holds the package readme_commands_test built with the README's
# own command (fixture poolkeeper_deb: the unit tests ran inside dpkg-buildpackage), so
# a run builds the package once. Without a package in DEB_DIR (the script run by hand)
# it builds one there: with CI=true exactly as the README gives it, otherwise with
# nocheck to save a developer minutes. Prints how the package was built.
set -eu
src=$1
deb_dir=${2:-}
[ "$(id -u)" = 0 ] || { echo "needs root (dpkg -i)"; exit 1; }
tmp=$(mktemp -d)
cleanup() { dpkg --purge poolkeeper >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
dpkg --purge poolkeeper >/dev/null 2>&1 || true   # a leftover of an interrupted run

if [ -n "$deb_dir" ] && ls "$deb_dir"/poolkeeper_*.deb >/dev/null 2>&1; then
  deb=$(ls "$deb_dir"/poolkeeper_*.deb)
  echo "package: $deb (already in DEB_DIR; under ctest the one readme_commands_test built)"
else
  start=$(date +%s)
  mkdir -p "$tmp/out"
  if [ "${CI:-}" = true ]; then
    how="as documented (unit tests inside)"
    env -u DEB_BUILD_OPTIONS "$src/deploy/build-deb.sh" "$tmp/out" > "$tmp/build.log" 2>&1 ||
      { tail -60 "$tmp/build.log"; exit 1; }
    grep -q '100% tests passed' "$tmp/build.log" || { tail -60 "$tmp/build.log"; echo "no unit tests ran in the build"; exit 1; }
  else
    how="with nocheck (CI=true builds it as documented)"
    DEB_BUILD_OPTIONS=nocheck "$src/deploy/build-deb.sh" "$tmp/out" > "$tmp/build.log" 2>&1 ||
      { tail -60 "$tmp/build.log"; exit 1; }
  fi
  echo "package built $how in $(( $(date +%s) - start )) s"
  deb=$(ls "$tmp"/out/poolkeeper_*.deb)
  if [ -n "$deb_dir" ]; then
    mkdir -p "$deb_dir"
    cp "$tmp"/out/*.deb "$deb_dir/"
    echo "left in $deb_dir: $(cd "$deb_dir" && echo *.deb)"
  fi
fi
[ "$(echo "$deb" | wc -l)" = 1 ] || { echo "more than one package: $deb"; exit 1; }

lintian --fail-on error "$deb" > "$tmp/lintian.log" 2>&1 ||
  { cat "$tmp/lintian.log"; echo "lintian found errors"; exit 1; }
echo "lintian: $(grep -c '^E:' "$tmp/lintian.log" || true) errors, $(grep -c '^W:' "$tmp/lintian.log" || true) warnings"
cat "$tmp/lintian.log"

# An upgrade restarts the service (a restart keeps the pool state) and never touches
# the socket: restarting poolkeeper.socket closes the port, and the balancer's check
# through it would take the host out for the gap.
dpkg-deb -e "$deb" "$tmp/control"
grep -qE "deb-systemd-invoke (try-)?restart 'poolkeeper\.service'( >|\$)" "$tmp/control/postinst" ||
  { echo "postinst does not restart poolkeeper.service after an upgrade"; exit 1; }
for f in preinst postinst prerm postrm; do
  [ -f "$tmp/control/$f" ] || continue
  if grep -nE "(deb-systemd-invoke|systemctl)[^#]*(start|stop|restart)[^#]*poolkeeper\.socket" "$tmp/control/$f"; then
    echo "$f starts, stops or restarts poolkeeper.socket (the port would close)"; exit 1
  fi
done
echo "maintainer scripts: an upgrade restarts poolkeeper.service only"

dpkg -i "$deb" > "$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; exit 1; }
/usr/sbin/poolkeeper --check-config /etc/poolkeeper/poolkeeper.toml
runuser -u poolkeeper -- /usr/sbin/poolkeeper --check-config /etc/poolkeeper/poolkeeper.toml >/dev/null
/usr/bin/poolctl --help | grep -q 'lvs-config' || { echo "poolctl --help lacks lvs-config"; exit 1; }
dpkg-query -W -f='${Conffiles}\n' poolkeeper | grep -q ' /etc/poolkeeper/poolkeeper.toml ' ||
  { echo "the config is not a conffile"; exit 1; }
for l in pool depool drain ispooled; do
  [ "$(readlink /usr/bin/$l)" = poolctl ] || { echo "no link /usr/bin/$l -> poolctl"; exit 1; }
done
# An operator's login shell finds them (Debian leaves sbin out of a user's PATH).
found=$(runuser -l nobody -s /bin/sh -c 'for c in poolctl pool depool drain ispooled; do command -v $c; done' 2>/dev/null)
[ "$found" = "$(printf '/usr/bin/%s\n' poolctl pool depool drain ispooled)" ] ||
  { echo "not on a normal user's PATH: $found"; exit 1; }

# What the docs point at is what the package holds. Every path under /usr or /etc that
# the man pages, the units' Documentation= and the shipped config name must be a file
# of the package (or a directory of them); cross-referenced man pages must resolve.
dpkg -L poolkeeper > "$tmp/files"
bad=""
check_path() {  # FILE-THAT-NAMES-IT PATH
  p=${2%/}
  grep -qx "$p" "$tmp/files" || bad="$bad
  $1 names $2, which the package does not hold"
}
for m in poolkeeper poolctl; do
  page=$(man -w "$m")
  zcat -f "$page" | sed 's/\\-/-/g; s/\\f[BIRP]//g' > "$tmp/$m.8"
  for p in $(grep -oE '(^|[^A-Za-z0-9_./-])/(usr|etc|lib)/[A-Za-z0-9_./-]*[A-Za-z0-9_/]' "$tmp/$m.8" |
             sed 's|^[^/]*||' | sort -u); do
    check_path "$m(8)" "$p"
  done
  for ref in $(sed -n 's/^\.BR \([a-z.]*\) (\([0-9]\)).*/\1.\2/p' "$tmp/$m.8"); do
    man -w "${ref%.*}" >/dev/null 2>&1 || bad="$bad
  $m(8) refers to ${ref%.*}(${ref##*.}), which man cannot find"
  done
done
for u in poolkeeper.service poolkeeper.socket; do
  for d in $(sed -n 's/^Documentation=//p' "/lib/systemd/system/$u"); do
    case $d in
      file:*) check_path "$u" "${d#file:}" ;;
      man:*) n=${d#man:}; man -w "${n%%(*}" >/dev/null 2>&1 || bad="$bad
  $u: Documentation=$d, which man cannot find" ;;
    esac
  done
done
for p in $(grep -o '/usr/share/doc/poolkeeper/[A-Za-z0-9_./-]*[A-Za-z0-9_/]' /etc/poolkeeper/poolkeeper.toml | sort -u); do
  check_path "/etc/poolkeeper/poolkeeper.toml" "$p"
done
# The installed files the README's "Install and first run" names.
for p in $(sed -n '/^## Install and first run/,/^## /p' /usr/share/doc/poolkeeper/README.md |
           grep -o '/usr/share/doc/poolkeeper/[A-Za-z0-9_./-]*[A-Za-z0-9_/]' | sort -u); do
  check_path "README.md" "$p"
done
[ -z "$bad" ] || { echo "docs and package disagree:$bad"; exit 1; }
echo "docs and package agree: $(wc -l < "$tmp/files") paths"
# Enabled on first install, started by nobody: both come up at the next boot.
for l in multi-user.target.wants/poolkeeper.service sockets.target.wants/poolkeeper.socket; do
  [ -L "/etc/systemd/system/$l" ] || { echo "not enabled: $l"; exit 1; }
done
getent passwd poolkeeper | grep -q ':/var/lib/poolkeeper:/usr/sbin/nologin$' || { echo "no poolkeeper user"; exit 1; }
getent group poolkeeper >/dev/null && getent group poolkeeper-admins >/dev/null || { echo "groups missing"; exit 1; }
[ "$(id -gn poolkeeper)" = poolkeeper ] || { echo "poolkeeper's primary group is $(id -gn poolkeeper)"; exit 1; }
[ -e /etc/poolkeeper/etcd-password ] && { echo "unexpected password file"; exit 1; }
/usr/bin/poolctl lvs-config --config /usr/share/doc/poolkeeper/examples/poolkeeper.toml --format service-catalog >/dev/null
man -w poolkeeper >/dev/null && man -w depool >/dev/null

out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no /lib/systemd/system/poolkeeper.service 2>&1 || true)
[ -z "$out" ] || { echo "systemd-analyze verify: $out"; exit 1; }
score=$(systemd-analyze security --offline=yes /lib/systemd/system/poolkeeper.service 2>&1 |
  sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "installed unit: systemd-analyze security --offline=yes: $score"
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || { echo "exposure '$score' > 2.0"; exit 1; }

# The README's first run, as the unit would do it (this machine has no running
# systemd): the installed agent as user poolkeeper with the installed config, its
# runtime directory made as RuntimeDirectory= makes it; then `poolctl status` as root.
install -d -o poolkeeper -g poolkeeper -m 0755 /run/poolkeeper
# setpriv execs the agent itself (runuser would fork it), so $! is the agent's pid.
setpriv --reuid=poolkeeper --regid=poolkeeper --init-groups \
  /usr/sbin/poolkeeper --config /etc/poolkeeper/poolkeeper.toml > "$tmp/agent.log" 2>&1 &
agent=$!
i=0
until [ -S /run/poolkeeper/admin.sock ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
status=$(/usr/bin/poolctl status 2>&1) || true
kill -TERM $agent 2>/dev/null || true
i=0
while kill -0 $agent 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -KILL $agent 2>/dev/null || true
wait $agent 2>/dev/null || true
rm -rf /run/poolkeeper
echo "$status" | grep -q '^http' || { echo "poolctl status after the first start:"; echo "$status"; cat "$tmp/agent.log"; exit 1; }
echo "first run: poolctl status answers"
echo "$status"

dpkg --purge poolkeeper > "$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; exit 1; }
[ ! -e /usr/sbin/poolkeeper ] && [ ! -e /etc/poolkeeper/poolkeeper.toml ] && [ ! -e /var/lib/poolkeeper ] ||
  { echo "files left after purge"; exit 1; }
echo "1 passed, 0 failed"
