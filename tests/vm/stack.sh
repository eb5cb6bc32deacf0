#!/bin/bash
# VM scenario: the real stack. Two realservers with kernel nfsd, nginx, an rsync daemon
# and poolkeeper publishing to conftool in etcd; an IPVS LVS-DR director driven as
# PyBal drives production's; a client with kernel NFS mounts, HTTP and rsync through the
# VIP. Several scenarios in one boot, one table each.
#   tests/vm/vm.sh stack.sh [BINDIR [SCENARIOS [DEPOOL]]]
# BINDIR: poolkeeper's and poolctl's (default build/agent); SCENARIOS: a list of
# reboot:hold|drain:mh|sh:0|1, hung, restart, crash (default: the list at the end);
# DEPOOL: how the director takes a realserver out: quiesce (weight 0 with the
# scheduler's fallback flag, the default: what the README advises) or remove (PyBal's
# `ipvsadm -d`, which cuts transfers in flight: an rsync lost on 2 of 5 reboots), see
# lbdriver.py.
#
# Hosts on one bridge (192.0.2.0/24):
#   lb  (.1)   etcd 3.4 (--enable-v2) with the conftool keys
#              /conftool/v1/pools/test/dumps/{nfs,http,rsync}/rs{1,2}.example.org;
#              IPVS DR for 198.51.100.10 ports 80, 2049, 873 (-s mh unless a scenario
#              says sh) driven by lbdriver.py: HTTP by ProxyFetch of each realserver's
#              /pybal-health/http and the key, NFS and rsync by the keys (watched with
#              wait=true); a realserver that leaves gets weight 0 (DEPOOL below).
#   rs1 (.11), rs2 (.12)  the VIP on lo (ARP ignored); kernel nfsd exporting its own
#              tmpfs copy of the files (fsid=0, so the two hosts' handles differ),
#              nginx on the same files with deploy/examples/nginx-health.conf, an rsync
#              daemon (module dumps), and poolkeeper (nfs, http, rsync checks against
#              its own servers; conftool; drain_seconds 3, peer_dead_after 60s
#              (5s for the crash), liveness_ttl 2s) with its HTTP socket held across restarts as
#              poolkeeper.socket holds it (sockhold.py).
#   cl  (.100-.107)  clients.py: curl and rsync loops rotating over eight source
#              addresses (so both realservers get some; each table says which source
#              went where), and two kernel NFS mounts of
#              the VIP (vers=4.1,ro,soft,timeo=20,retrans=1): a held descriptor and
#              fresh opens, with the remount-on-ESTALE helper.
#
# Scenarios, each against the realserver that serves the client's NFS mount:
#   planned reboot (depool --until-boot; the agent stopped first with stop_action
#   drain; nginx, nfsd, rsyncd stopped; a "boot" of $STACK_BOOT_WAIT s; servers, then
#   the agent started under a new boot id) with NFS on_reboot hold and drain, under
#   -s mh and -s sh, with net.ipv4.vs.expire_nodest_conn 0 and 1; a hung nfsd (every
#   packet to port 2049 dropped on the realserver for 12 s); a restart of both agents
#   alone (stop-action keep); a crash (every process killed, nfsd stopped and the host
#   off the network) and its return.
# Fails when the setup does not work, a host does not come back, or a planned reboot
# loses any HTTP or rsync request. NFS errors are counted and printed, not asserted.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-$VM_ROOT/build/agent}
POOLKEEPER="$BIN/poolkeeper"
POOLCTL="$BIN/poolctl"
[ -x "$POOLKEEPER" ] && [ -x "$POOLCTL" ] || die "no $POOLKEEPER or $POOLCTL (build first)"
VIP=198.51.100.10
PREFIX=/conftool/v1/pools/test/dumps
ETCD=http://192.0.2.1:2379
BOOT_WAIT=3  # the "boot": longer than a soft mount's 4 s with the servers' stop and start
declare -A IP=([rs1]=192.0.2.11 [rs2]=192.0.2.12)
declare -A PEER=([rs1]=192.0.2.12 [rs2]=192.0.2.11)
declare -A PORT=([http]=80 [nfs]=2049 [rsync]=873)
DEPOOL=${3:-quiesce}
# Weight 0 leaves a destination in the hash table: without the scheduler's fallback
# flag, sources hashed to it are refused (seen: every new connection of theirs reset).
SCHED_FLAGS=""
[ "$DEPOOL" = quiesce ] && SCHED_FLAGS="-b %s-fallback"
CLIENT_SRCS=192.0.2.100,192.0.2.101,192.0.2.102,192.0.2.103,192.0.2.104,192.0.2.105,192.0.2.106,192.0.2.107
DRIVER_LOG=$VM_OUT/lbdriver.log
T_BEGIN=$(now)
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- the network --------------------------------------------------------------------
modprobe -a nfsd nfsv4 veth bridge ip_vs ip_vs_mh ip_vs_sh sch_ingress cls_u32 act_gact \
  || die "modprobe"
lvs_lan
for a in ${CLIENT_SRCS//,/ }; do
  [ "$a" = 192.0.2.100 ] || on cl ip addr add "$a/24" dev eth0 || die "client address $a"
done
on cl ip route add "$VIP/32" via 192.0.2.1 src 192.0.2.100 || die "client route"
on lb sh -ec "
  ip addr add $VIP/32 dev lo
  sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.accept_local=1
  for p in 80 2049 873; do ipvsadm -A -t $VIP:\$p -s mh $(printf -- "$SCHED_FLAGS" mh); done
" || die "director setup"

# --- etcd and the conftool keys -----------------------------------------------------
bg_on lb "$VM_NS/etcd.pid" "$VM_OUT/etcd.log" etcd --name stack --data-dir /run/etcd \
  --listen-client-urls "$ETCD,http://127.0.0.1:2379" --advertise-client-urls "$ETCD" \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster stack=http://127.0.0.1:2380 --enable-v2=true --log-level warn
ok=""
for i in $(seq 100); do
  on lb curl -sf --max-time 1 -o /dev/null http://127.0.0.1:2379/v2/keys/ && { ok=1; break; }
  sleep 0.3
done
[ -n "$ok" ] || die "etcd did not start: $(tail -n 5 "$VM_OUT/etcd.log")"
for s in nfs http rsync; do
  for rs in rs1 rs2; do  # as conftool-sync creates them
    on lb curl -sf --max-time 3 -o /dev/null -X PUT "http://127.0.0.1:2379/v2/keys$PREFIX/$s/$rs.example.org" \
      --data-urlencode 'value={"pooled": "yes", "weight": 10}' || die "seeding $s/$rs"
  done
done
log "etcd up ($(since "$T_BEGIN") s), keys seeded"

# --- realservers --------------------------------------------------------------------
head -c 262144 /dev/urandom > /run/data.bin
EXPORT_OPTS="ro,fsid=0,no_subtree_check,insecure"
for rs in rs1 rs2; do
  dr_realserver "$rs" "$VIP"
  nfsd_start "$rs" "/srv/nfs 127.0.0.1($EXPORT_OPTS) 192.0.2.0/24($EXPORT_OPTS)"
  # Each host's own copy (own tmpfs, own inodes): their NFS handles differ.
  on "$rs" sh -c 'echo "poolkeeper canary" > /srv/nfs/canary.txt && cp /run/data.bin /srv/nfs/data.bin &&
    chmod 644 /srv/nfs/*' || die "$rs: files"
  d=$VM_NS/pk-$rs
  mkdir -p "$d/nginx/tmp" "$d/state"
  echo "boot-1" > "$d/boot_id"
  sed "s/127\.0\.0\.1:9473/${IP[$rs]}:9473/" "$VM_ROOT/deploy/examples/nginx-health.conf" > "$d/nginx/health.conf"
  cat > "$d/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $d/nginx/nginx.pid;
error_log $d/nginx/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $d/nginx/tmp; proxy_temp_path $d/nginx/tmp;
  fastcgi_temp_path $d/nginx/tmp; uwsgi_temp_path $d/nginx/tmp; scgi_temp_path $d/nginx/tmp;
  server {
    listen 80;
    server_name dumps.example.org;
    root /srv/nfs;
    include $d/nginx/health.conf;
  }
}
EOF
  cat > "$d/rsyncd.conf" <<EOF
pid file = $d/rsyncd.pid
use chroot = false
reverse lookup = no
[dumps]
  path = /srv/nfs
  read only = true
EOF
done

PDA=60s
# agent_config RS ON_REBOOT [PEER_DEAD_AFTER]: the agent's config (rewritten to change
# on_reboot, then SIGHUP; the [conftool] section is read at start only).
# peer_dead_after must be longer than a reboot for a held host to stay held (3m in
# production against reboots of 1-3 min); here the reboot takes 20-30 s, so 60s, and
# 5s for the crash.
agent_config() {
  local rs=$1 on_reboot=$2 pda=${3:-$PDA} d=$VM_NS/pk-$1 peers timing
  peers="peers = [\"http://${PEER[$rs]}:9473\"]
min_pooled = 1"
  # Production's timings are 1s/500ms; under software emulation with every server and
  # client on 2 vCPUs an rsync daemon's greeting can take over 800 ms: fall 3 of 1 s.
  timing='interval = "1s"
timeout = "1s"
fast_interval = "200ms"
rise = 2
fall = 3'
  cat > "$d/agent.toml.tmp" <<EOF
[agent]
listen = "${IP[$rs]}:9473"
hostname = "$rs.example.org"
admin_socket = "$d/admin.sock"
state_dir = "$d/state"
boot_id_file = "$d/boot_id"
drain_seconds = 3
stop_action = "drain"

[services.nfs]
checks = ["export"]
port = 2049
on_reboot = "$on_reboot"
$peers

[services.http]
checks = ["web", "export"]
port = 80
$peers

[services.rsync]
checks = ["mirror", "export"]
port = 873
$peers

[conftool]
endpoints = ["$ETCD"]
prefix = "$PREFIX"
peer_dead_after = "$pda"
liveness_ttl = "2s"

[checks.export]
kind = "nfs"
server = "127.0.0.1"
port = 2049
path = "/canary.txt"
expect = "poolkeeper canary"
max_age = "1h"
$timing

[checks.web]
kind = "http"
url = "http://127.0.0.1/canary.txt"
host = "dumps.example.org"
$timing

[checks.mirror]
kind = "rsync"
address = "127.0.0.1:873"
module = "dumps"
path = "canary.txt"
$timing
EOF
  "$POOLKEEPER" --check-config "$d/agent.toml.tmp" >/dev/null || die "$rs: config refused: $("$POOLKEEPER" --check-config "$d/agent.toml.tmp" 2>&1)"
  mv "$d/agent.toml.tmp" "$d/agent.toml"
}

# What systemd starts on a boot, in its order: the servers, then the socket and the agent.
services_start() {
  local rs=$1 d=$VM_NS/pk-$1 i
  nfsd_run "$rs" >/dev/null
  bg_on "$rs" "$d/nginx.run" "$VM_OUT/nginx-$rs.log" nginx -c "$d/nginx/nginx.conf" -p "$d/nginx" -e "$d/nginx/error.log"
  rm -f "$d/rsyncd.pid"
  bg_on "$rs" "$d/rsyncd.run" "$VM_OUT/rsyncd-$rs.log" rsync --daemon --no-detach --config="$d/rsyncd.conf" \
    --port=873 --log-file="$VM_OUT/rsyncd-$rs.log"
  for i in $(seq 100); do
    on "$rs" bash -c 'exec 3<>/dev/tcp/127.0.0.1/80 && exec 4<>/dev/tcp/127.0.0.1/873' 2>/dev/null && return 0
    sleep 0.1
  done
  die "$rs: nginx or rsyncd did not start"
}
agent_start() {
  local rs=$1 d=$VM_NS/pk-$1 i
  bg_on "$rs" "$d/sockhold.pid" "$VM_OUT/agent-$rs.log" python3 "$VM_TESTS/sockhold.py" "${IP[$rs]}:9473" \
    "$d/agent.pid" -- "$POOLKEEPER" --config "$d/agent.toml"
  for i in $(seq 100); do [ -s "$d/agent.pid" ] && return 0; sleep 0.05; done
  die "$rs: the agent did not start"
}
wait_gone() {  # PID SECONDS
  local i
  for i in $(seq $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}
# A host going down: SIGTERM to the socket holder, which stops the agent (its drain)
# and then closes the socket.
agent_stop_host() {
  local rs=$1 d=$VM_NS/pk-$1 pid
  pid=$(cat "$d/sockhold.pid")
  kill -TERM "$pid"
  wait_gone "$pid" 15 || { log "$rs: agent stop took over 15 s"; kill -KILL "$pid"; }
}
# The servers' own stops: nginx gracefully (SIGQUIT, as nginx.service), rsyncd, nfsd;
# then whatever is left in the host, as systemd's KillMode would.
services_stop() {
  local rs=$1 d=$VM_NS/pk-$1 p
  kill -QUIT "$(cat "$d/nginx.run")" 2>/dev/null
  kill -TERM "$(cat "$d/rsyncd.run")" 2>/dev/null
  nfsd_stop "$rs"
  for p in nginx rsyncd; do wait_gone "$(cat "$d/$p.run")" 8; done
  ns_kill_all "$rs" KILL
}
ns_kill_all() {  # NAME SIGNAL: every process in host NAME but the one keeping it
  local keeper p
  keeper=$(cat "$VM_NS/$1.pid")
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = "$keeper" ] && continue
    [[ /proc/$p/ns/net -ef /proc/$keeper/ns/net ]] 2>/dev/null && kill -"$2" "$p" 2>/dev/null
  done
  return 0
}

for rs in rs1 rs2; do
  agent_config "$rs" hold
  services_start "$rs"
done
for rs in rs1 rs2; do agent_start "$rs"; done
log "realservers up ($(since "$T_BEGIN") s)"
bg_on lb "$VM_NS/lbdriver.pid" "$VM_OUT/lbdriver.out" python3 "$VM_TESTS/lbdriver.py" --vip "$VIP" \
  --prefix "$PREFIX" --etcd http://127.0.0.1:2379 --log "$DRIVER_LOG" --seconds 1200 --depool "$DEPOOL" \
  rs1=192.0.2.11 rs2=192.0.2.12

in_ipvs() {  # SERVICE RS: in the table with a weight above 0
  on lb ipvsadm -Ln -t "$VIP:${PORT[$1]}" 2>/dev/null | awk -v r="${IP[$2]}:${PORT[$1]}" '$2 == r && $4 > 0 { f = 1 } END { exit !f }'
}
# wait_in RS SECONDS [in|out] [SERVICES]: until RS is in (or out of) every service
wait_in() {
  local rs=$1 secs=$2 want=${3:-in} svcs=${4:-"http nfs rsync"} i s all
  for i in $(seq $((secs * 5))); do
    all=1
    for s in $svcs; do
      if in_ipvs "$s" "$rs"; then [ "$want" = in ] || all=""; else [ "$want" = out ] || all=""; fi
    done
    [ -n "$all" ] && return 0
    sleep 0.2
  done
  return 1
}
for rs in rs1 rs2; do
  wait_in "$rs" 90 || die "$rs never entered every pool: $(on lb ipvsadm -Ln); agent: $(tail -n 20 "$VM_OUT/agent-$rs.log")"
done
log "director has both realservers in every service ($(since "$T_BEGIN") s)"
on lb ipvsadm -Ln | sed 's/^/  /'
# Separate copies: the agents see that a move between them costs the NFS clients.
on rs1 curl -s --max-time 3 "http://192.0.2.11:9473/status" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print("  rs1 /status: nfs_handles_match with its peer:", [p.get("nfs_handles_match") for p in s.get("peers", [])])' \
  || log "no /status from rs1"

# --- scenarios ----------------------------------------------------------------------
# who_serves: which realserver each client source address is on, per service, from
# the director's connection table: connections open, or closed within the last 20 s
# (TIME_WAIT and FIN_WAIT last 2 min).
who_serves() {
  on lb ipvsadm -Lnc | awk -v vip="$VIP" '
    NR > 2 { split($5, v, ":"); if (v[1] != vip) next
             split($2, e, ":"); if ($3 != "ESTABLISHED" && e[1] * 60 + e[2] < 100) next
             split($4, c, ":"); split($6, r, ":"); k = v[2] " " r[1]
             if (!(k SUBSEP c[1] in seen)) { seen[k, c[1]] = 1; n = split(c[1], o, "."); m[k] = m[k] " ." o[n] } }
    END { for (k in m) print k m[k] }' | sort > "$VM_NS/who"
}
MARKS=""
mark() { MARKS="$MARKS$(now) $*"$'\n'; log "$*"; }
N=0
clients_start() {
  N=$((N + 1))
  CDIR=/run/cl/$N
  rm -f /run/cl/stop
  mkdir -p "$CDIR"
  bg_on cl "$VM_NS/clients.pid" "$VM_OUT/clients-$N.out" python3 "$VM_TESTS/clients.py" --vip "$VIP" \
    --dir "$CDIR" --seconds 150 --stop /run/cl/stop --src "$CLIENT_SRCS" --data /run/data.bin
  local i
  for i in $(seq 150); do [ -s "$CDIR/started" ] && break; sleep 0.2; done
  [ -s "$CDIR/started" ] || die "clients did not start: $(cat "$VM_OUT/clients-$N.out")"
  sleep 2  # every client has worked before the scenario
}
clients_stop() {
  touch /run/cl/stop
  wait_gone "$(cat "$VM_NS/clients.pid")" 30 || die "clients did not stop"
  [ -s "$CDIR/summary.json" ] || die "no client summary: $(cat "$VM_OUT/clients-$N.out")"
  cp "$CDIR/events.log" "$VM_OUT/clients-$N.events"
  cp "$CDIR/summary.json" "$VM_OUT/clients-$N.json"
}
nfs_server() {  # the realserver of the client's NFS connection, from the director's table
  local ip
  ip=$(on lb ipvsadm -Lnc | awk -v v="$VIP:2049" '$5 == v && $3 == "ESTABLISHED" { split($6, a, ":"); print a[1]; exit }')
  case "$ip" in 192.0.2.11) echo rs1 ;; 192.0.2.12) echo rs2 ;; esac
}
# clients_on_nfs_server: starts the clients; sets rs to the realserver their NFS
# connection went to (the host a scenario then acts on) and d to its agent's directory.
clients_on_nfs_server() {
  clients_start
  rs=$(nfs_server)
  [ -n "$rs" ] || die "no NFS connection of the client on the director: $(on lb ipvsadm -Lnc)"
  d=$VM_NS/pk-$rs
}
# scenario_begin TITLE: sets title, logs it and who serves what; the marks and t0 count
# from now.
scenario_begin() {
  title=$1
  log "--- $title"
  who_serves
  MARKS=""
  t0=$(now)
}
set_lb() {  # SCHEDULER EXPIRE
  on lb sh -ec "for p in 80 2049 873; do ipvsadm -E -t $VIP:\$p -s $1 $(printf -- "$SCHED_FLAGS" "$1"); done
    sysctl -qw net.ipv4.vs.expire_nodest_conn=$2"
}
# table TITLE RS T0 T1: the scenario's figures.
TABLES=""
table() {
  local out
  out=$(python3 - "$1" "$2" "$3" "$4" "$CDIR/summary.json" "$DRIVER_LOG" "$MARKS" "$VM_NS/who" <<'EOF'
import json, sys
title, rs, t0, t1, summary, dlog, marks, who = sys.argv[1:9]
t0, t1 = float(t0), float(t1)
s = json.load(open(summary))
print("=== %s ===" % title)
steps = [l.split(" ", 1) for l in marks.splitlines() if l.strip()]
print("  steps (s after the scenario began): " + "; ".join("%s +%.1f" % (w, float(t) - t0) for t, w in steps))
names = {"80": "http", "2049": "nfs", "873": "rsync", "192.0.2.11": "rs1", "192.0.2.12": "rs2"}
srcs = {}
for line in open(who):
    port, ip, *addrs = line.split()
    srcs.setdefault(names.get(port, port), []).append("%s from %s" % (names.get(ip, ip), " ".join(addrs)))
print("  client sources at the start: " + "; ".join("%s: %s" % (k, ", ".join(v)) for k, v in sorted(srcs.items())))
print("  client       ok  failed  remounts  reopens  longest stall  longest op  failures (first .. last)")
for c in s["clients"]:
    span = "-" if not c["failed"] else "+%.1f .. +%.1f s" % (c["first_fail"] - t0, c["last_fail"] - t0)
    nfs = c["name"].startswith("nfs")
    print("  %-10s %4d  %6d  %8s  %7s  %11.2f s  %8.2f s  %s" % (
        c["name"], c["ok"], c["failed"], c["remounts"] if nfs else "-", c["reopens"] if nfs else "-",
        c["longest_gap"], c["longest_op"], span))
ev = {"http": [], "nfs": [], "rsync": []}
keys = {"http": [], "nfs": [], "rsync": []}
fetch, other = [], []
for line in open(dlog):
    w = line.split()
    t = float(w[0])
    if not (t0 - 0.01 <= t <= t1):
        continue
    if w[1] == "ipvs":
        ev[w[2]].append("%s %s +%.2f" % (w[3], w[4], t - t0))
    elif w[1] == "key":
        keys[w[2]].append("%s %s +%.2f" % (w[3], w[4], t - t0))
    elif w[1] == "fetch":
        fetch.append("%s %s +%.2f" % (w[2], w[3], t - t0))
    else:
        other.append(" ".join(w[1:]) + " +%.2f" % (t - t0))
for svc in ("http", "nfs", "rsync"):
    print("  director %-5s %s" % (svc + ":", ", ".join(ev[svc]) or "no change"))
for svc in ("http", "nfs", "rsync"):
    print("  conftool %-5s %s" % (svc + ":", ", ".join(keys[svc]) or "no change"))
print("  proxyfetch:    %s" % (", ".join(fetch) or "no change"))
for o in other:
    print("  driver: " + o)
n = sum(len(v) for v in ev.values())
nk = sum(len(v) for v in keys.values())
print("  director changes %d, conftool changes %d; http failed %d, rsync failed %d" % (
    n, nk, *[c["failed"] for c in s["clients"] if c["name"] in ("http", "rsync")]))
EOF
)
  echo "$out"
  TABLES="$TABLES$out"$'\n\n'
}
failed_of() {  # CLIENT: its failures in the last summary
  python3 -c 'import json,sys; print(sum(c["failed"] for c in json.load(open(sys.argv[1]))["clients"] if c["name"] == sys.argv[2]))' \
    "$CDIR/summary.json" "$1"
}

PROMISE_BROKEN=""
ON_REBOOT=hold
set_on_reboot() {
  [ "$ON_REBOOT" = "$1" ] && return
  local rs n i
  for rs in rs1 rs2; do
    n=$(grep -c 'msg="config reloaded"' "$VM_OUT/agent-$rs.log")
    agent_config "$rs" "$1"
    kill -HUP "$(cat "$VM_NS/pk-$rs/agent.pid")"
    for i in $(seq 50); do
      [ "$(grep -c 'msg="config reloaded"' "$VM_OUT/agent-$rs.log")" -gt "$n" ] && break
      sleep 0.2
    done
    [ "$i" -lt 50 ] || die "$rs: the agent did not reload its config"
  done
  ON_REBOOT=$1
}

# planned_reboot ON_REBOOT SCHED EXPIRE
planned_reboot() {
  local on_reboot=$1 sched=$2 expire=$3 rs d t0 t_start t1 title
  t_start=$(now)
  set_on_reboot "$on_reboot"
  set_lb "$sched" "$expire"
  clients_on_nfs_server
  scenario_begin "planned reboot of $rs (the client's NFS server), NFS on_reboot=$on_reboot, -s $sched, expire_nodest_conn=$expire"
  mark "depool"
  on "$rs" "$POOLCTL" --socket "$d/admin.sock" depool --until-boot --reason reboot >/dev/null \
    || log "$rs: depool failed"
  mark "shutdown"
  agent_stop_host "$rs"
  mark "agent-stopped"
  services_stop "$rs"
  mark "servers-stopped"
  sleep "$BOOT_WAIT"
  echo "boot-$(date +%s%N)" > "$d/boot_id"
  mark "boot"
  services_start "$rs"
  agent_start "$rs"
  mark "agent-started"
  wait_in "$rs" 60 || { log "$rs did not come back into every pool within 60 s"; PROMISE_BROKEN="$PROMISE_BROKEN; $rs not back ($title)"; }
  mark "back-in-all"
  sleep 1
  clients_stop
  t1=$(now)
  table "$title" "$rs" "$t0" "$t1"
  local fh fr
  fh=$(failed_of http)
  fr=$(failed_of rsync)
  [ "$fh" = 0 ] && [ "$fr" = 0 ] || PROMISE_BROKEN="$PROMISE_BROKEN; $fh HTTP and $fr rsync failed ($title)"
  log "scenario took $(since "$t_start") s"
}

hung_nfsd() {
  local rs d t0 t_start title
  t_start=$(now)
  set_lb mh 0
  clients_on_nfs_server
  # A hung nfsd: its kernel threads cannot be stopped (SIGSTOP does not reach them) and
  # `rpc.nfsd 0` would close the connections (a stop, not a hang). Dropping every packet
  # to port 2049 as it enters the host (the clients' via eth0, the agent's probe via lo)
  # looks the same from outside: connections stay open, nothing answers.
  scenario_begin "hung nfsd on $rs (every packet to port 2049 dropped for 10 s), -s mh, expire_nodest_conn=0"
  on "$rs" sh -ec "for dev in lo eth0; do tc qdisc add dev \$dev ingress
      tc filter add dev \$dev parent ffff: protocol ip prio 1 u32 match ip dport 2049 0xffff action drop; done" \
    || die "$rs: tc drop"
  mark "hung"
  sleep 10
  on "$rs" sh -c "tc qdisc del dev lo ingress; tc qdisc del dev eth0 ingress"
  mark "resumed"
  wait_in "$rs" 60 || { log "$rs did not come back after the hang"; PROMISE_BROKEN="$PROMISE_BROKEN; $rs not back after the hang"; }
  mark "back-in-all"
  sleep 1
  clients_stop
  table "$title" "$rs" "$t0" "$(now)"
  log "scenario took $(since "$t_start") s"
}

# restart_agents: both agents restarted at once, alone (the socket stays open).
restart_agents() {
  local rs pids=""
  for rs in rs1 rs2; do
    (
      d=$VM_NS/pk-$rs
      # What a package upgrade does (README, Stopping): the one-shot stop-action file.
      echo keep > "$d/stop-action"
      pid=$(cat "$d/agent.pid")
      kill -TERM "$pid"
      wait_gone "$pid" 15
      kill -USR1 "$(cat "$d/sockhold.pid")"
    ) &
    pids="$pids $!"
  done
  wait $pids
}
agents_healthy() {  # both agents' /health 200 within 20 s
  local i
  for i in $(seq 100); do
    on rs1 curl -sf --max-time 1 -o /dev/null "http://192.0.2.11:9473/health" &&
      on rs2 curl -sf --max-time 1 -o /dev/null "http://192.0.2.12:9473/health" && return 0
    sleep 0.2
  done
  return 1
}

agent_restart() {
  local t0 t_start title
  t_start=$(now)
  set_lb mh 0
  clients_start
  scenario_begin "restart of both agents alone (stop-action keep), -s mh"
  mark "restart"
  restart_agents
  mark "restarted"
  agents_healthy || log "the agents' /health did not answer 200 again within 20 s"
  mark "healthy"
  sleep 4
  clients_stop
  table "$title" "-" "$t0" "$(now)"
  log "scenario took $(since "$t_start") s"
}

crash() {
  local rs t0 t_start title d
  t_start=$(now)
  set_lb mh 0
  # A short peer_dead_after, so that the peers take the dead host out within seconds:
  # a new config needs a restart of the agents (alone: nothing changes in the pool).
  PDA=5s
  for rs in rs1 rs2; do agent_config "$rs" "$ON_REBOOT"; done
  restart_agents
  agents_healthy || log "the agents' /health did not answer 200 again within 20 s"
  clients_on_nfs_server
  scenario_begin "crash of $rs (kill -9 of every process, nfsd stopped, off the network) and return, -s mh"
  mark "crash"
  on "$rs" ip link set eth0 down
  ns_kill_all "$rs" KILL
  on "$rs" rpc.nfsd 0
  on "$rs" exportfs -ua
  # Down until its peer has taken it out of NFS (liveness_ttl + peer_dead_after), then 2 s.
  wait_in "$rs" 45 out "nfs rsync" || log "$rs: not out of nfs and rsync 45 s after the crash"
  mark "out"
  sleep 2
  echo "boot-$(date +%s%N)" > "$d/boot_id"
  on "$rs" ip link set eth0 up
  mark "boot"
  services_start "$rs"
  agent_start "$rs"
  mark "agent-started"
  wait_in "$rs" 60 || { log "$rs did not come back after the crash"; PROMISE_BROKEN="$PROMISE_BROKEN; $rs not back after the crash"; }
  mark "back-in-all"
  sleep 1
  clients_stop
  table "$title" "$rs" "$t0" "$(now)"
  log "scenario took $(since "$t_start") s"
}

# The default list has each NFS on_reboot, each scheduler and each expire_nodest_conn
# once in a planned reboot; the real hosts' rolling reboot (tests/hosts, label hosts)
# adds hold under mh with expire_nodest_conn 1 on a real kernel reboot, and e2e_test
# both on_reboot values behind HAProxy. Any other combination (reboot:hold:sh:0,
# reboot:drain:mh:0, reboot:drain:sh:0, reboot:drain:mh:1) can be given as SCENARIOS,
# and so can `restart` (both agents restarted alone): the real hosts' keep
# scenario proves that under systemd and IPVS (restart, reload and upgrade) and e2e's
# AgentOnlyRestartOnBothHostsChangesNothing with both agents at once.
SCENARIOS=${2:-"reboot:hold:mh:0 reboot:drain:sh:1 hung crash"}
for sc in $SCENARIOS; do
  IFS=: read -r kind a b c <<<"$sc"
  case "$kind" in
    reboot) planned_reboot "$a" "$b" "$c" ;;
    hung) hung_nfsd ;;
    restart) agent_restart ;;
    crash) crash ;;
    *) die "unknown scenario $sc" ;;
  esac
  for rs in rs1 rs2; do wait_in "$rs" 60 || die "$rs not in every pool between scenarios"; done
done

echo
echo "=== all tables (times in seconds after each scenario began) ==="
printf '%s' "$TABLES"
kill -TERM "$(cat "$VM_NS/lbdriver.pid")" 2>/dev/null
# The kernel's own words (IPVS: "no destination available", nfsd), for a broken promise.
dmesg > "$VM_OUT/dmesg.log" 2>&1
[ -z "$PROMISE_BROKEN" ] || die "${PROMISE_BROKEN#; }"
log "stack scenario passed ($(since "$T_BEGIN") s)"
