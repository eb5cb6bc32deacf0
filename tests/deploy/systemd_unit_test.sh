#!/bin/sh
# The systemd unit passes `systemd-analyze verify` (with its binaries pointed at the
# build tree), and orders the agent after the services it probes, so it stops first;
# its socket unit listens where the agent does by default, and TimeoutStopSec leaves
# room for the agent's bounded stop (drain_seconds 10 + 22 s; check timeouts ≤ 30 s).
set -eu
unit=$1 bindir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/sbin/poolkeeper|$bindir/poolkeeper|g" "$unit" > "$tmp/poolkeeper.service"
socket=$(dirname "$unit")/poolkeeper.socket
cp "$socket" "$tmp/poolkeeper.socket"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/poolkeeper.service" "$tmp/poolkeeper.socket" 2>&1 || true)
if [ -n "$out" ]; then echo "systemd-analyze: $out"; exit 1; fi
for svc in nfs-ganesha.service nginx.service rsync.service; do
  grep -q "^After=.*$svc" "$unit" || { echo "not ordered after $svc"; exit 1; }
done
grep -q '^Type=notify' "$unit" && grep -q '^WatchdogSec=' "$unit" && grep -q '^ExecReload=' "$unit"
grep -q '^Wants=poolkeeper.socket' "$unit" && grep -q '^After=.*poolkeeper.socket' "$unit" ||
  { echo "not tied to poolkeeper.socket"; exit 1; }
grep -q '^ListenStream=127.0.0.1:9473$' "$socket" || { echo "poolkeeper.socket does not listen on 127.0.0.1:9473"; exit 1; }
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")
[ -n "$stop" ] && [ "$stop" -ge 42 ] || { echo "TimeoutStopSec=${stop:-?} leaves no room for drain_seconds + 22 s and 30 s checks"; exit 1; }
echo "1 passed, 0 failed"
