# Debian 12's own kernel for the VM tests, fetched into a cache (sourced by vm.sh and
# tests/hosts/host.sh).
#
#   vm_kernel CACHE   sets PKG, KVER, VMLINUZ and MODDIR; on the first call
#                     `apt-get download`s the kernel package linux-image-amd64 depends
#                     on (never installed on the host), extracts it with dpkg-deb -x
#                     and runs depmod on the extracted tree. Calls fail() on error.
#
# The package is resolved once and remembered in CACHE/kernel-package; delete that file
# (or the cache) to follow a newer kernel in the archive. Callers that share a cache
# (tests/vm and tests/hosts under `ctest -j`) take turns on CACHE/.kernel.lock.
vm_kernel() {
  local cache=$1 kdir lockfd
  mkdir -p "$cache"
  exec {lockfd}>"$cache/.kernel.lock"
  flock "$lockfd" || fail "cannot lock $cache/.kernel.lock"
  if [ ! -s "$cache/kernel-package" ]; then
    PKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-6\.1/ {print $2; exit}')
    if [ -z "$PKG" ]; then
      apt-get update -q >/dev/null 2>&1 || true
      PKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-6\.1/ {print $2; exit}')
    fi
    [ -n "$PKG" ] || fail "cannot resolve the Debian 12 kernel package (apt-cache depends linux-image-amd64)"
    echo "$PKG" > "$cache/kernel-package"
  fi
  PKG=$(cat "$cache/kernel-package")
  KVER=${PKG#linux-image-}
  kdir="$cache/$PKG"
  if [ ! -f "$kdir/.extracted" ]; then
    echo "fetching $PKG"
    rm -rf "$kdir" "$cache/deb"
    mkdir -p "$cache/deb"
    # apt's sandbox user cannot write into a root-owned build tree; the download is a
    # plain file fetch either way.
    if ! (cd "$cache/deb" && apt-get download -q -o APT::Sandbox::User=root "$PKG" >/dev/null); then
      # A kernel superseded in the archive is gone from it: follow the current one.
      apt-get update -q >/dev/null 2>&1 || true
      PKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-6\.1/ {print $2; exit}')
      [ -n "$PKG" ] || fail "cannot resolve the Debian 12 kernel package after apt-get update"
      echo "$PKG" > "$cache/kernel-package"
      KVER=${PKG#linux-image-}
      kdir="$cache/$PKG"
      rm -rf "$kdir"
      (cd "$cache/deb" && apt-get download -q -o APT::Sandbox::User=root "$PKG" >/dev/null) \
        || fail "apt-get download $PKG failed"
    fi
    dpkg-deb -x "$cache"/deb/"$PKG"_*.deb "$kdir" || fail "dpkg-deb -x failed"
    depmod -b "$kdir" "$KVER" || fail "depmod failed"
    rm -rf "$cache/deb"
    touch "$kdir/.extracted"
  fi
  exec {lockfd}>&-
  VMLINUZ="$kdir/boot/vmlinuz-$KVER"
  MODDIR="$kdir/lib/modules/$KVER"
  [ -f "$VMLINUZ" ] || fail "no kernel image $VMLINUZ"
}
