#!/bin/bash
# VM scenario: a realserver leaves an IPVS (LVS-DR, maglev hashing) pool while a kernel
# NFS client reads through the VIP.
#   tests/vm/vm.sh ipvs.sh [BINDIR]     (BINDIR: poolctl's, default build/agent)
#
# On one bridge (192.0.2.0/24): director lb (.1, VIP 198.51.100.10 on lo, ipvsadm -s mh,
# direct routing), realservers rs1 (.11) and rs2 (.12) with kernel nfsd and the VIP on
# lo (ARP for it ignored), client cl (.100, VIP routed via lb). Both realservers export
# the same files, each on its own tmpfs, so their file handles differ, as two servers'
# do in production.
#
# For net.ipv4.vs.expire_nodest_conn 0 (the default) and 1: mount the VIP
# (vers=4.1,ro,soft,timeo=20,retrans=1), open a file, `ipvsadm -d` the realserver that
# serves the client, then time reads on the held descriptor and fresh opens (stall.py),
# and a new mount of the VIP afterwards. Prints a table. Fails when the setup does not
# work (no pass of poolctl check on a realserver, no mount or read through the VIP) or
# when fresh opens never read again (no failover); the figures are reported, not asserted.
#
# Then a TCP service on port 8873 (-s mh -b mh-fallback): a client's source port reused
# after its realserver was quiesced and its server stopped, for conn_reuse_mode 1 with
# expire_nodest_conn 0 (the kernel's defaults) and 1, and conn_reuse_mode 2. Prints a
# second table; fails when a setting other than the defaults does not send the reused
# port to the realserver still in.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-$VM_ROOT/build/agent}
POOLCTL="$BIN/poolctl"
[ -x "$POOLCTL" ] || die "no $POOLCTL (build first)"
VIP=198.51.100.10

modprobe -a nfsd nfsv4 veth bridge ip_vs ip_vs_mh || die "modprobe"
lvs_lan

on lb sh -ec "
  ip addr add $VIP/32 dev lo
  sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.accept_local=1
  ipvsadm -A -t $VIP:2049 -s mh
  ipvsadm -a -t $VIP:2049 -r 192.0.2.11:2049 -g -w 1
  ipvsadm -a -t $VIP:2049 -r 192.0.2.12:2049 -g -w 1
" || die "director setup"
on cl ip route add "$VIP/32" via 192.0.2.1 || die "client route"

EXPORT_OPTS="ro,fsid=0,no_subtree_check,insecure"
for rs in rs1 rs2; do
  on "$rs" sh -ec "
    ip addr add $VIP/32 dev lo
    sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    sysctl -qw net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
  " || die "$rs: VIP setup"
  nfsd_start "$rs" "/srv/nfs 127.0.0.1($EXPORT_OPTS) 192.0.2.0/24($EXPORT_OPTS)"
done
# The same bytes on both realservers.
head -c 4194304 /dev/urandom > /run/data.bin
for rs in rs1 rs2; do
  on "$rs" sh -c 'echo "canary" > /srv/nfs/canary.txt && cp /run/data.bin /srv/nfs/data.bin' || die "$rs: files"
  nfsd_run "$rs"
  poolkeeper_config "$rs" 127.0.0.1 /canary.txt canary
done

# Both servers out of their grace period, as the agent sees it.
for rs in rs1 rs2; do
  ok=""
  for i in $(seq 30); do
    out=$(on "$rs" "$POOLCTL" check --config "$VM_NS/$rs.toml" 2>&1) && { ok=1; break; }
    sleep 1
  done
  log "$rs: $(echo "$out" | head -n 1)"
  [ -n "$ok" ] || die "$rs: poolctl check never passed"
done

serving() {  # the realserver of the client's connection to the VIP, from lb's table
  on lb ipvsadm -Lnc | awk -v v="$VIP:2049" '$5 == v && $3 == "ESTABLISHED" { split($6, a, ":"); print a[1]; exit }'
}

TABLE=""
run_case() {
  local expire=$1 mnt=/mnt/vip$1 rs_ip rs t0 t
  on lb sysctl -qw "net.ipv4.vs.expire_nodest_conn=$expire"
  on cl mkdir -p "$mnt" /mnt/again$1
  on cl timeout 60 mount -t nfs4 -o vers=4.1,ro,soft,timeo=20,retrans=1 "$VIP:/" "$mnt" \
    || die "mount of the VIP failed"
  [ "$(on cl cat "$mnt/canary.txt")" = canary ] || die "canary through the VIP"
  rs_ip=$(serving)
  [ -n "$rs_ip" ] || die "no IPVS connection for the client: $(on lb ipvsadm -Lnc)"
  log "expire_nodest_conn=$expire: client served by $rs_ip; ipvsadm -d of it"
  on cl python3 "$VM_TESTS/stall.py" "$mnt/data.bin" 40 -- \
    nsenter -t "$(cat "$VM_NS/lb.pid")" -n ipvsadm -d -t "$VIP:2049" -r "$rs_ip:2049" \
    > "$VM_OUT/stall-expire$expire.log" 2>&1 || die "stall.py: $(tail -n 3 "$VM_OUT/stall-expire$expire.log")"
  sed 's/^/  /' "$VM_OUT/stall-expire$expire.log"
  log "after: connections $(on lb ipvsadm -Lnc | awk 'NR > 2 {print $3 "->" $6}' | tr '\n' ' ')"
  t0=$(now)
  if on cl timeout 60 mount -t nfs4 -o vers=4.1,ro,soft,timeo=20,retrans=1 "$VIP:/" "/mnt/again$1" &&
     [ "$(on cl cat "/mnt/again$1/canary.txt")" = canary ]; then
    t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f s", b - a }')
    log "a new mount of the VIP reads the canary (mount+read $t)"
  else
    t="failed"
    log "a new mount of the VIP failed"
  fi
  TABLE="$TABLE$(printf '%-20s | %s\n' "expire_nodest_conn=$expire" \
    "$(grep '^summary: held' "$VM_OUT/stall-expire$expire.log" | cut -c10-)")
$(printf '%-20s | %s\n' "" "$(grep '^summary: fresh' "$VM_OUT/stall-expire$expire.log" | cut -c10-)")
$(printf '%-20s | %s\n' "" "new mount + read: $t")
"
  grep -q '^summary: fresh.*reads again' "$VM_OUT/stall-expire$expire.log" || recovered_not="$recovered_not $expire"
  on cl umount -f -l "$mnt" "/mnt/again$1" 2>/dev/null
  on lb ipvsadm -a -t "$VIP:2049" -r "$rs_ip:2049" -g -w 1
}
recovered_not=""
run_case 0
run_case 1

# A reused source port after a quiesce. LVS-DR's director sees only the client's half of
# a connection, so a closed one stays in its table (FIN_WAIT, 2 minutes) pointing at its
# realserver. A client that opens a new connection from the same address and port while
# that entry lasts (a busy client's ephemeral ports wrap; rsync --address binds port 0)
# is sent to the same realserver unless the kernel reschedules it. After the realserver
# was quiesced (weight 0, as a depool does) and its server stopped (the reboot), that is
# a refused connection. Each case: a connection from 192.0.2.100:SPORT, the realserver
# that answered quiesced and its server stopped, the same source port again.
REUSE_TABLE=""
reuse_rows_bad=""
on lb sh -ec "
  ipvsadm -A -t $VIP:8873 -s mh -b mh-fallback
  ipvsadm -a -t $VIP:8873 -r 192.0.2.11:8873 -g -w 1
  ipvsadm -a -t $VIP:8873 -r 192.0.2.12:8873 -g -w 1
" || die "director: port 8873"
reuse_serve() { bg_on "$1" "$VM_NS/reuse-$1.pid" "$VM_OUT/reuse-$1.log" python3 "$VM_TESTS/portreuse.py" serve "$1" 0.0.0.0 8873; }
for rs in rs1 rs2; do reuse_serve "$rs"; done
reuse_case() {  # REUSE_MODE EXPIRE SPORT
  local mode=$1 expire=$2 sport=$3 first rs rs_ip entry second want
  on lb sysctl -qw "net.ipv4.vs.conn_reuse_mode=$mode" "net.ipv4.vs.expire_nodest_conn=$expire"
  for _ in $(seq 50); do
    first=$(on cl python3 "$VM_TESTS/portreuse.py" connect "$VIP" 8873 192.0.2.100 "$sport")
    [ "${first#answer }" != "$first" ] && break
    sleep 0.1
  done
  rs=${first#answer }
  case "$rs" in rs1) rs_ip=192.0.2.11 ;; rs2) rs_ip=192.0.2.12 ;; *) die "port 8873 through the VIP: $first" ;; esac
  entry=$(on lb ipvsadm -Lnc | awk -v c="192.0.2.100:$sport" '$4 == c { print $3 "->" $6 }')
  on lb ipvsadm -e -t "$VIP:8873" -r "$rs_ip:8873" -g -w 0
  kill "$(cat "$VM_NS/reuse-$rs.pid")"
  sleep 0.2
  second=$(on cl python3 "$VM_TESTS/portreuse.py" connect "$VIP" 8873 192.0.2.100 "$sport")
  REUSE_TABLE="$REUSE_TABLE$(printf '%-15s | %-18s | %-6s | %-26s | %s' "$mode" "$expire" "$rs" "$entry" "$second")
"
  want=ok
  [ "$second" = "answer $( [ "$rs" = rs1 ] && echo rs2 || echo rs1)" ] || want=bad
  [ "$mode" = 1 ] && [ "$expire" = 0 ] || [ "$want" = ok ] || reuse_rows_bad="$reuse_rows_bad conn_reuse_mode=$mode,expire_nodest_conn=$expire:$second"
  reuse_serve "$rs"
  on lb ipvsadm -e -t "$VIP:8873" -r "$rs_ip:8873" -g -w 1
}
reuse_case 1 0 40001
reuse_case 1 1 40002
reuse_case 2 0 40003
for rs in rs1 rs2; do kill "$(cat "$VM_NS/reuse-$rs.pid")" 2>/dev/null; done

echo
echo "IPVS -s mh, LVS-DR, ipvsadm -d of the serving realserver; client vers=4.1,ro,soft,timeo=20,retrans=1"
printf '%s' "$TABLE"
echo
echo "IPVS -s mh -b mh-fallback, LVS-DR: a client's source port reused after its realserver was quiesced (weight 0) and its server stopped"
printf '%-15s | %-18s | %-6s | %-26s | %s\n' conn_reuse_mode expire_nodest_conn first "director's entry" "same source port again"
printf '%s' "$REUSE_TABLE"
for rs in rs1 rs2; do nfsd_stop "$rs"; done
[ -z "$reuse_rows_bad" ] || die "a reused source port was not sent to the realserver still in:$reuse_rows_bad"
[ -z "$recovered_not" ] || die "fresh opens never read again after the realserver left (expire_nodest_conn:$recovered_not)"
log "ipvs scenario done"
