#!/bin/sh
# The unit's sandbox: `systemd-analyze security --offline=yes` rates it at most 2.0
# (printed), it runs as the poolkeeper user with no capability at all, and the
# directories it may write are the state and runtime ones.
set -eu
unit=$1
out=$(systemd-analyze security --offline=yes "$unit" 2>&1) || { echo "$out"; exit 1; }
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "no score in: $out"; exit 1; }
echo "systemd-analyze security --offline=yes: $score"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || { printf '%s\n' "$out" | grep '✗'; echo "exposure $score > 2.0"; exit 1; }
for line in User=poolkeeper Group=poolkeeper CapabilityBoundingSet= AmbientCapabilities= ProtectSystem=strict \
    StateDirectory=poolkeeper RuntimeDirectory=poolkeeper SystemCallFilter=@system-service \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK' NoNewPrivileges=yes PrivateTmp=yes; do
  grep -qx "$line" "$unit" || { echo "missing: $line"; exit 1; }
done
if grep -q '^ReadWritePaths=' "$unit"; then echo "writable paths beyond the state and runtime directories"; exit 1; fi
echo "1 passed, 0 failed"
