#!/bin/bash
# Real hosts: a rolling reboot by the README's procedure, with `systemctl reboot`.
#
#   tests/hosts/rolling-reboot.sh [HOSTS...]      (default: rs1; e.g. "rs1 rs2")
#
# Three qemu VMs booting systemd (tests/hosts/host.sh), on 192.0.2.0/24:
#   lb  (.1)   the director: etcd 3.4 (--enable-v2) with the conftool keys
#              /conftool/v1/pools/test/dumps/{http,rsync}/rs{1,2}.example.org; IPVS DR
#              for 198.51.100.10 ports 80 and 873 (-s mh with mh-fallback) driven by
#              tests/vm/lbdriver.py as PyBal drives it (quiesce: weight 0 on the way
#              out); the clients (tests/vm/clients.py: curl and rsync loops over eight
#              source addresses) in a network namespace bridged onto its link.
#   rs1 (.11), rs2 (.12)  realservers with a persistent disk each: the VIP on lo,
#              nginx and the rsync daemon under their own units, and poolkeeper
#              installed with `dpkg -i` from the package deploy/build-deb.sh builds,
#              its shipped units unmodified. The test writes only
#              /etc/poolkeeper/poolkeeper.toml and the servers' configs and files.
# The package: the .deb in $POOLKEEPER_DEB_DIR if set (built once, e.g. by CI), else
# built here into build/hosts/deb (DEB_BUILD_OPTIONS default: nocheck).
#
# For each host named: `poolctl depool --until-boot --reason reboot && systemctl
# reboot`, then until the host is back in every service. One table per reboot: the
# clients' requests and failures, when the director took the host out and put it back,
# the boot, and what the agent's journal said about its stop. Fails when an HTTP or
# rsync request failed, the journal does not say the agent drained because the host
# was going down, the host does not come back into every service, the --until-boot
# intent is not cleared by the new boot, or a service's pool was ever empty.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export HOSTS_DIR=${HOSTS_DIR:-$ROOT/build/hosts}
H="$HERE/host.sh"
VM="$ROOT/tests/vm"
ROLL=("${@:-rs1}")
VIP=198.51.100.10
PREFIX=/conftool/v1/pools/test/dumps
SRCS=192.0.2.100,192.0.2.101,192.0.2.102,192.0.2.103,192.0.2.104,192.0.2.105,192.0.2.106,192.0.2.107
# Two free loopback ports for the hub's listening sockets (qemu cannot bind a busy one).
for _ in $(seq 50); do
  PORT=$((30000 + RANDOM % 20000))
  ss -Htan "( sport = :$PORT or sport = :$((PORT + 1)) )" | grep -q . || break
done
declare -A IP=([rs1]=192.0.2.11 [rs2]=192.0.2.12)

T0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[%6s s] %s\n' "$(since "$T0")" "$*"; }
die() { log "FAIL: $*"; exit 1; }
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
    --wants nginx.service,rsync.service
done
declare -A BOOT
for h in lb rs1 rs2; do
  "$H" wait $h 1 >/dev/null
  BOOT[$h]=$(awk -v a="$(cat "$HOSTS_DIR/$h/started")" '{ printf "%.1f", $1 - a; exit }' "$HOSTS_DIR/$h/out/ready")
done
log "booted (qemu start to multi-user.target): lb ${BOOT[lb]} s, rs1 ${BOOT[rs1]} s, rs2 ${BOOT[rs2]} s"

# --- the director: etcd, the keys, IPVS, the driver ---------------------------------
"$H" exec lb "set -e
  systemd-run --unit=hosts-etcd etcd --name hosts --data-dir /var/lib/etcd-hosts \
    --listen-client-urls http://192.0.2.1:2379,http://127.0.0.1:2379 --advertise-client-urls http://192.0.2.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster hosts=http://127.0.0.1:2380 --enable-v2=true --log-level warn
  for i in \$(seq 120); do curl -sf --max-time 2 -o /dev/null http://127.0.0.1:2379/v2/keys/ && break; sleep 0.5; done
  for s in http rsync; do for rs in rs1 rs2; do
    curl -sf --max-time 5 -o /dev/null -X PUT http://127.0.0.1:2379/v2/keys$PREFIX/\$s/\$rs.example.org \
      --data-urlencode 'value={\"pooled\": \"yes\", \"weight\": 10}'
  done; done
  modprobe -a ip_vs ip_vs_mh
  ip addr add $VIP/32 dev lo
  sysctl -qw net.ipv4.ip_forward=1
  for p in 80 873; do ipvsadm -A -t $VIP:\$p -s mh -b mh-fallback; done
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
  systemd-run --unit=hosts-lbdriver python3 $VM/lbdriver.py --vip $VIP --prefix $PREFIX \
    --etcd http://127.0.0.1:2379 --log /vm-out/lbdriver.log --seconds 3600 --depool quiesce \
    rs1=192.0.2.11 rs2=192.0.2.12
" || die "director setup"
log "director up: etcd, keys, IPVS, lbdriver"

# --- the package --------------------------------------------------------------------
DEB=$("$H" package) || die "no package"
log "package $DEB"

# --- the realservers ----------------------------------------------------------------
for rs in rs1 rs2; do
  "$H" exec $rs "set -e
    sh $HERE/servers.sh
    cp $HOSTS_DIR/shared/data.bin /srv/dumps/data.bin
    chmod 644 /srv/dumps/data.bin
    systemctl restart nginx
    systemctl start rsync
    # The machine's root is shared (9p, cached): forget what this guest saw of it, so
    # dpkg judges the files as they are now.
    sync; echo 3 > /proc/sys/vm/drop_caches
    dpkg -i $DEB
    cat > /etc/poolkeeper/poolkeeper.toml <<'EOF'
[agent]
listen = \"127.0.0.1:9473\"
hostname = \"$rs.example.org\"

[services.http]
checks = [\"web\"]
port = 80

[services.rsync]
checks = [\"mirror\"]
port = 873

[conftool]
endpoints = [\"http://192.0.2.1:2379\"]
prefix = \"$PREFIX\"

# Under software emulation on a busy machine an rsync daemon's greeting can take
# over a second.
[checks.web]
kind = \"http\"
url = \"http://127.0.0.1/canary.txt\"
host = \"dumps.example.org\"
interval = \"2s\"
timeout = \"2s\"
fall = 3

[checks.mirror]
kind = \"rsync\"
address = \"127.0.0.1:873\"
module = \"dumps\"
path = \"canary.txt\"
interval = \"2s\"
timeout = \"2s\"
fall = 3
EOF
    systemctl start poolkeeper.socket poolkeeper.service || { journalctl -u poolkeeper -n 20 --no-pager; exit 1; }
    systemctl is-enabled poolkeeper.service poolkeeper.socket
  " > "$HOSTS_DIR/$rs.setup.log" 2>&1 || die "$rs setup: $(tail -n 20 "$HOSTS_DIR/$rs.setup.log")"
done
log "realservers up: nginx, rsync, poolkeeper $(dpkg-deb -f "$DEB" Version)"

# in_all RS: RS is in every service with a weight above 0 (run in lb).
in_all_cmd() {
  echo "for p in 80 873; do ipvsadm -Ln -t $VIP:\$p | awk -v r=${IP[$1]}:\$p '\$2 == r && \$4 > 0 { f = 1 } END { exit !f }' || exit 1; done"
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

FAILED=""
TABLES=""
for rs in "${ROLL[@]}"; do
  t_start=$(date +%s.%N)
  n=$(( $(date +%s%N) / 1000000 ))
  "$H" exec lb "rm -rf /run/cl; mkdir -p /run/cl/$n
    systemd-run --unit=clients-$n ip netns exec cl python3 $VM/clients.py --vip $VIP --dir /run/cl/$n \
      --seconds 1800 --stop /run/cl/stop --src $SRCS --data $HOSTS_DIR/shared/data.bin --only http,rsync
    for i in \$(seq 120); do [ -s /run/cl/$n/started ] && break; sleep 0.5; done
    [ -s /run/cl/$n/started ]" || die "clients did not start"
  sleep 3
  boots=$("$H" boots $rs)
  t_depool=$(lb_now)
  "$H" send $rs "poolctl depool --until-boot --reason reboot > /vm-out/depool.out 2>&1 && systemctl reboot"
  "$H" wait $rs $((boots + 1)) >/dev/null || die "$rs did not boot again"
  t_booted=$(lb_now)
  reboot_s=$(since "$t_start")
  wait_lb "$(in_all_cmd $rs)" 300 || die "$rs did not come back into every service"
  t_back=$(lb_now)
  "$H" exec lb "touch /run/cl/stop; for i in \$(seq 120); do [ -s /run/cl/$n/summary.json ] && break; sleep 0.5; done
    cp /run/cl/$n/summary.json /vm-out/clients-$rs.json; cp /run/cl/$n/events.log /vm-out/clients-$rs.events" \
    || die "no client summary"
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
for h in lb rs1 rs2; do log "qemu RSS $h: $("$H" rss $h) KiB"; done
log "scenario wall time $(since "$T0") s"
[ -z "$FAILED" ] || die "the rolling reboot broke its promise:${FAILED#;}"
log "PASS"
