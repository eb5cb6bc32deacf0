# Sourced by tests/run.sh and deploy/demo.sh (from the top of the tree): how build/ is
# configured. ccache when installed, CCACHE_BASEDIR always this tree (whatever a caller
# exported), so another clone hits the same entries. configure_build DIR [CMAKE-ARGS...]
# uses the Debian package's flags (dpkg-buildflags with deploy/debian/rules'
# hardening=+all; build type None, as debhelper configures it), so code that would stop
# dpkg-buildpackage (an ignored write() under _FORTIFY_SOURCE…) stops this build first,
# and the package's compiles are ccache hits of this build's. Without dpkg-buildflags:
# RelWithDebInfo.
PK_LAUNCHER=""
if command -v ccache >/dev/null 2>&1; then
  PK_LAUNCHER="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
  export CCACHE_BASEDIR="$(pwd)" CCACHE_NOHASHDIR=1
  # dpkg-buildflags' -ffile-prefix-map=<this tree>=. names the tree only to map it to
  # "." (objects do not depend on it); deploy/build-deb.sh ignores it the same way.
  export CCACHE_IGNOREOPTIONS="-ffile-prefix-map=* -fdebug-prefix-map=*"
fi

configure_build() {
  cb_dir=$1
  shift
  if command -v dpkg-buildflags >/dev/null 2>&1; then
    cb_cxx="$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CXXFLAGS) $(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS)"
    cb_ld=$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get LDFLAGS)
    cmake -S . -B "$cb_dir" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="$cb_cxx" \
      -DCMAKE_EXE_LINKER_FLAGS="$cb_ld" -DCMAKE_SHARED_LINKER_FLAGS="$cb_ld" $PK_LAUNCHER "$@" >/dev/null
  else
    cmake -S . -B "$cb_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo $PK_LAUNCHER "$@" >/dev/null
  fi
}
