#!/bin/sh
# The systemd unit passes `systemd-analyze verify` (with its binaries pointed at the
# build tree), and orders the agent after the services it probes, so it stops first.
set -eu
unit=$1 bindir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/sbin/poolkeeper|$bindir/poolkeeper|g" "$unit" > "$tmp/poolkeeper.service"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/poolkeeper.service" 2>&1 || true)
if [ -n "$out" ]; then echo "systemd-analyze: $out"; exit 1; fi
for svc in nfs-ganesha.service nginx.service rsync.service; do
  grep -q "^After=.*$svc" "$unit" || { echo "not ordered after $svc"; exit 1; }
done
grep -q '^Type=notify' "$unit" && grep -q '^WatchdogSec=' "$unit" && grep -q '^ExecReload=' "$unit"
echo "1 passed, 0 failed"
