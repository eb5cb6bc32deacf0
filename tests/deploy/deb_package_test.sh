#!/bin/sh
# The Debian package, built with deploy/build-deb.sh (tests not built: nocheck),
# checked by lintian (no errors), installed with dpkg -i on this disposable machine:
# the installed agent accepts the installed config, poolctl answers --help, the links,
# user and groups exist, the unit passes `systemd-analyze verify` and rates at most 2.0
# in `systemd-analyze security --offline=yes`; the README's first run (the installed
# agent started as the unit starts it, then `poolctl status`) works; then purged.
# Prints the build time.
set -eu
src=$1
[ "$(id -u)" = 0 ] || { echo "needs root (dpkg -i)"; exit 1; }
tmp=$(mktemp -d)
cleanup() { dpkg --purge poolkeeper >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
dpkg --purge poolkeeper >/dev/null 2>&1 || true   # a leftover of an interrupted run

start=$(date +%s)
DEB_BUILD_OPTIONS="nocheck parallel=2" "$src/deploy/build-deb.sh" "$tmp/out" > "$tmp/build.log" 2>&1 ||
  { tail -40 "$tmp/build.log"; exit 1; }
echo "package built in $(( $(date +%s) - start )) s"
deb=$(ls "$tmp"/out/poolkeeper_*.deb)

lintian --fail-on error "$deb" > "$tmp/lintian.log" 2>&1 ||
  { cat "$tmp/lintian.log"; echo "lintian found errors"; exit 1; }
echo "lintian: $(grep -c '^E:' "$tmp/lintian.log" || true) errors, $(grep -c '^W:' "$tmp/lintian.log" || true) warnings"
cat "$tmp/lintian.log"

dpkg -i "$deb" > "$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; exit 1; }
/usr/sbin/poolkeeper --check-config /etc/poolkeeper/poolkeeper.toml
runuser -u poolkeeper -- /usr/sbin/poolkeeper --check-config /etc/poolkeeper/poolkeeper.toml >/dev/null
/usr/sbin/poolctl --help | grep -q 'lvs-config' || { echo "poolctl --help lacks lvs-config"; exit 1; }
dpkg-query -W -f='${Conffiles}\n' poolkeeper | grep -q ' /etc/poolkeeper/poolkeeper.toml ' ||
  { echo "the config is not a conffile"; exit 1; }
for l in pool depool drain ispooled; do
  [ "$(readlink /usr/sbin/$l)" = poolctl ] || { echo "no link /usr/sbin/$l -> poolctl"; exit 1; }
done
getent passwd poolkeeper | grep -q ':/var/lib/poolkeeper:/usr/sbin/nologin$' || { echo "no poolkeeper user"; exit 1; }
getent group poolkeeper >/dev/null && getent group poolkeeper-admins >/dev/null || { echo "groups missing"; exit 1; }
[ "$(id -gn poolkeeper)" = poolkeeper ] || { echo "poolkeeper's primary group is $(id -gn poolkeeper)"; exit 1; }
[ -e /etc/poolkeeper/etcd-password ] && { echo "unexpected password file"; exit 1; }
/usr/sbin/poolctl lvs-config --config /usr/share/doc/poolkeeper/examples/poolkeeper.toml --format service-catalog >/dev/null
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
status=$(/usr/sbin/poolctl status 2>&1) || true
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
