#!/bin/sh
# Installs the Debian 12 packages poolkeeper needs to build, test and run the demo
# (clang and its runtime libraries for the fuzzers, qemu for the VM tests),
# only those that are missing (idempotent). Used by tests/run.sh and deploy/demo.sh.
set -eu

BUILD="build-essential cmake pkg-config libnfs-dev libnl-3-dev libnl-route-3-dev libnl-idiag-3-dev
libmicrohttpd-dev prometheus-cpp-dev libtomlplusplus-dev nlohmann-json3-dev libsystemd-dev
libcurl4-openssl-dev libgtest-dev libgmock-dev clang libclang-rt-14-dev"
SERVERS="nfs-ganesha nfs-ganesha-vfs libnfs-utils nginx rsync etcd-server etcd-client haproxy prometheus
iproute2 curl procps systemd util-linux python3 chromium"
# The VM tests (tests/vm): qemu boots Debian's kernel with busybox in its initramfs;
# the guest runs the host's kernel nfsd tools, NFS client and ipvsadm (and, for
# tests/vm/stack.sh, etcd-server, nginx, rsync and curl from SERVERS).
VM="qemu-system-x86 busybox-static kmod cpio nfs-kernel-server nfs-common ipvsadm"
# Packaging and configuration management: the .deb, lintian, the Puppet module's tests.
DEPLOY="debhelper lintian dpkg-dev ccache python3-yaml puppet ruby-rspec-puppet puppet-lint"

missing=""
for p in $BUILD $SERVERS $VM $DEPLOY; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "packages.sh: missing packages:$missing (run as root to install them)" >&2
    exit 1
  fi
  echo "packages.sh: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Servers are started by the tests and the demo themselves, never by the package.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -q --no-install-recommends $missing
fi
