#!/bin/bash
# VM scenario: poolkeeper's nfs check and the kernel NFS client against one kernel nfsd.
#   tests/vm/vm.sh knfsd.sh [BINDIR]     (BINDIR: poolctl's, default build/agent)
#
# Host rs1 (192.0.2.11) runs knfsd (NFSv4.0, 4.1 and 4.2, export fsid=0 of a tmpfs), host
# cl (192.0.2.100) is a client. Steps, each logged with the guest's uptime:
#   1. the agent from the nfsd start, three nfs checks (highest minor version, 4.0
#      pinned, a deeper canary): each change of reason with the handles it carried, until
#      all pass (knfsd's grace period first: "grace period", handles kept);
#   1b. nfsd stopped and started under the running agent: the same, and the 4.0 check
#      never fails on its OPEN context of the dead connection;
#   2. `poolctl check` (the Nagios view);
#   3. the export for 127.0.0.1 without `insecure`: what the check reports;
#   4. kernel client mounts from cl, vers=4.2, 4.1 and 4.0 (ro,soft,timeo=20,retrans=1),
#      reading the canary and a 1 MiB file;
#   5. nfsd restarted with NFSv4.0 off: the check speaks 4.2, a check pinned to 4.1
#      passes, one pinned to 4.0 says the server refused it; a 4.1 kernel mount reads.
# Fails when a check never passes or gives another reason, or a client read differs.
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

# --- 1. the agent from the nfsd start until its checks pass --------------------------
# Three nfs checks: the highest minor version (4.2 here), 4.0 pinned, and a canary one
# directory deeper (the root handle comes after the first LOOKUP there). /status every
# 0.5 s: each change of a check's reason is printed with the handles it carried.
poolkeeper_config rs1 127.0.0.1 /canary.txt "canary rs1"
add_nfs_check() {  # add_nfs_check FILE NAME PATH [EXTRA KEY LINE]
  sed -i -e "s/^checks = \[\(.*\)\]$/checks = [\1, \"$2\"]/" "$1"
  sed -n '/^\[checks.export\]/,$p' "$VM_NS/rs1.toml" |
    sed -e "s/^\[checks.export\]/[checks.$2]/" -e "s|^path = .*|path = \"$3\"|" >> "$1"
  [ -z "${4:-}" ] || echo "$4" >> "$1"
}
cp "$VM_NS/rs1.toml" "$VM_NS/rs1-agent.toml"
add_nfs_check "$VM_NS/rs1-agent.toml" v40 /canary.txt "minor_version = 0"
add_nfs_check "$VM_NS/rs1-agent.toml" deep /dumps/canary.txt
log "step 1: the agent against knfsd from its start (grace 10 s): checks export (highest minor), v40, deep"
agent_start rs1 "$VM_NS/rs1-agent.toml" "$VM_OUT/agent-rs1.log"
on rs1 "$VM_TESTS/watch_checks.py" 40 "$VM_NS/passed" export v40 deep
sed "s/^/  /" "$VM_NS/passed"   # NAME=first pass (s), grace:NAME=handles kept in grace?
passed=$(sed -n 's/^export=//p' "$VM_NS/passed")
grep -q "=never" "$VM_NS/passed" && fail_pass=1
grep -q "=lost" "$VM_NS/passed" && fail_pass=1  # a grace result without its handles
cp "$VM_NS/passed" "$VM_OUT/check-pass-seconds"

# --- 1b. nfsd restarted under the running agent ------------------------------------
# The 4.0 check's OPEN context dies with the old connection: it must be renewed with the
# new one, not fail once more on the dead one ("open: connection to the server lost").
log "step 1b: nfsd stopped for 3 s and started again under the running agent"
on rs1 rpc.nfsd 0
sleep 3
on rs1 rpc.nfsd -N 3 -V 4.0 -V 4.1 -V 4.2 8 || die "rpc.nfsd restart"
on rs1 "$VM_TESTS/watch_checks.py" 40 "$VM_NS/passed" export v40 deep
agent_stop rs1
sed "s/^/  /" "$VM_NS/passed"
grep -q "=never" "$VM_NS/passed" && fail_pass=1
grep -q "=lost" "$VM_NS/passed" && fail_pass=1
grep "^reasons:" "$VM_NS/passed" | grep -q -e "=open" -e "|open" -e "lost" && fail_pass=1

# --- 2. poolctl check (the Nagios view), once grace is over -------------------------
log "step 2: poolctl check"
out=$(on rs1 "$POOLCTL" check --config "$VM_NS/rs1-agent.toml" 2>&1)
echo "  exit $?: $out" | sed 's/^/  /'

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
  # Refused for its source port: the reason says so and what to change.
  [ "$mode" = secure ] && case "$out" in *"NFS4ERR_PERM (from source port"*"export \`insecure\`"*) ;; *) fail_insecure=1 ;; esac
done

# --- 4. kernel clients --------------------------------------------------------------
fail="" fail_no40=""
for v in 4.2 4.1 4.0; do
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

# --- 5. NFSv4.0 turned off ---------------------------------------------------------
# The nfsd restarts without 4.0 (and so in grace again). The check that asks for no
# version speaks 4.2; the one pinned to 4.0 says what the server refused.
log "step 5: nfsd restarted with NFSv4.0 off (rpc.nfsd -N 4.0)"
nfsd_set_exports rs1 "/srv/nfs 127.0.0.1($EXPORT_OPTS) 192.0.2.0/24($EXPORT_OPTS)"
on rs1 rpc.nfsd 0
on rs1 rpc.nfsd -N 3 -N 4.0 -V 4.1 -V 4.2 8 || die "rpc.nfsd without 4.0"
log "rs1: nfsd versions $(on rs1 cat /proc/fs/nfsd/versions)"
cp "$VM_NS/rs1.toml" "$VM_NS/rs1-no40.toml"
add_nfs_check "$VM_NS/rs1-no40.toml" v40 /canary.txt "minor_version = 0"
add_nfs_check "$VM_NS/rs1-no40.toml" v41 /canary.txt "minor_version = 1"
agent_start rs1 "$VM_NS/rs1-no40.toml" "$VM_OUT/agent-rs1-no40.log"
on rs1 "$VM_TESTS/watch_checks.py" 30 "$VM_NS/passed" export v41
v40_reason=$(on rs1 curl -s --max-time 3 http://127.0.0.1:9473/status |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["checks"]["v40"]["last"]["reason"])')
agent_stop rs1
sed "s/^/  /" "$VM_NS/passed"
log "v40 check without NFSv4.0: $v40_reason"
grep -q "^export=never" "$VM_NS/passed" && fail_no40="$fail_no40 export"
grep -q "=lost" "$VM_NS/passed" && fail_no40="$fail_no40 grace-handles"
grep -q "^v41=never" "$VM_NS/passed" && fail_no40="$fail_no40 v41"
case "$v40_reason" in *"does not speak NFSv4.0"*) ;; *) fail_no40="$fail_no40 v40-reason" ;; esac
mnt=/mnt/no40
on cl mkdir -p "$mnt"
if on cl timeout 60 mount -t nfs4 -o "vers=4.1,ro,soft,timeo=20,retrans=1" 192.0.2.11:/ "$mnt"; then
  log "client vers=4.1 without 4.0 on the server: canary \"$(on cl cat "$mnt/canary.txt")\""
  on cl umount "$mnt"
fi

nfsd_stop rs1
[ -z "${fail_pass:-}" ] || die "a check never passed against knfsd, or lost its handles in grace (see step 1)"
[ -z "${fail_no40:-}" ] || die "without NFSv4.0:$fail_no40"
[ -z "${fail_insecure:-}" ] || die "the check as nobody: failed against an insecure export, or no clear reason against a secure one"
[ -z "$fail" ] || die "kernel client:$fail"
log "knfsd scenario passed"
