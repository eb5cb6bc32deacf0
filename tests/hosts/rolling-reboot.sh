#!/bin/bash
# Real hosts: a rolling reboot by the README's procedure, with `systemctl reboot`.
#
#   tests/hosts/rolling-reboot.sh [HOSTS...]      (default: rs1; e.g. "rs1 rs2")
#
# Three qemu VMs booting systemd (tests/hosts/host.sh), on 192.0.2.0/24:
#   lb  (.1)   the director: etcd 3.4 (--enable-v2, v2 authentication on, as the
#              README's "etcd" section sets it up) with the conftool keys
#              /conftool/v1/pools/test/dumps/{nfs,http,rsync}/rs{1,2}.example.org; IPVS
#              DR for 198.51.100.10 ports 80, 873 and 2049 (-s mh with mh-fallback)
#              driven by tests/vm/lbdriver.py as PyBal drives it (quiesce: weight 0 on
#              the way out); the clients (tests/vm/clients.py: curl and rsync loops over
#              eight source addresses, two kernel NFS mounts of the VIP with the
#              remount-on-ESTALE helper) in a network namespace bridged onto its link.
#   rs1 (.11), rs2 (.12)  realservers with a persistent disk each: the VIP on lo,
#              kernel nfsd through nfs-server.service, nginx and the rsync daemon under
#              their own units, and poolkeeper installed with `dpkg -i` from the
#              package deploy/build-deb.sh builds, its shipped units unmodified. The
#              test writes only /etc/poolkeeper/poolkeeper.toml, the etcd password
#              file, and the servers' configs and files.
# The package: the .deb in $POOLKEEPER_DEB_DIR if set (built once, e.g. by CI), else
# built here into build/hosts/deb (DEB_BUILD_OPTIONS default: nocheck).
#
# For each host named: `poolctl depool --until-boot --reason reboot && systemctl
# reboot`, then until the host is back in every service. One table per reboot: the
# clients' requests and failures, when the director took the host out and put it back,
# the boot, and what the agent's journal said about its stop. Fails when an HTTP or
# rsync request failed, the journal does not say the agent drained because the host
# was going down, the host does not come back into every service, the --until-boot
# intent is not cleared by the new boot, or a service's pool was ever empty. NFS
# clients' errors, remounts and stalls are counted and printed, not asserted: a client
# moved to the other host meets handles that host never gave out (README, "NFS file
# handles").
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export HOSTS_DIR=${HOSTS_DIR:-$ROOT/build/hosts}
H="$HERE/host.sh"
VM="$ROOT/tests/vm"
ROLL=("${@:-rs1}")
VIP=198.51.100.10
PREFIX=/conftool/v1/pools/test/dumps
# etcd's root, and the agents' user that `poolctl etcd-role` names (pool-<site>-<cluster>).
ROOT_PW=hosts-root-secret
AGENT_USER=pool-test-dumps AGENT_PW=hosts-agent-secret
CLIENTS=http,rsync,nfs-held,nfs-fresh
SRCS=192.0.2.100,192.0.2.101,192.0.2.102,192.0.2.103,192.0.2.104,192.0.2.105,192.0.2.106,192.0.2.107
# Two free loopback ports for the hub's listening sockets (qemu cannot bind a busy one).
for _ in $(seq 50); do
  PORT=$((30000 + RANDOM % 20000))
  ss -Htan "( sport = :$PORT or sport = :$((PORT + 1)) )" | grep -q . || break
done
declare -A IP=([rs1]=192.0.2.11 [rs2]=192.0.2.12)
other() { [ "$1" = rs1 ] && echo rs2 || echo rs1; }
# The conftool liveness timings the agents run with, in seconds: the agent's defaults
# (README, Liveness) unless HOSTS_LIVENESS_TTL / HOSTS_PEER_DEAD_AFTER say otherwise.
TTL_S=${HOSTS_LIVENESS_TTL:-10}
PDA_S=${HOSTS_PEER_DEAD_AFTER:-30}
LIVENESS_LINES="liveness_ttl = \"${TTL_S}s\""$'\n'"peer_dead_after = \"${PDA_S}s\""
# After the rolling reboot, in the same boots: keep (restart, reload, upgrade of the
# agent), kill (a server killed under systemd), powercut (rs1's qemu killed).
MORE=${HOSTS_MORE:-keep kill powercut}

T0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[%6s s] %s\n' "$(since "$T0")" "$*"; }
die() { log "FAIL: $*" >&2; exit 1; }  # stderr: seen from inside $(...) too
cleanup() { "$H" killall || true; }
trap cleanup EXIT

# --- the hosts ----------------------------------------------------------------------
"$H" killall
rm -rf "$HOSTS_DIR"/{lb,rs1,rs2}
mkdir -p "$HOSTS_DIR/shared"
head -c 262144 /dev/urandom > "$HOSTS_DIR/shared/data.bin"
"$H" setup
"$H" start lb --ip 192.0.2.1/24 --hub "$PORT,$((PORT + 1))"
sleep 1
for rs in rs1 rs2; do
  n=$([ $rs = rs1 ] && echo 0 || echo 1)
  "$H" start $rs --ip "${IP[$rs]}/24" --connect $((PORT + n)) --disk 1024 --dr-vip $VIP \
    --wants nginx.service,rsync.service,nfs-server.service
done
declare -A BOOT
for h in lb rs1 rs2; do
  "$H" wait $h 1 >/dev/null
  BOOT[$h]=$(awk -v a="$(cat "$HOSTS_DIR/$h/started")" '{ printf "%.1f", $1 - a; exit }' "$HOSTS_DIR/$h/out/ready")
done
log "booted (qemu start to multi-user.target): lb ${BOOT[lb]} s, rs1 ${BOOT[rs1]} s, rs2 ${BOOT[rs2]} s"

# --- the director: etcd, the keys, IPVS, the driver ---------------------------------
"$H" exec lb "set -e
  # The director's etcd and driver before the clients: in production they have CPUs of
  # their own; here the clients' loops (a process per request) saturate the one
  # emulated CPU, and etcd's proposals timed out for half a minute.
  systemd-run --unit=hosts-etcd -p Nice=-15 -p CPUWeight=10000 etcd --name hosts --data-dir /var/lib/etcd-hosts \
    --listen-client-urls http://192.0.2.1:2379,http://127.0.0.1:2379 --advertise-client-urls http://192.0.2.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster hosts=http://127.0.0.1:2380 --enable-v2=true --log-level warn
  for i in \$(seq 120); do curl -sf --max-time 2 -o /dev/null http://127.0.0.1:2379/v2/keys/ && break; sleep 0.5; done
  for s in nfs http rsync; do for rs in rs1 rs2; do
    curl -sf --max-time 5 -o /dev/null -X PUT http://127.0.0.1:2379/v2/keys$PREFIX/\$s/\$rs.example.org \
      --data-urlencode 'value={\"pooled\": \"yes\", \"weight\": 10}'
  done; done
  modprobe -a ip_vs ip_vs_mh
  ip addr add $VIP/32 dev lo
  sysctl -qw net.ipv4.ip_forward=1 net.ipv4.vs.expire_nodest_conn=1
  for p in 80 873 2049; do ipvsadm -A -t $VIP:\$p -s mh -b mh-fallback; done
  # v2 authentication as the README sets it up: root, auth on, guest's write taken away.
  # The director reads the pools as PyBal does, without a password: guest keeps reading
  # /conftool/*, nothing else.
  export ETCDCTL_API=2 ETCDCTL_ENDPOINTS=http://127.0.0.1:2379
  printf '%s\\n' $ROOT_PW | etcdctl user add root >/dev/null
  etcdctl auth enable
  ETCDCTL_USERNAME=root:$ROOT_PW etcdctl role revoke guest --readwrite --path '/*' >/dev/null
  ETCDCTL_USERNAME=root:$ROOT_PW etcdctl role grant guest --read --path '/conftool/*' >/dev/null
  curl -s -o /dev/null -w '%{http_code}' -X PUT http://127.0.0.1:2379/v2/keys/poolkeeper/probe -d value=x | grep -qx 401
  # The clients: a namespace on a bridge that takes over eth0's place.
  ip link add br0 type bridge
  ip addr del 192.0.2.1/24 dev eth0
  ip link set eth0 master br0
  ip link set br0 up
  ip addr add 192.0.2.1/24 dev br0
  ip netns add cl
  ip link add vcl type veth peer name eth0 netns cl
  ip link set vcl master br0 up
  ip -n cl link set lo up
  ip -n cl link set eth0 up
  for a in ${SRCS//,/ }; do ip -n cl addr add \$a/24 dev eth0; done
  ip -n cl route add $VIP/32 via 192.0.2.1 src 192.0.2.100
  systemd-run --unit=hosts-lbdriver -p Nice=-10 -p CPUWeight=1000 python3 $VM/lbdriver.py --vip $VIP --prefix $PREFIX \
    --etcd http://127.0.0.1:2379 --log /vm-out/lbdriver.log --seconds 3600 --depool quiesce \
    rs1=192.0.2.11 rs2=192.0.2.12
" || die "director setup"
log "director up: etcd, keys, IPVS, lbdriver"

# --- the package --------------------------------------------------------------------
DEB=$("$H" package) || die "no package"
log "package $DEB"

# --- the realservers ----------------------------------------------------------------
# Both at once: each guest has an emulated CPU of its own (one after the other they
# took 167 s of a run, mostly dpkg -i and nfs-server under emulation).
declare -A SETUP
for rs in rs1 rs2; do
  "$H" exec $rs "set -e
    sh $HERE/servers.sh
    cp $HOSTS_DIR/shared/data.bin /srv/dumps/data.bin
    chmod 644 /srv/dumps/data.bin
    systemctl restart nginx
    systemctl start rsync
    # Kernel nfsd through nfs-server.service, NFSv4 only, exporting a filesystem of the
    # host's own: an ext4 image (an overlay root cannot be exported) that a mount unit
    # mounts at boot, before nfs-server (the guest's /etc/fstab is rewritten at each
    # boot). Each host made its own, so their file handles differ, as on real hosts.
    truncate -s 32M /var/lib/dumps-nfs.img
    mkfs.ext4 -q -F /var/lib/dumps-nfs.img
    mkdir -p /srv/nfs /etc/nfs.conf.d /etc/systemd/system/nfs-server.service.d
    printf '[Unit]\\nDescription=the dumps NFS exports\\n[Mount]\\nWhat=/var/lib/dumps-nfs.img\\nWhere=/srv/nfs\\nType=ext4\\nOptions=loop\\n[Install]\\nWantedBy=local-fs.target\\n' > /etc/systemd/system/srv-nfs.mount
    printf '[Unit]\\nRequiresMountsFor=/srv/nfs\\n' > /etc/systemd/system/nfs-server.service.d/srv-nfs.conf
    systemctl daemon-reload
    systemctl enable --now srv-nfs.mount
    cp /srv/dumps/canary.txt /srv/dumps/data.bin /srv/nfs/
    chmod 644 /srv/nfs/*
    printf '[nfsd]\\nvers3=n\\n' > /etc/nfs.conf.d/hosts.conf
    o=ro,fsid=0,no_subtree_check,insecure
    echo \"/srv/nfs 127.0.0.1(\$o) 192.0.2.0/24(\$o)\" > /etc/exports
    systemctl restart nfs-server
    # The machine's root is shared (9p, cached): forget what this guest saw of it, so
    # dpkg judges the files as they are now.
    sync; echo 3 > /proc/sys/vm/drop_caches
    dpkg -i $DEB
    # The servers restart after a crash (Debian's units do not): the operator's drop-in.
    for u in nginx rsync; do
      mkdir -p /etc/systemd/system/\$u.service.d
      printf '[Service]\\nRestart=on-failure\\nRestartSec=3s\\n' > /etc/systemd/system/\$u.service.d/restart.conf
    done
    systemctl daemon-reload
    cat > /etc/poolkeeper/poolkeeper.toml <<'EOF'
[agent]
listen = \"0.0.0.0:9473\"
hostname = \"$rs.example.org\"

[services.nfs]
checks = [\"export\"]
port = 2049
peers = [\"http://${IP[$(other $rs)]}:9473\"]

[services.http]
checks = [\"web\"]
port = 80
peers = [\"http://${IP[$(other $rs)]}:9473\"]

[services.rsync]
checks = [\"mirror\"]
port = 873
peers = [\"http://${IP[$(other $rs)]}:9473\"]

[conftool]
endpoints = [\"http://192.0.2.1:2379\"]
prefix = \"$PREFIX\"
username = \"$AGENT_USER\"
password_file = \"/etc/poolkeeper/etcd-password\"
# etcd shares the director's one emulated CPU with the driver and the clients: it
# answered in over 2 s (the default) for half a minute once the clients started.
timeout = \"5s\"
$LIVENESS_LINES
# Each check names its server's unit, as the README advises (Failover): a crash brings
# the probes forward at once. Without it, a server killed and restarted by its unit
# 3 s later was back before three failed probes 4 s apart, and never out (2 rsync
# requests refused meanwhile).
# Under software emulation on a busy machine an rsync daemon's greeting can take
# seconds (2 s ran out three times in a row during a dpkg -i beside it); a probe's
# timeout is at most its interval.
[checks.web]
kind = \"http\"
unit = \"nginx.service\"
url = \"http://127.0.0.1/canary.txt\"
host = \"dumps.example.org\"
interval = \"4s\"
timeout = \"4s\"
fall = 3

[checks.mirror]
kind = \"rsync\"
unit = \"rsync.service\"
address = \"127.0.0.1:873\"
module = \"dumps\"
path = \"canary.txt\"
interval = \"4s\"
timeout = \"4s\"
fall = 3

[checks.export]
kind = \"nfs\"
unit = \"nfs-server.service\"
server = \"127.0.0.1\"
port = 2049
path = \"/canary.txt\"
expect = \"poolkeeper canary\"
interval = \"4s\"
timeout = \"4s\"
fall = 3
EOF
    # The README's checklist: nginx reaches the agent on 127.0.0.1 and the peer on the
    # host's address, so the socket listens on every address (one socket, one port).
    mkdir -p /etc/systemd/system/poolkeeper.socket.d
    printf '[Socket]\\nListenStream=\\nListenStream=0.0.0.0:9473\\n' > /etc/systemd/system/poolkeeper.socket.d/listen.conf
    systemctl daemon-reload
    # The agent's etcd password: readable by the agent's user only.
    printf '%s\\n' $AGENT_PW > /etc/poolkeeper/etcd-password
    chown poolkeeper:poolkeeper /etc/poolkeeper/etcd-password
    chmod 600 /etc/poolkeeper/etcd-password
    poolkeeper --check-config /etc/poolkeeper/poolkeeper.toml
  " > "$HOSTS_DIR/$rs.setup.log" 2>&1 &
  SETUP[$rs]=$!
done
for rs in rs1 rs2; do
  wait "${SETUP[$rs]}" || die "$rs setup: $(tail -n 20 "$HOSTS_DIR/$rs.setup.log")"
done
# The agents' etcd user, by the README: `poolctl etcd-role` prints the commands and
# etcd's root runs them, the new user's password on etcdctl's prompt.
"$H" exec rs1 "poolctl etcd-role --config /etc/poolkeeper/poolkeeper.toml" > "$HOSTS_DIR/etcd-role.out" 2>&1 ||
  die "poolctl etcd-role: $(cat "$HOSTS_DIR/etcd-role.out")"
python3 - "$HOSTS_DIR/etcd-role.out" "$ROOT_PW" "$AGENT_PW" > "$HOSTS_DIR/lb/out/etcd-role.sh" <<'EOF' ||
import sys
out, root_pw, agent_pw = sys.argv[1:4]
print("set -e")
n = 0
for line in open(out):
    line = line.split("#")[0].strip()
    if line.startswith("export "):
        print(line)
        print("export ETCDCTL_USERNAME=root:" + root_pw)
    elif line.startswith("etcdctl user add "):
        print("printf '%s\\n' " + agent_pw + " | " + line)
        n += 1
    elif line.startswith("etcdctl "):
        print(line)
        n += 1
if n != 5:
    sys.exit("poolctl etcd-role printed %d etcdctl commands, not 5" % n)
EOF
  die "etcd-role: $(cat "$HOSTS_DIR/etcd-role.out")"
"$H" exec lb "bash /vm-out/etcd-role.sh" > "$HOSTS_DIR/etcd-role.log" 2>&1 ||
  die "the etcd-role commands: $(cat "$HOSTS_DIR/etcd-role.log")"
log "etcd: user $AGENT_USER made by poolctl etcd-role's commands"
for rs in rs1 rs2; do
  "$H" exec $rs "systemctl start poolkeeper.socket poolkeeper.service || { journalctl -u poolkeeper -n 20 --no-pager; exit 1; }
    systemctl is-enabled poolkeeper.service poolkeeper.socket" > "$HOSTS_DIR/$rs.start.log" 2>&1 ||
    die "$rs: poolkeeper did not start: $(tail -n 20 "$HOSTS_DIR/$rs.start.log")"
done
log "realservers up: nfs-server, nginx, rsync, poolkeeper $(dpkg-deb -f "$DEB" Version)"

# in_all RS: RS is in every service with a weight above 0 (run in lb).
in_all_cmd() {
  echo "ok=1; for p in 80 873 2049; do ipvsadm -Ln -t $VIP:\$p | awk -v r=${IP[$1]}:\$p '\$2 == r && \$4 > 0 { f = 1 } END { exit !f }' || ok=0; done; [ \$ok = 1 ]"
}
# wait_lb COND TIMEOUT_S: COND (shell, in lb) true within TIMEOUT_S seconds of the
# director's own clock (host.sh's idle bound watches the guest as well).
wait_lb() {
  "$H" exec lb "for i in \$(seq $(($2 * 2))); do { $1; } && exit 0; sleep 0.5; done; exit 1"
}
for rs in rs1 rs2; do
  wait_lb "$(in_all_cmd $rs)" 300 || die "$rs never entered every pool: $("$H" exec lb 'ipvsadm -Ln'; "$H" exec $rs 'journalctl -u poolkeeper -n 30 --no-pager')"
done
log "the director has both realservers in every service"

# The director's clock (CLOCK_BOOTTIME, the driver's and clients' clock) now, from
# the control channel's heartbeat (its content is the guest's uptime, its mtime ours).
lb_now() {
  local hb=$HOSTS_DIR/lb/out/hb u=""
  # Read while the guest rewrites it, the file can be empty: read again.
  local i
  for i in $(seq 50); do u=$(cat "$hb"); [ -n "$u" ] && break; sleep 0.1; done
  [ -n "$u" ] || die "lb: no heartbeat"
  awk -v u="$u" -v m="$(stat -c %.9Y "$hb")" -v n="$(date +%s.%N)" 'BEGIN { printf "%.3f", u + n - m }'
}

# clients_start: the HTTP and rsync client loops (tests/vm/clients.py) in lb's client
# namespace; clients_stop TAG: stop them, their summary into lb's out/clients-TAG.json.
CL_N=""
clients_start() {
  CL_N=$(( $(date +%s%N) / 1000000 ))
  "$H" exec lb "rm -rf /run/cl; mkdir -p /run/cl/$CL_N
    systemd-run --unit=clients-$CL_N ip netns exec cl python3 $VM/clients.py --vip $VIP --dir /run/cl/$CL_N \
      --seconds 1800 --stop /run/cl/stop --src $SRCS --data $HOSTS_DIR/shared/data.bin --only $CLIENTS
    for i in \$(seq 120); do [ -s /run/cl/$CL_N/started ] && break; sleep 0.5; done
    [ -s /run/cl/$CL_N/started ]" || die "clients did not start"
  sleep 3
}
clients_stop() {
  "$H" exec lb "touch /run/cl/stop; for i in \$(seq 120); do [ -s /run/cl/$CL_N/summary.json ] && break; sleep 0.5; done
    cp /run/cl/$CL_N/summary.json /vm-out/clients-$1.json; cp /run/cl/$CL_N/events.log /vm-out/clients-$1.events" \
    || die "no client summary"
}

FAILED=""
TABLES=""
for rs in "${ROLL[@]}"; do
  t_start=$(date +%s.%N)
  clients_start
  boots=$("$H" boots $rs)
  t_depool=$(lb_now)
  "$H" send $rs "poolctl depool --until-boot --reason reboot > /vm-out/depool.out 2>&1 && systemctl reboot"
  "$H" wait $rs $((boots + 1)) >/dev/null || die "$rs did not boot again"
  t_booted=$(lb_now)
  reboot_s=$(since "$t_start")
  wait_lb "$(in_all_cmd $rs)" 300 || die "$rs did not come back into every service"
  t_back=$(lb_now)
  clients_stop "$rs"
  "$H" exec $rs "journalctl -b -1 -u poolkeeper -o short-monotonic --no-pager" > "$HOSTS_DIR/$rs.journal-before-reboot" || true
  "$H" exec $rs "poolctl status" > "$HOSTS_DIR/$rs.status-after-reboot" 2>&1 || true
  out=$(python3 "$HERE/table.py" "$rs" "$t_depool" "$t_booted" "$t_back" "$reboot_s" \
    "$HOSTS_DIR/lb/out/clients-$rs.json" "$HOSTS_DIR/lb/out/lbdriver.log" \
    "$HOSTS_DIR/$rs.journal-before-reboot" "$HOSTS_DIR/$rs/out/depool.out" "$HOSTS_DIR/$rs.status-after-reboot") \
    || FAILED="$FAILED; $rs"
  echo "$out"
  TABLES="$TABLES$out"$'\n'
  log "rolling reboot of $rs took $(since "$t_start") s"
done
# --- more scenarios in the same boots -------------------------------------------------
# key_indexes RS: the modifiedIndex of RS's conftool keys (nfs, http, rsync), from lb.
key_indexes() {
  "$H" exec lb "for s in nfs http rsync; do curl -sf --max-time 5 http://127.0.0.1:2379/v2/keys$PREFIX/\$s/$1.example.org |
    python3 -c 'import json, sys; print(json.load(sys.stdin)[\"node\"][\"modifiedIndex\"])'; done" | tr '\n' ' '
}
# health_ok RS: the agent answers 200 on /health/S for every service (in RS).
health_ok() {
  "$H" exec $1 "for i in \$(seq 240); do curl -sf --max-time 2 -o /dev/null http://127.0.0.1:9473/health/http &&
    curl -sf --max-time 2 -o /dev/null http://127.0.0.1:9473/health/rsync &&
    curl -sf --max-time 2 -o /dev/null http://127.0.0.1:9473/health/nfs && exit 0; sleep 0.5; done; exit 1"
}
stops_of() { "$H" exec $1 "journalctl -b -u poolkeeper -o cat --no-pager | grep 'stopping:' || true"; }
# count_of KEY OUT: the number after KEY= in events.py's last line.
count_of() { sed -n "s/^counts.* $1=\([0-9]*\).*/\1/p" <<< "$2"; }
# The director's changes are read from lbdriver's log on the control share, not polled
# in the guest: a change that lasts seconds is not missed between two polls.
# event_at RS SVC STATE AFTER: the director's clock at its first "ipvs SVC RS STATE"
# after AFTER, or nothing.
event_at() {
  awk -v s="$2" -v h="$1" -v want="$3" -v t="$4" \
    '$1 > t && $2 == "ipvs" && $3 == s && $4 == h && $5 == want { print $1; exit }' "$HOSTS_DIR/lb/out/lbdriver.log"
}
# wait_event RS SVC STATE AFTER TIMEOUT_S: until event_at finds one (TIMEOUT_S of
# half-second polls of the file); prints its time.
wait_event() {
  local i t
  for i in $(seq $(($5 * 2))); do
    t=$(event_at "$1" "$2" "$3" "$4")
    [ -n "$t" ] && { echo "$t"; return 0; }
    sleep 0.5
  done
  return 1
}
# offset_of EVENTS WHAT: "+S" of the first director line matching WHAT ("http out").
offset_of() { grep -o "$2 +[0-9.]*" <<< "$1" | head -n 1 | sed 's/.* //'; }

verdict() { if [ -n "$1" ]; then echo "  verdict: BROKEN: ${1#; }"; else echo "  verdict: ok"; fi; }

# keep: the agent restarted, reloaded and upgraded (dpkg -i of a higher version) under
# running clients: no director change, no conftool write, no 503 seen by ProxyFetch.
scenario_keep() {
  local rs=rs1 t0 t1 i0 i1 s0 s1 out ver2 work broken=""
  work=$HOSTS_DIR/upgrade
  rm -rf "$work"; mkdir -p "$work"
  dpkg-deb -R "$DEB" "$work/tree"
  ver2="$(dpkg-deb -f "$DEB" Version)+hosts1"
  sed -i "s/^Version: .*/Version: $ver2/" "$work/tree/DEBIAN/control"
  dpkg-deb -b -Zgzip "$work/tree" "$work/poolkeeper_${ver2}_amd64.deb" >/dev/null
  clients_start
  i0=$(key_indexes $rs); s0=$(stops_of $rs | wc -l)
  t0=$(lb_now)
  "$H" exec $rs "systemctl restart poolkeeper" || broken+="; restart failed"
  health_ok $rs || broken+="; not healthy after the restart"
  sleep 5
  "$H" exec $rs "systemctl reload poolkeeper" || broken+="; reload failed"
  health_ok $rs || broken+="; not healthy after the reload"
  sleep 5
  "$H" exec $rs "sync; echo 3 > /proc/sys/vm/drop_caches; dpkg -i $work/poolkeeper_${ver2}_amd64.deb" \
    > "$HOSTS_DIR/$rs.upgrade.log" 2>&1 || broken+="; dpkg -i of $ver2 failed: $(tail -n 5 "$HOSTS_DIR/$rs.upgrade.log")"
  health_ok $rs || broken+="; not healthy after the upgrade"
  [ "$("$H" exec $rs "dpkg-query -W -f='\${Version}' poolkeeper")" = "$ver2" ] || broken+="; the upgrade did not install $ver2"
  sleep 8   # ProxyFetch's next rounds and the conftool sync see the agent as it is now
  t1=$(lb_now)
  clients_stop keep
  i1=$(key_indexes $rs)
  s1=$(stops_of $rs)
  out=$(python3 "$HERE/events.py" "$HOSTS_DIR/lb/out/lbdriver.log" $rs "$t0" "$t1" "$HOSTS_DIR/lb/out/clients-keep.json")
  echo "=== agent restart, reload, upgrade to $ver2 on $rs (systemctl restart, systemctl reload, dpkg -i) ==="
  grep -v '^counts' <<< "$out"
  echo "  conftool keys' modifiedIndex (http rsync): before $i0, after $i1"
  echo "  the agent's restarts, from exit to serving the held socket again (journal):"
  "$H" exec $rs "journalctl -b -u poolkeeper -o short-unix --no-pager | awk '/msg=exited/ { t = \$1 } /serving HTTP on the socket/ && t { printf \"    %.2f s\\n\", \$1 - t; t = 0 }'" | tail -n 2
  echo "  agent's journal at its stops in this scenario:"
  tail -n +$((s0 + 1)) <<< "$s1" | sed 's/^/    /'
  for k in ipvs keys fetch_down empty failed; do
    [ "$(count_of $k "$out")" = 0 ] || broken+="; $k=$(count_of $k "$out")"
  done
  [ "$i0" = "$i1" ] || broken+="; a conftool key was written"
  [ "$(tail -n +$((s0 + 1)) <<< "$s1" | grep -c 'pool state kept')" -ge 2 ] || broken+="; the journal does not say keep at the restart and the upgrade"
  tail -n +$((s0 + 1)) <<< "$s1" | grep -q 'draining' && broken+="; the agent drained at a restart"
  verdict "$broken"
  [ -z "$broken" ] || FAILED="$FAILED; keep:$broken"
}

# kill: nginx, then the rsync daemon, killed with SIGKILL under systemd on rs1; each
# service out of the director and back (the units' Restart=on-failure brings them up).
# Then nfs-server stopped (kernel nfsd has no process to kill) and started again once
# NFS is out.
scenario_kill() {
  local rs=rs1 unit svc t0 t_o t1 out broken="" back how
  for unit in nginx rsync nfs-server; do
    case $unit in nginx) svc=http ;; rsync) svc=rsync ;; nfs-server) svc=nfs ;; esac
    how="systemctl kill -s KILL"; [ $unit = nfs-server ] && how="systemctl stop"
    clients_start
    t0=$(lb_now)
    "$H" exec $rs "$how $unit.service" || broken+="; $how $unit failed"
    if t_o=$(wait_event $rs $svc out "$t0" 120); then
      [ $unit = nfs-server ] && { "$H" exec $rs "systemctl start nfs-server.service" || broken+="; nfs-server did not start"; }
      wait_event $rs $svc in "$t_o" 300 >/dev/null || broken+="; $rs not back in $svc after $how $unit"
    else
      broken+="; $rs not out of $svc after $how $unit"
      [ $unit = nfs-server ] && "$H" exec $rs "systemctl start nfs-server.service"
    fi
    wait_lb "$(in_all_cmd $rs)" 300 || broken+="; $rs not in every service after $how $unit"
    t1=$(lb_now)
    back=$("$H" exec $rs "systemctl show -p NRestarts --value $unit.service")
    clients_stop kill-$unit
    out=$(python3 "$HERE/events.py" "$HOSTS_DIR/lb/out/lbdriver.log" $rs "$t0" "$t1" "$HOSTS_DIR/lb/out/clients-kill-$unit.json")
    if [ $unit = nfs-server ]; then
      echo "=== nfs-server stopped on $rs (systemctl stop; started again once NFS was out) ==="
    else
      echo "=== $unit killed on $rs (systemctl kill -s KILL; Restart=on-failure, RestartSec=3s; restarts so far: $back) ==="
    fi
    grep -v '^counts' <<< "$out"
    [ "$(count_of empty "$out")" = 0 ] || broken+="; a pool was empty ($unit)"
  done
  verdict "$broken"
  [ -z "$broken" ] || FAILED="$FAILED; kill:$broken"
}

# powercut: rs1's qemu killed (no shutdown): HTTP leaves by ProxyFetch, NFS and rsync
# through rs2's agent once rs1's liveness key expired and it stayed silent for peer_dead_after;
# then rs1 powered on again comes back with no operator action.
scenario_powercut() {
  local rs=rs1 t0 t_on t1 out broken="" ttl pda bound http_off rsync_off nfs_off
  ttl=$TTL_S pda=$PDA_S
  # The key expires within ttl (refreshed every third of it); the peer then waits pda
  # and acts at its next sync; 60 s for a busy emulated machine's syncs and ProxyFetch.
  bound=$((ttl + pda + 60))
  clients_start
  t0=$(lb_now)
  "$H" kill $rs
  wait_event $rs http out "$t0" $((bound + 30)) >/dev/null && wait_event $rs rsync out "$t0" $((bound + 30)) >/dev/null &&
    wait_event $rs nfs out "$t0" $((bound + 30)) >/dev/null ||
    broken+="; $rs not out of every service within $((bound + 30)) s"
  sleep 5
  "$H" start $rs --ip "${IP[$rs]}/24" --connect $PORT --disk 1024 --dr-vip $VIP --wants nginx.service,rsync.service,nfs-server.service
  t_on=$(lb_now)
  "$H" wait $rs 1 >/dev/null || die "$rs did not boot after the power cut"
  wait_lb "$(in_all_cmd $rs)" 300 || broken+="; $rs not back in every service after the power cut"
  t1=$(lb_now)
  clients_stop powercut
  out=$(python3 "$HERE/events.py" "$HOSTS_DIR/lb/out/lbdriver.log" $rs "$t0" "$t1" "$HOSTS_DIR/lb/out/clients-powercut.json")
  http_off=$(offset_of "$out" "http out"); rsync_off=$(offset_of "$out" "rsync out"); nfs_off=$(offset_of "$out" "nfs out")
  echo "=== power cut of $rs (its qemu killed; liveness_ttl ${ttl}s, peer_dead_after ${pda}s) ==="
  grep -v '^counts' <<< "$out"
  echo "  out: http ${http_off:-?} s (ProxyFetch), nfs ${nfs_off:-?} s and rsync ${rsync_off:-?} s (bound ${bound} s); powered on at +$(awk -v a="$t0" -v b="$t_on" 'BEGIN { printf "%.1f", b - a }') s, back in every service at +$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
  "$H" exec rs2 "journalctl -u poolkeeper -o cat --no-pager | grep 'took a dead peer out' | tail -n 2" | sed 's/^/  rs2: /'
  [ -n "$http_off" ] && [ -n "$rsync_off" ] && [ -n "$nfs_off" ] || broken+="; not out of every service"
  [ -n "$rsync_off" ] && awk -v o="${rsync_off#+}" -v b="$bound" 'BEGIN { exit !(o > b) }' && broken+="; rsync out after ${rsync_off#+} s, over ${bound} s"
  [ -n "$nfs_off" ] && awk -v o="${nfs_off#+}" -v b="$bound" 'BEGIN { exit !(o > b) }' && broken+="; nfs out after ${nfs_off#+} s, over ${bound} s"
  [ "$(count_of empty "$out")" = 0 ] || broken+="; a pool was empty"
  verdict "$broken"
  [ -z "$broken" ] || FAILED="$FAILED; powercut:$broken"
}

for m in $MORE; do
  case $m in
    keep) scenario_keep ;;
    kill) scenario_kill ;;
    powercut) scenario_powercut ;;
    *) die "unknown scenario $m (HOSTS_MORE: keep kill powercut)" ;;
  esac
  log "scenario $m done"
done

for h in lb rs1 rs2; do log "qemu RSS $h: $("$H" rss $h) KiB"; done
log "scenario wall time $(since "$T0") s"
[ -z "$FAILED" ] || die "the rolling reboot broke its promise:${FAILED#;}"
log "PASS"
