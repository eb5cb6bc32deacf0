#!/bin/bash
# VM scenario: poolkeeper's nfs check and the kernel NFS client against one kernel nfsd.
#   tests/vm/vm.sh knfsd.sh [BINDIR]     (BINDIR: poolctl's, default build/agent)
#
# Host rs1 (192.0.2.11) runs knfsd (NFSv4.0 and 4.1, export fsid=0 of a tmpfs), host cl
# (192.0.2.100) is a client. Steps, each logged with the guest's uptime:
#   1. `poolctl check` against 127.0.0.1 in rs1, repeated from the nfsd start until it
#      passes (the OPEN in the check waits out knfsd's grace period);
#   2. the agent itself for a few seconds: its /status details of the check;
#   3. the export for 127.0.0.1 without `insecure`: what the check reports;
#   4. kernel client mounts from cl, vers=4.1 and vers=4.0 (ro,soft,timeo=20,retrans=1),
#      reading the canary and a 1 MiB file.
# Fails when the check never passes, or a client read differs from what was written.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-$VM_ROOT/build/agent}  # where poolctl and poolkeeper were built
POOLCTL="$BIN/poolctl"
POOLKEEPER="$BIN/poolkeeper"
[ -x "$POOLCTL" ] || die "no $POOLCTL (build first)"

modprobe -a nfsd nfsv4 veth bridge || die "modprobe"
lan_add
ns_add rs1
ns_add cl
lan_join rs1 192.0.2.11/24
lan_join cl 192.0.2.100/24

EXPORT_OPTS="ro,fsid=0,no_subtree_check,insecure"
nfsd_start rs1 "/srv/nfs 127.0.0.1($EXPORT_OPTS) 192.0.2.0/24($EXPORT_OPTS)"
on rs1 sh -c 'echo "canary rs1" > /srv/nfs/canary.txt &&
  mkdir /srv/nfs/dumps && echo "canary rs1" > /srv/nfs/dumps/canary.txt &&
  head -c 1048576 /dev/urandom > /srv/nfs/data.bin' || die "writing the export"
sum=$(on rs1 md5sum /srv/nfs/data.bin | cut -d' ' -f1)
t_start=$(now)
nfsd_run rs1

# --- 1. poolctl check until it passes ---------------------------------------------
poolkeeper_config rs1 127.0.0.1 /canary.txt "canary rs1"
log "step 1: poolctl check against knfsd (127.0.0.1 in rs1), once a second until OK"
passed=""
for i in $(seq 40); do
  out=$(on rs1 "$POOLCTL" check --config "$VM_NS/rs1.toml" 2>&1)
  rc=$?
  t=$(awk -v a="$t_start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  echo "  +${t}s exit $rc: $(echo "$out" | head -n 1)"
  if [ "$rc" = 0 ]; then passed=$t; echo "$out" | sed 's/^/    /'; break; fi
  sleep 1
done
[ -n "$passed" ] && log "check passed ${passed} s after the nfsd start" || log "check never passed"
echo "${passed:-never}" > "$VM_OUT/check-pass-seconds"

# --- 2. the agent's /status -------------------------------------------------------
log "step 2: the agent against knfsd, /status of the check after 4 s"
# A second check one directory deeper: the handles in the details depend on the depth.
sed -e 's/^checks = \["export"\]/checks = ["export", "deep"]/' "$VM_NS/rs1.toml" > "$VM_NS/rs1-agent.toml"
sed -n '/^\[checks.export\]/,$p' "$VM_NS/rs1.toml" |
  sed -e 's/^\[checks.export\]/[checks.deep]/' -e 's|^path = .*|path = "/dumps/canary.txt"|' >> "$VM_NS/rs1-agent.toml"
on rs1 "$POOLKEEPER" --config "$VM_NS/rs1-agent.toml" > "$VM_OUT/agent-rs1.log" 2>&1 &
agent=$!
sleep 4
on rs1 curl -s --max-time 3 http://127.0.0.1:9473/status > "$VM_OUT/status-rs1.json"
on rs1 curl -s --max-time 3 -o /dev/null -w '  /health/nfs: HTTP %{http_code}\n' http://127.0.0.1:9473/health/nfs
kill -TERM "$agent" 2>/dev/null
wait "$agent" 2>/dev/null
python3 - "$VM_OUT/status-rs1.json" <<'EOF2' || log "no /status (see agent-rs1.log)"
import json, sys
s = json.load(open(sys.argv[1]))
for name in ("export", "deep"):
    c = s["checks"][name]
    print("  checks.%s (%s):" % (name, c.get("target")),
          json.dumps({k: c.get(k) for k in ("state", "successes", "failures")}))
    print("    last:", json.dumps(c.get("last"), sort_keys=True))
EOF2

# --- 3. the `secure` default for 127.0.0.1 ------------------------------------------
# As root the check's libnfs binds a reserved source port; the packaged agent runs
# unprivileged, so the check is also run as nobody.
log "step 3: 127.0.0.1 exported without insecure (knfsd's default), check as root and as nobody"
nfsd_set_exports() {
  printf '%s\n' "$2" > "$VM_NS/$1.exports"
  on "$1" exportfs -ra
}
chmod 755 "$VM_NS" "$VM_NS/pk-rs1"
chmod 644 "$VM_NS/rs1.toml"
for mode in secure insecure; do
  opts="ro,fsid=0,no_subtree_check"
  [ "$mode" = insecure ] && opts="$opts,insecure"
  nfsd_set_exports rs1 "/srv/nfs 127.0.0.1($opts) 192.0.2.0/24($EXPORT_OPTS)"
  out=$(on rs1 "$POOLCTL" check --config "$VM_NS/rs1.toml" 2>&1)
  echo "  $mode, root:   exit $?: $(echo "$out" | head -n 1)"
  out=$(on rs1 setpriv --reuid=65534 --regid=65534 --clear-groups "$POOLCTL" check --config "$VM_NS/rs1.toml" 2>&1)
  rc=$?
  echo "  $mode, nobody: exit $rc: $(echo "$out" | head -n 1)"
  [ "$mode" = insecure ] && [ "$rc" != 0 ] && fail_insecure=1
done

# --- 4. kernel clients --------------------------------------------------------------
fail=""
for v in 4.1 4.0; do
  mnt=/mnt/v$v
  on cl mkdir -p "$mnt"
  t0=$(now)
  if ! on cl timeout 60 mount -t nfs4 -o "vers=$v,ro,soft,timeo=20,retrans=1" 192.0.2.11:/ "$mnt"; then
    log "mount vers=$v failed"; fail="$fail mount-$v"; continue
  fi
  t_mount=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
  echo 3 > /proc/sys/vm/drop_caches
  t0=$(now)
  canary=$(on cl cat "$mnt/canary.txt")
  got=$(on cl md5sum "$mnt/data.bin" | cut -d' ' -f1)
  t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
  log "client vers=$v: mount ${t_mount}s, reads ${t}s, canary \"$canary\", data.bin $( [ "$got" = "$sum" ] && echo matches || echo DIFFERS)"
  on cl grep " $mnt " /proc/mounts | sed 's/^/  /'
  [ "$canary" = "canary rs1" ] && [ "$got" = "$sum" ] || fail="$fail read-$v"
  on cl umount "$mnt"
done

nfsd_stop rs1
[ -n "$passed" ] || die "poolctl check never passed against knfsd"
[ -z "${fail_insecure:-}" ] || die "the check as nobody failed against an insecure export"
[ -z "$fail" ] || die "kernel client:$fail"
log "knfsd scenario passed"
