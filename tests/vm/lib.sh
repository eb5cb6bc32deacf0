# Helpers for scenarios that run inside the VM (sourced; see tests/vm/vm.sh).
#
# A "host" here is a network namespace plus a mount namespace, kept alive by one
# `sleep` process: `ip netns exec` makes a fresh mount namespace on every call, so
# anything mounted in one call (nfsd's /proc/fs/nfsd, an NFS client mount) would be
# gone in the next. Commands go in with nsenter into that process's namespaces.
#
#   ns_add NAME                 new host NAME (loopback up)
#   on NAME CMD...              run CMD in host NAME
#   lan_add                     a bridge "lan" in the VM's own namespace
#   lan_join NAME ADDR/LEN      a veth from host NAME (eth0) into the bridge
#   nfsd_start NAME EXPORTS     kernel nfsd (NFSv4.0, 4.1, 4.2, no v3) in host NAME,
#                               exporting a fresh tmpfs at /srv/nfs with EXPORTS
#                               (lines of /etc/exports)
#   nfsd_run NAME               export and start nfsd and mountd (again after a stop)
#   nfsd_stop NAME              stop that nfsd and its mountd
#   bg_on NAME PIDFILE LOG CMD  CMD in the background in host NAME, its pid in PIDFILE
#   agent_start NAME CONFIG LOG, agent_stop NAME
#                               poolkeeper ($POOLKEEPER) in host NAME
#   now                         seconds since boot (float)
#   log MSG...                  timestamped line on stdout

VM_TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_ROOT=$(cd "$VM_TESTS/../.." && pwd)
VM_NS=/run/vm-ns
mkdir -p "$VM_NS"

now() { cut -d' ' -f1 /proc/uptime; }
log() { printf '[%7s] %s\n' "$(now)" "$*"; }
die() { log "FAIL: $*"; exit 1; }

ns_add() {
  local name=$1 pid i
  # unshare execs sleep in the new namespaces; `ip netns attach` then names the netns.
  unshare -n -m --propagation private sleep infinity &
  pid=$!
  for i in $(seq 200); do
    [[ /proc/$pid/ns/net -ef /proc/self/ns/net ]] || break
    sleep 0.05
  done
  [[ /proc/$pid/ns/net -ef /proc/self/ns/net ]] && die "ns_add $name: no new namespace"
  echo "$pid" > "$VM_NS/$name.pid"
  ip netns attach "$name" "$pid" || die "ns_add $name: ip netns attach"
  on "$name" ip link set lo up
}

on() {
  local name=$1
  shift
  nsenter -t "$(cat "$VM_NS/$name.pid")" -m -n -r -w -- "$@"
}

# bg_on NAME PIDFILE LOG CMD...: CMD in the background in host NAME, its own pid (not
# the pid of the subshell that `&` makes of a function) in PIDFILE, output appended
# to LOG.
bg_on() {
  local name=$1 pidfile=$2 logf=$3
  shift 3
  rm -f "$pidfile"
  on "$name" sh -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" >>"$logf" 2>&1 &
  local i
  for i in $(seq 100); do [ -s "$pidfile" ] && return 0; sleep 0.05; done
  die "bg_on $name: $* did not start"
}

# agent_start NAME CONFIG LOG: poolkeeper in host NAME, in the background; agent_stop
# NAME: SIGTERM, and wait (at most 15 s) until it has exited.
agent_start() {
  bg_on "$1" "$VM_NS/$1.agent" "$3" "$POOLKEEPER" --config "$2"
}
agent_stop() {
  local pid
  pid=$(cat "$VM_NS/$1.agent" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  rm -f "$VM_NS/$1.agent"
}

lan_add() {
  ip link add lan type bridge
  ip link set lan up
}

lan_join() {
  local name=$1 addr=$2
  ip link add "v-$name" type veth peer name eth0 netns "$name"
  ip link set "v-$name" master lan up
  on "$name" ip addr add "$addr" dev eth0
  on "$name" ip link set eth0 up
}

# lvs_lan: the LVS hosts on one bridge (192.0.2.0/24): director lb (.1), realservers rs1
# (.11) and rs2 (.12), client cl (.100).
lvs_lan() {
  lan_add
  local h
  for h in lb rs1 rs2 cl; do ns_add "$h"; done
  lan_join lb 192.0.2.1/24
  lan_join rs1 192.0.2.11/24
  lan_join rs2 192.0.2.12/24
  lan_join cl 192.0.2.100/24
}

# dr_realserver NAME VIP: NAME answers for VIP as an IPVS direct-routing realserver: the
# address on lo, and no ARP for it (the director owns it on the wire).
dr_realserver() {
  on "$1" sh -ec "
    ip addr add $2/32 dev lo
    sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    sysctl -qw net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
  " || die "$1: VIP setup"
}

nfsd_start() {
  local name=$1 exports=$2
  printf '%s\n' "$exports" > "$VM_NS/$name.exports"
  on "$name" sh -euc '
    name=$1
    # This host'"'"'s own NFS state, exports and data.
    mount -t tmpfs tmpfs /var/lib/nfs
    mkdir -p /var/lib/nfs/v4recovery /var/lib/nfs/rpc_pipefs
    mount -t rpc_pipefs rpc_pipefs /var/lib/nfs/rpc_pipefs
    mount --bind "'"$VM_NS"'/$name.exports" /etc/exports
    mkdir -p /srv/nfs
    mount -t tmpfs -o size=64m tmpfs /srv/nfs
    mount -t nfsd nfsd /proc/fs/nfsd
    # The shortest lease and grace the kernel allows, so that a scenario does not wait
    # 90 s for OPENs after a start.
    echo 10 > /proc/fs/nfsd/nfsv4leasetime
    echo 10 > /proc/fs/nfsd/nfsv4gracetime
  ' sh "$name" || die "nfsd_start $name: setup"
}

# nfsd_run NAME: exports and starts the daemons (after the scenario put its files in
# /srv/nfs with `on NAME`).
nfsd_run() {
  local name=$1
  on "$name" exportfs -ra || die "nfsd_run $name: exportfs"
  bg_on "$name" "$VM_NS/$name.mountd" "$VM_OUT/mountd-$name.log" rpc.mountd -F -N 2 -N 3
  on "$name" rpc.nfsd -N 3 -V 4.0 -V 4.1 -V 4.2 8 || die "nfsd_run $name: rpc.nfsd"
  log "$name: nfsd versions $(on "$name" cat /proc/fs/nfsd/versions), threads $(on "$name" cat /proc/fs/nfsd/threads)"
}

nfsd_stop() {
  local name=$1
  on "$name" rpc.nfsd 0 || true
  on "$name" exportfs -ua || true
  [ -f "$VM_NS/$name.mountd" ] && kill "$(cat "$VM_NS/$name.mountd")" 2>/dev/null || true
}

# poolkeeper_config NAME SERVER CANARY EXPECT: a minimal agent config for host NAME with
# one nfs check, written to $VM_NS/NAME.toml.
poolkeeper_config() {
  local name=$1 server=$2 canary=$3 expect=$4
  mkdir -p "$VM_NS/pk-$name"
  cat > "$VM_NS/$name.toml" <<EOF
[agent]
listen = "127.0.0.1:9473"
hostname = "$name.example.org"
admin_socket = "$VM_NS/pk-$name/admin.sock"
state_dir = "$VM_NS/pk-$name/state"
stop_action = "keep"   # a scenario's agent stop is no host shutdown: nothing to drain
[services.nfs]
checks = ["export"]
port = 2049
[checks.export]
kind = "nfs"
server = "$server"
port = 2049
path = "$canary"
expect = "$expect"
max_age = "1h"
interval = "1s"
timeout = "1s"
rise = 2
fall = 2
EOF
}
