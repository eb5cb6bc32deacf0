#!/bin/bash
# Separate hosts as qemu VMs, each booting Debian 12's own kernel with systemd as PID 1.
#
#   host.sh setup                      kernel, udev layer and initramfs into the cache
#   host.sh start NAME [--ip A/LEN] [--disk MiB] [--hub P1,P2..] [--connect P]
#                      [--wants U1,U2..] [--dr-vip ADDR] [--mem MiB]
#        --wants: units enabled (multi-user.target) on the host's first boot
#        --dr-vip: an LVS-DR realserver's VIP, on lo with ARP for it ignored
#   host.sh wait NAME N                until NAME has reached multi-user.target N times
#   host.sh exec NAME CMD              run CMD (bash, as root) in NAME; its output and
#                                      status are the command's
#   host.sh send NAME CMD              start CMD in NAME and return (for `systemctl
#                                      reboot`, which ends the control channel)
#   host.sh boots NAME                 how many times NAME has reached multi-user.target
#   host.sh kill NAME                  power NAME off (its qemu killed, by pid file)
#   host.sh killall                    kill every qemu this state directory started
#   host.sh rss NAME                   the qemu's resident set (KiB)
#   host.sh package                    the path of the poolkeeper .deb to install: in
#                                      $POOLKEEPER_DEB_DIR if set, else in $HOSTS_DEB_DIR
#                                      (ctest's, from readme_commands_test), else built into
#                                      HOSTS_DIR/deb (DEB_BUILD_OPTIONS default: nocheck)
#
# Each host: the host machine's root read-only over 9p under an overlay, Debian's udev
# package (the container has none) as a read-only layer above it, and the overlay's
# upper layer on a tmpfs, or with --disk on an ext4 image of its own that outlives
# reboots and qemu restarts (so a package installed with dpkg -i stays). The initramfs
# (tests/hosts/initramfs-init) writes the guest's identity and tests/hosts/guest/ into
# the overlay and switch_roots to /lib/systemd/systemd, which boots multi-user.target.
# qemu runs without -no-reboot: `systemctl reboot` in a guest really reboots it.
#
# Network: qemu -netdev socket over TCP on 127.0.0.1 only. The first host (--hub) has a
# qemu hub with one listening socket per port; the others --connect to one of them.
# Guests use 192.0.2.0/24 only.
#
# Waits follow progress: a wait fails when the guest showed no sign of life (console
# output, the control channel's heartbeat, the command's output) for HOSTS_IDLE seconds
# (180), or after HOSTS_CAP seconds (1800) in all, or at once when its qemu is gone.
#
# Environment: HOSTS_DIR (state, default build/hosts), HOSTS_CACHE (default
# build/vm-cache, shared with tests/vm), HOSTS_MEM (1024 MiB).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOSTS_DIR=${HOSTS_DIR:-$ROOT/build/hosts}
HOSTS_CACHE=${HOSTS_CACHE:-$ROOT/build/vm-cache}
IDLE=${HOSTS_IDLE:-180}
CAP=${HOSTS_CAP:-1800}

fail() { echo "host.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
older() { awk -v a="$1" -v b="$(now)" -v t="$2" 'BEGIN { exit !(b - a > t) }'; }

setup() {
  mkdir -p "$HOSTS_CACHE"
  . "$ROOT/tests/vm/kernel.sh"
  vm_kernel "$HOSTS_CACHE"
  echo "$KVER" > "$HOSTS_CACHE/hosts-kver"
  echo "$VMLINUZ" > "$HOSTS_CACHE/hosts-vmlinuz"
  echo "$MODDIR" > "$HOSTS_CACHE/hosts-moddir"
  # udev of the same version as the host's libudev1, extracted, its /lib and /bin
  # moved under /usr (the host's /lib is a symlink an overlay layer must not shadow).
  local udev="$HOSTS_CACHE/udev" ver
  ver=$(dpkg-query -W -f='${Version}' libudev1)
  if [ "$(cat "$udev/.version" 2>/dev/null)" != "$ver" ]; then
    echo "host.sh: fetching udev $ver"
    rm -rf "$udev" "$HOSTS_CACHE/udev-deb"
    mkdir -p "$HOSTS_CACHE/udev-deb"
    (cd "$HOSTS_CACHE/udev-deb" && apt-get download -q -o APT::Sandbox::User=root "udev=$ver" >/dev/null) \
      || fail "apt-get download udev=$ver failed"
    dpkg-deb -x "$HOSTS_CACHE"/udev-deb/udev_*.deb "$udev"
    local d
    for d in bin sbin lib; do
      if [ -d "$udev/$d" ] && [ ! -L "$udev/$d" ]; then
        mkdir -p "$udev/usr/$d"
        cp -a "$udev/$d/." "$udev/usr/$d/"
        rm -rf "${udev:?}/$d"
      fi
    done
    rm -rf "$HOSTS_CACHE/udev-deb"
    echo "$ver" > "$udev/.version"
  fi
  # The initramfs: busybox, the modules to reach the root (virtio, 9p, overlay, the
  # persistent disk's ext4) in dependency order, and initramfs-init.
  local initrd="$HOSTS_CACHE/hosts-initramfs-$KVER.cpio.gz"
  if [ ! -f "$initrd" ] || [ "$HERE/initramfs-init" -nt "$initrd" ]; then
    local work m
    work=$(mktemp -d)
    mkdir -p "$work"/{bin,dev,proc,sys,modules}
    cp /bin/busybox "$work/bin/busybox"
    cp "$HERE/initramfs-init" "$work/init"
    chmod 755 "$work/init"
    for m in virtio_pci 9pnet_virtio 9p overlay virtio_blk ext4; do
      modprobe -d "${MODDIR%/lib/modules/*}" -S "$KVER" --show-depends "$m"
    done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r f; do
      cp "$f" "$work/modules/"
      basename "$f" >> "$work/modules/order"
    done
    (cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd.tmp"
    mv "$initrd.tmp" "$initrd"
    rm -rf "$work"
  fi
  echo "$initrd" > "$HOSTS_CACHE/hosts-initrd"
}

pid_of() { cat "$HOSTS_DIR/$1/qemu.pid" 2>/dev/null; }
running() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# A guest's sign of life: console output, the control channel's heartbeat, and any
# extra file given.
life() {
  local d=$HOSTS_DIR/$1
  shift
  stat -c '%s %Y' "$d/console.log" "$d/out/hb" "$@" 2>/dev/null | tr '\n' ' ' || true
}

# wait_until NAME WHAT CMD...: until CMD succeeds; fails when NAME's qemu is gone, when
# the guest shows no progress for IDLE seconds, or after CAP seconds.
wait_until() {
  local name=$1 what=$2
  shift 2
  local t0 seen tl l
  t0=$(now); tl=$t0; seen=$(life "$name")
  until "$@"; do
    running "$name" || { tail -n 30 "$HOSTS_DIR/$name/console.log" >&2; fail "$name: qemu is gone ($what)"; }
    l=$(life "$name")
    if [ "$l" != "$seen" ]; then seen=$l; tl=$(now); fi
    older "$tl" "$IDLE" && { tail -n 30 "$HOSTS_DIR/$name/console.log" >&2; fail "$name: no progress for $IDLE s ($what)"; }
    older "$t0" "$CAP" && fail "$name: not done after $CAP s ($what)"
    sleep 0.5
  done
}

start() {
  local name=$1
  shift
  local ip="" disk=0 hub="" connect="" wants="" vip="" mem=${HOSTS_MEM:-1024}
  while [ $# -gt 0 ]; do
    case $1 in
      --ip) ip=$2 ;; --disk) disk=$2 ;; --hub) hub=$2 ;; --connect) connect=$2 ;;
      --wants) wants=$2 ;; --dr-vip) vip=$2 ;; --mem) mem=$2 ;;
      *) fail "start: unknown option $1" ;;
    esac
    shift 2
  done
  [ -s "$HOSTS_CACHE/hosts-initrd" ] || setup
  running "$name" && fail "$name is running already"
  local d=$HOSTS_DIR/$name
  mkdir -p "$d"
  rm -rf "$d/out"
  mkdir -p "$d/out/ctl"
  : > "$d/console.log"
  local extra=() mac
  mac=$(printf '%s' "$name" | md5sum | sed 's/^\(..\)\(..\)\(..\).*/52:54:00:\1:\2:\3/')
  if [ "$disk" != 0 ]; then
    if [ ! -f "$d/disk.img" ]; then
      truncate -s "${disk}M" "$d/disk.img"
      mkfs.ext4 -q -L hosts-upper "$d/disk.img"
    fi
    extra+=(-drive "file=$d/disk.img,if=virtio,format=raw,cache=writeback")
  fi
  if [ -n "$hub" ]; then
    extra+=(-netdev hubport,id=hp,hubid=0 -device "virtio-net-pci,netdev=hp,mac=$mac")
    local j=0 p
    for p in ${hub//,/ }; do
      extra+=(-netdev "socket,id=hs$j,listen=127.0.0.1:$p" -netdev "hubport,id=hpp$j,hubid=0,netdev=hs$j")
      j=$((j + 1))
    done
  elif [ -n "$connect" ]; then
    extra+=(-netdev "socket,id=n0,connect=127.0.0.1:$connect" -device "virtio-net-pci,netdev=n0,mac=$mac")
  fi
  local args="console=ttyS0 loglevel=4 net.ifnames=0 systemd.unit=multi-user.target systemd.show_status=yes"
  args="$args hosts.name=$name hosts.guest=$HERE/guest hosts.moddir=$(cat "$HOSTS_CACHE/hosts-moddir")"
  args="$args hosts.disk=$([ "$disk" != 0 ] && echo 1 || echo 0)"
  [ -n "$ip" ] && args="$args hosts.ip=$ip"
  [ -n "$wants" ] && args="$args hosts.wants=$wants"
  [ -n "$vip" ] && args="$args hosts.vip=$vip"
  now > "$d/started"
  # No -no-reboot: a guest's reboot resets the machine and qemu boots the kernel again.
  # tb-size: 256 MiB of translated code instead of the default's 1 GiB per VM.
  setsid qemu-system-x86_64 -accel tcg,thread=multi,tb-size=256 -cpu max -smp 1 -m "$mem" \
    -nodefaults -no-user-config -display none -serial "file:$d/console.log" \
    -kernel "$(cat "$HOSTS_CACHE/hosts-vmlinuz")" -initrd "$(cat "$HOSTS_CACHE/hosts-initrd")" \
    -append "$args" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$HOSTS_CACHE/udev,mount_tag=udev,security_model=none,readonly=on" \
    -virtfs "local,path=$d/out,mount_tag=out,security_model=none,multidevs=remap" \
    "${extra[@]}" </dev/null >"$d/qemu.log" 2>&1 &
  echo $! > "$d/qemu.pid"
}

# Boots reached: one line per boot in out/ready ("<epoch> <boot_id> <uptime>").
boots() { cat "$HOSTS_DIR/$1/out/ready" 2>/dev/null | wc -l; }
reached() { [ "$(boots "$1")" -ge "$2" ]; }

send_cmd() {
  local d=$HOSTS_DIR/$1/out/ctl
  id=$(date +%s%N).$$
  printf '%s\n' "$2" > "$d/$id.tmp"
  mv "$d/$id.tmp" "$d/$id.cmd"
}

run_cmd() {
  local name=$1 cmd=$2 d=$HOSTS_DIR/$1/out/ctl id
  send_cmd "$name" "$cmd"
  wait_until "$name" "exec: ${cmd:0:60}" test -e "$d/$id.rc"
  cat "$d/$id.out"
  local rc
  rc=$(cat "$d/$id.rc")
  rm -f "$d/$id".*
  return "$rc"
}

kill_host() {
  local name=$1 p
  p=$(pid_of "$name") || return 0
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    # Only a qemu we started: the pid's command line names this host's state directory.
    if tr '\0' ' ' < "/proc/$p/cmdline" | grep -qF "path=$HOSTS_DIR/$name/out,"; then
      kill "$p"
      local i
      for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$p" 2>/dev/null || true
    fi
  fi
  rm -f "$HOSTS_DIR/$name/qemu.pid"
}

package() {
  local dir=${POOLKEEPER_DEB_DIR:-${HOSTS_DEB_DIR:-}} deb
  if [ -z "$dir" ]; then
    dir=$HOSTS_DIR/deb
    echo "host.sh: building the package (deploy/build-deb.sh $dir)" >&2
    rm -rf "$dir"
    mkdir -p "$HOSTS_DIR"
    # Without the package's own unit tests (nocheck) unless told otherwise: the suite
    # runs them anyway.
    DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck} "$ROOT/deploy/build-deb.sh" "$dir" > "$HOSTS_DIR.build-deb.log" 2>&1 \
      || fail "deploy/build-deb.sh failed: $(tail -n 20 "$HOSTS_DIR.build-deb.log")"
  fi
  deb=$(ls "$dir"/poolkeeper_*.deb 2>/dev/null | grep -v dbgsym | head -n 1 || true)
  [ -n "$deb" ] || fail "no poolkeeper_*.deb in $dir"
  # Every package of the tree has the same version: say so when this one predates the
  # tree's last commit (ctest -FA, or a package left from an earlier run).
  local head
  head=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
  [ "$(stat -c %Y "$deb")" -ge "$head" ] ||
    echo "host.sh: warning: $deb was built before the tree's last commit ($(git -C "$ROOT" log -1 --format='%h %ci')): it may lack what the tests expect" >&2
  echo "$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")"
}

cmd=${1:-}
shift || true
case $cmd in
  setup) setup ;;
  start) start "$@" ;;
  wait) wait_until "$1" "boot $2" reached "$1" "$2"; sed -n "${2}p" "$HOSTS_DIR/$1/out/ready" ;;
  exec) run_cmd "$1" "$2" ;;
  send) send_cmd "$1" "$2" ;;
  boots) boots "$1" ;;
  kill) kill_host "$1" ;;
  killall)
    for f in "$HOSTS_DIR"/*/qemu.pid; do
      [ -e "$f" ] || continue
      kill_host "$(basename "$(dirname "$f")")"
    done ;;
  rss) ps -o rss= -p "$(pid_of "$1")" | tr -d ' ' ;;
  package) package ;;
  *) sed -n '2,19p' "$0" >&2; exit 2 ;;
esac
