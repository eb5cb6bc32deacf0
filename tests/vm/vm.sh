#!/bin/bash
# Boots Debian 12's own kernel in a qemu VM and runs one scenario script inside it, for
# tests that need what a container kernel lacks: kernel nfsd, the kernel NFS client, IPVS.
#
#   tests/vm/vm.sh [--cache DIR] [--out DIR] [--bound SECONDS] SCENARIO [ARGS...]
#
# SCENARIO is a script path (absolute, or relative to this directory); it runs in the
# guest as root with bash, with ARGS, and writes what it wants to keep under $VM_OUT.
# The guest sees the host's root read-only (9p) under a tmpfs overlay, so every host
# binary (ip, ipvsadm, rpc.nfsd, mount.nfs, build/agent/poolctl) is there; it has no
# NIC (scenarios build veth pairs and network namespaces). The kernel's modules are
# bound at /lib/modules/<version>, so modprobe works.
#
# What it does on the host:
#   1. installs the host packages it uses (qemu-system-x86, busybox-static, kmod, cpio,
#      and for the guest nfs-kernel-server, nfs-common, ipvsadm, and etcd-server, nginx,
#      rsync, curl for stack.sh) when missing;
#   2. `apt-get download`s the kernel package linux-image-amd64 depends on (Debian 12's
#      current 6.1 kernel) into the cache (never installed on the host), extracts it
#      with dpkg-deb -x and runs depmod on the extracted tree;
#   3. builds an initramfs: busybox-static, the virtio/9p/overlay modules of that kernel
#      in dependency order, and tests/vm/initramfs-init;
#   4. boots qemu: KVM when /dev/kvm can boot the guest (found out once per host kernel
#      and remembered in the cache), software emulation (TCG) otherwise; the guest powers
#      off when the scenario ends. qemu is killed when the guest shows no progress (its
#      console and the scenario's output stay unchanged) for --idle seconds, or after
#      --bound seconds in all: a slow but advancing scenario is not hung;
#   5. prints the guest's console on failure and the timings (boot, scenario, total).
# Exit status: the scenario's, or 90 when the VM could not boot or got no result.
#
# Environment: VM_ACCEL=kvm|tcg forces the accelerator; VM_SMP (2), VM_MEM (1024, MiB).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE="$ROOT/build/vm-cache"
OUT=""
BOUND=1800
IDLE=240
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) CACHE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --bound) BOUND=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    -*) echo "vm.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: vm.sh [--cache DIR] [--out DIR] [--bound S] [--idle S] SCENARIO [ARGS...]" >&2; exit 2; }
SCENARIO=$1
shift
case "$SCENARIO" in /*) ;; *) SCENARIO="$HERE/$SCENARIO" ;; esac
[ -f "$SCENARIO" ] || { echo "vm.sh: no scenario $SCENARIO" >&2; exit 2; }
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
[ -n "$OUT" ] || OUT="$CACHE/out-$(basename "$SCENARIO" .sh)"

fail() { echo "vm.sh: $*" >&2; exit 90; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# --- 1. host packages ---------------------------------------------------------------
# The same list as deploy/packages.sh's VM line; installed here too so that the VM tests
# run from a plain checkout.
need=""
for p in qemu-system-x86 busybox-static kmod cpio nfs-kernel-server nfs-common ipvsadm \
         iproute2 util-linux python3 etcd-server nginx rsync curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  [ "$(id -u)" = 0 ] || fail "missing host packages:$need (run as root to install them)"
  echo "vm.sh: installing$need"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # The servers in these packages run only inside the VM, never on the host.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -q --no-install-recommends $need >/dev/null || fail "apt-get install$need failed"
  rm -f /usr/sbin/policy-rc.d
  trap - EXIT
fi
QEMU=$(command -v qemu-system-x86_64) || fail "qemu-system-x86_64 not found"

# --- 2. the kernel ------------------------------------------------------------------
. "$HERE/kernel.sh"
vm_kernel "$CACHE"

# --- 3. the initramfs ---------------------------------------------------------------
INITRD="$CACHE/initramfs-$KVER.cpio.gz"
if [ ! -f "$INITRD" ] || [ "$HERE/initramfs-init" -nt "$INITRD" ]; then
  work=$(mktemp -d)
  mkdir -p "$work"/{bin,dev,proc,sys,lower,up,newroot,modules}
  cp /bin/busybox "$work/bin/busybox"
  [ -x /bin/busybox ] || fail "no /bin/busybox (busybox-static)"
  cp "$HERE/initramfs-init" "$work/init"
  chmod 755 "$work/init"
  # Modules in load order: each one's dependencies (modules.dep) before it.
  declare -A seen=()
  order=()
  add_mod() {
    local rel=$1 deps d
    [ -n "${seen[$rel]:-}" ] && return
    seen[$rel]=1
    deps=$(awk -v m="$rel:" '$1 == m { $1 = ""; print }' "$MODDIR/modules.dep")
    for d in $deps; do add_mod "$d"; done
    order+=("$rel")
  }
  for m in virtio_pci 9pnet_virtio 9p overlay; do
    rel=$(awk -F: -v m="/$m.ko" 'index($1, m) && substr($1, length($1) - length(m) + 1) == m {print $1; exit}' "$MODDIR/modules.dep")
    [ -n "$rel" ] || fail "module $m not in $MODDIR/modules.dep"
    add_mod "$rel"
  done
  : > "$work/modules/order"
  for rel in "${order[@]}"; do
    cp "$MODDIR/$rel" "$work/modules/"
    basename "$rel" >> "$work/modules/order"
  done
  (cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$work"
fi

# --- 4. boot ------------------------------------------------------------------------
rm -rf "$OUT"
mkdir -p "$OUT"
CONSOLE="$OUT/console.log"
SMP=${VM_SMP:-2}
MEM=${VM_MEM:-1024}
# The kernel command line carries where things are on the shared root, and the scenario.
args_b64=$(printf '%s\n' "$@" | base64 -w0)
APPEND="console=ttyS0 panic=-1 loglevel=4 pk.kver=$KVER pk.moddir=$MODDIR pk.runner=$HERE/guest-run pk.scenario=$SCENARIO pk.args=$args_b64"

# progress: the sizes of what the guest writes as it advances (console, scenario output).
progress() { stat -c %s "$CONSOLE" "$OUT/scenario.log" 2>/dev/null | tr '\n' ' '; }

# boot ACCEL BOUND IDLE: runs the VM; returns qemu's status, or 124 when it was killed
# for IDLE seconds without progress or after BOUND seconds in all (why in $OUT/killed).
boot() {
  local accel=$1 bound=$2 idle=$3 cpu=max
  [ "$accel" = kvm ] && cpu=host
  rm -f "$OUT"/booted "$OUT"/rc "$OUT"/killed "$OUT"/boot-wall-seconds
  local start pid st=0 last seen now_s last_t
  start=$(date +%s)
  "$QEMU" -accel "$accel" -cpu "$cpu" -smp "$SMP" -m "$MEM" \
    -nodefaults -no-user-config -display none -no-reboot \
    -serial "file:$CONSOLE" \
    -kernel "$VMLINUZ" -initrd "$INITRD" -append "$APPEND" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$OUT,mount_tag=results,security_model=none,multidevs=remap" \
    </dev/null >"$OUT/qemu.log" 2>&1 &
  pid=$!
  # The boot time is the host's wall clock from qemu's start to the guest's first
  # write: the guest's uptime misses the firmware and the kernel's decompression.
  local t_start
  t_start=$(now)
  last=""
  last_t=$start
  while kill -0 "$pid" 2>/dev/null; do
    [ -f "$OUT/booted" ] && [ ! -f "$OUT/boot-wall-seconds" ] && secs "$t_start" "$(now)" > "$OUT/boot-wall-seconds"
    now_s=$(date +%s)
    seen=$(progress)
    if [ "$seen" != "$last" ]; then last=$seen; last_t=$now_s; fi
    if [ $((now_s - last_t)) -ge "$idle" ]; then
      echo "no progress for $idle s (console and scenario output unchanged)" > "$OUT/killed"
    elif [ $((now_s - start)) -ge "$bound" ]; then
      echo "still running after the $bound s bound" > "$OUT/killed"
    fi
    if [ -f "$OUT/killed" ]; then
      kill "$pid" 2>/dev/null || true
      sleep 5
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      return 124
    fi
    sleep 0.2
  done
  [ -f "$OUT/booted" ] && [ ! -f "$OUT/boot-wall-seconds" ] && secs "$t_start" "$(now)" > "$OUT/boot-wall-seconds"
  wait "$pid" || st=$?
  return "$st"
}

# Whether KVM can boot this kernel is found out once per host kernel: a stock kernel
# may hang or fault early under a nested or restricted KVM.
ACCEL=${VM_ACCEL:-}
if [ -z "$ACCEL" ]; then
  verdict="$CACHE/kvm-verdict-$(uname -r)"
  if [ -s "$verdict" ]; then
    ACCEL=$(cat "$verdict")
  elif [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    echo "vm.sh: trying KVM (once per host kernel)"
    t0=$(now)
    boot kvm 20 20 || true
    if [ -f "$OUT/booted" ]; then ACCEL=kvm; else ACCEL=tcg; fi
    echo "vm.sh: KVM $( [ $ACCEL = kvm ] && echo boots || echo "cannot boot" ) the guest ($(secs "$t0" "$(now)") s); using $ACCEL"
    if [ "$ACCEL" = tcg ]; then cp "$CONSOLE" "$CACHE/kvm-probe-console.log" 2>/dev/null || true; fi
    echo "$ACCEL" > "$verdict"
    # A run that already finished under KVM is the result.
    if [ "$ACCEL" = kvm ] && [ -f "$OUT/rc" ]; then ran_already=1; fi
  else
    ACCEL=tcg
  fi
fi

t0=$(now)
status=0
if [ -z "${ran_already:-}" ]; then
  boot "$ACCEL" "$BOUND" "$IDLE" || status=$?
fi
t1=$(now)

show_console() {
  echo "--- guest console (last 60 lines of $CONSOLE)"
  tail -n 60 "$CONSOLE" 2>/dev/null || true
  [ -s "$OUT/qemu.log" ] && { echo "--- qemu"; cat "$OUT/qemu.log"; }
}
if [ ! -f "$OUT/booted" ]; then
  show_console
  [ "$status" = 124 ] && fail "VM did not boot: $(cat "$OUT/killed") ($ACCEL)"
  fail "VM did not boot (qemu status $status, $ACCEL)"
fi
if [ ! -f "$OUT/rc" ]; then
  show_console
  [ "$status" = 124 ] && fail "scenario did not finish: $(cat "$OUT/killed") ($ACCEL)"
  fail "VM stopped without a scenario result (qemu status $status)"
fi
rc=$(cat "$OUT/rc")
boot_s=$(cat "$OUT/boot-wall-seconds" 2>/dev/null || echo "?")
uptime_s=$(cat "$OUT/booted")
scen_s=$(cat "$OUT/scenario-seconds" 2>/dev/null || echo "?")
if [ "$rc" = 0 ]; then
  echo "--- scenario output ($OUT/scenario.log)"
  cat "$OUT/scenario.log" 2>/dev/null || true
else
  show_console
fi
echo "vm.sh: kernel $KVER, accel $ACCEL, smp $SMP, ${MEM} MiB"
echo "vm.sh: boot ${boot_s} s (qemu start to scenario start; guest uptime then ${uptime_s} s), scenario ${scen_s} s, total $(secs "$t0" "$t1") s (qemu wall clock)"
echo "vm.sh: scenario $(basename "$SCENARIO") exit $rc; output in $OUT"
exit "$rc"
