#!/bin/sh
# The README as a new user runs it. The commands are taken from README.md itself (its
# ```sh blocks), never copied here, and run in a fresh `git clone` of the tree (no
# build output, no untracked file), as root on this disposable machine:
#   "The two commands": deploy/demo.sh, until it prints its last line; then the lines it
#     prints to try the verbs — which must be the README's block of them — and its stop
#     line. (tests/run.sh is not run: this test is one of its tests.)
#   "Install and first run": the package block — deploy/build-deb.sh exactly as given
#     (no DEB_BUILD_OPTIONS: the unit tests run inside dpkg-buildpackage), dpkg -i — then
#     every later block (--check-config, start, poolctl status); the package is purged
#     and the same is done with the build-tree block (cmake --install, systemd-sysusers).
#     The config block must be the installed config. Without a running systemd,
#     `systemctl enable --now poolkeeper` enables the unit and starts the agent the way
#     the unit does (its ExecStartPre if any, ExecStart, User, RuntimeDirectory).
# A command that fails fails the test, naming the README line.
#   readme_commands_test.sh SOURCE_TREE [DEB_DIR]
# With DEB_DIR the package the README's block built is left there (emptied first) for
# deb_package_test and the real-hosts tests (tests/hosts), so that a run builds the
# package once, the way the README builds it.
set -eu
src=$1
deb_dir=${2:-}
[ "$(id -u)" = 0 ] || { echo "needs root (dpkg -i, cmake --install to /usr)"; exit 1; }
tmp=$(mktemp -d /tmp/pk-readme-XXXXXX)
tree=$tmp/tree
demo_pid="" agent_pid="" manifest=""
users_before=$(getent passwd poolkeeper >/dev/null && echo yes || echo no)
. "$src/deploy/stop-pid.sh"
cleanup() {
  [ -n "$demo_pid" ] && kill -TERM "-$demo_pid" 2>/dev/null  # the group (dash: no "--")
  stop_pid "$demo_pid" 10
  stop_pid "$agent_pid" 10
  rm -rf /run/poolkeeper
  dpkg --purge poolkeeper >/dev/null 2>&1 || true
  [ -n "$manifest" ] && [ -f "$manifest" ] && xargs -r rm -f < "$manifest"
  rm -f /etc/systemd/system/multi-user.target.wants/poolkeeper.service \
        /etc/systemd/system/sockets.target.wants/poolkeeper.socket
  # What the build-tree install made besides its files (the package is purged by now).
  rm -rf /etc/poolkeeper /var/lib/poolkeeper /usr/share/doc/poolkeeper
  if [ "$users_before" = no ]; then
    userdel poolkeeper 2>/dev/null || true
    groupdel poolkeeper-admins 2>/dev/null || true
    groupdel poolkeeper 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
dpkg --purge poolkeeper >/dev/null 2>&1 || true   # a leftover of an interrupted run
[ -z "$deb_dir" ] || rm -rf "$deb_dir"                  # never a stale package for the others

git clone -q "$src" "$tree"
echo "testing README.md of $(git -C "$tree" log -1 --format='%h %s')"
[ -z "$(git -C "$src" status --porcelain --untracked-files=no 2>/dev/null)" ] ||
  echo "note: $src has uncommitted changes; this tests the committed tree"

# blocks SECTION: the ```sh blocks of the README section "## SECTION", each line as
# "N<TAB>LINE" (N numbers the blocks from 1), indentation removed.
blocks() {
  awk -v sec="## $1" '
    $0 == sec { in_sec = 1; next }
    in_sec && /^## / { exit }
    in_sec && !on && /^ *```sh$/ { n++; on = 1; next }
    in_sec && on && /^ *```$/ { on = 0; next }
    on { sub(/^ +/, ""); if ($0 != "") print n "\t" $0 }
  ' "$tree/README.md"
}
block() { blocks "$1" | awk -F '\t' -v n="$2" '$1 == n { sub(/^[^\t]*\t/, ""); print }'; }
# run_line WHERE LINE: one README line through sh in the tree; a failure names it.
run_line() {
  echo "\$ $2"
  (cd "$tree" && sh -ec "$2") || { echo "FAILED: the README's $1: $2"; exit 1; }
}

# ---- The two commands ----
t0=$(date +%s)
found_demo=no
block "The two commands" 1 > "$tmp/two"
[ -s "$tmp/two" ] || { echo "no sh block under \"The two commands\""; exit 1; }
while IFS= read -r line; do
  case $line in
    tests/run.sh*) echo "(not run here: $line — this test is one of its tests)" ;;
    deploy/demo.sh*)
      echo "\$ $line   (in the background until it prints its last line)"
      # In its own process group (setsid execs: $! is the group), so that a failure
      # here stops the whole demo, not only the shell that started it.
      (cd "$tree" && exec setsid sh -c "$line") > "$tmp/demo.out" 2>&1 < /dev/null &
      demo_pid=$!
      found_demo=yes ;;
    *) echo "\"The two commands\" has a line this test does not know how to run: $line"; exit 1 ;;
  esac
done < "$tmp/two"
[ $found_demo = yes ] || { echo "\"The two commands\" does not run deploy/demo.sh"; exit 1; }
# The demo builds first: wait while it makes progress (its output grows), at most 40 min.
size=-1 still=0 i=0
until grep -q '^To stop the demo' "$tmp/demo.out"; do
  kill -0 "$demo_pid" 2>/dev/null || { tail -40 "$tmp/demo.out"; echo "FAILED: deploy/demo.sh exited early"; exit 1; }
  s=$(wc -c < "$tmp/demo.out")
  if [ "$s" = "$size" ]; then still=$((still + 1)); else still=0 size=$s; fi
  i=$((i + 1))
  if [ $still -ge 3000 ] || [ $i -ge 24000 ]; then tail -40 "$tmp/demo.out"; echo "FAILED: deploy/demo.sh stalled"; exit 1; fi
  sleep 0.1
done
echo "demo: tour done in $(( $(date +%s) - t0 )) s"
grep -q 'removed (inactive)' "$tmp/demo.out" && grep -q 'demo1.example.org enabled weight 10' "$tmp/demo.out" ||
  { cat "$tmp/demo.out"; echo "FAILED: the demo did not show PyBal's view of the keys"; exit 1; }
sed -n '/^To try the README/,/^To stop/p' "$tmp/demo.out" | sed -n 's/^   //p' > "$tmp/printed"
work=$(sed -n 's|^export POOLKEEPER_SOCKET=\(/tmp/poolkeeper-demo-[A-Za-z0-9]*\)/admin.sock .*|\1|p' "$tmp/printed")
[ -n "$work" ] || { cat "$tmp/demo.out"; echo "FAILED: the demo printed no export line"; exit 1; }
block "The two commands" 2 | sed -e "s|/tmp/poolkeeper-demo-XXXXXX|$work|g" -e "s|\$PWD|$tree|g" > "$tmp/readme-try"
if ! cmp -s "$tmp/readme-try" "$tmp/printed"; then
  diff "$tmp/readme-try" "$tmp/printed" || true
  echo "FAILED: the README's lines to try the demo (<) differ from what the demo prints (>)"; exit 1
fi
# Run the README's lines, one shell (the export holds), each must succeed.
block "The two commands" 2 | sed "s|/tmp/poolkeeper-demo-XXXXXX|$work|g" > "$tmp/try.sh"
echo "--- the README's lines against the demo:"
cat "$tmp/try.sh"
(cd "$tree" && sh -ex "$tmp/try.sh") > "$tmp/try.out" 2>&1 || { cat "$tmp/try.out"; echo "FAILED: a line to try the demo failed"; exit 1; }
grep -q '^host demo1.example.org' "$tmp/try.out" && grep -q 'demo1.example.org disabled' "$tmp/try.out" &&
  grep -q '^\[dumps_nfs_' "$tmp/try.out" || { cat "$tmp/try.out"; echo "FAILED: the verbs did not reach the demo"; exit 1; }
echo "--- they work: status, depool (PyBal's view: disabled), pool, lvs-config"
stop_line=$(sed -n 's/^To stop the demo: .*, or \(kill [0-9]*\)$/\1/p' "$tmp/demo.out")
[ -n "$stop_line" ] || { echo "FAILED: the demo printed no stop line"; exit 1; }
echo "\$ $stop_line"
sh -c "$stop_line"
i=0
while kill -0 "$demo_pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$demo_pid" 2>/dev/null && { echo "FAILED: the demo did not stop in 30 s"; exit 1; }
wait "$demo_pid" 2>/dev/null || true
demo_pid=""
[ ! -e "$work" ] || { echo "FAILED: the demo left $work"; exit 1; }
echo "demo: stopped and cleaned up; $(( $(date +%s) - t0 )) s in all"

# ---- Install and first run ----
nblocks=$(blocks "Install and first run" | awk -F '\t' 'END { print $1 }')
[ "${nblocks:-0}" -ge 3 ] || { echo "\"Install and first run\" has $nblocks sh blocks; want install, build-tree, then first-run blocks"; exit 1; }
installed_config_is_readmes() {
  awk '/^## Install and first run/ { s = 1 } s && /^## / && !/Install/ { exit } s && /```toml/ { on = 1; next } on && /```/ { exit } on' \
    "$tree/README.md" | sed 's/^ *//; s/ *#.*//' | grep -v '^$' > "$tmp/readme.toml"
  sed 's/ *#.*//' /etc/poolkeeper/poolkeeper.toml | grep -v '^$' > "$tmp/installed.toml"
  cmp -s "$tmp/readme.toml" "$tmp/installed.toml" ||
    { diff "$tmp/readme.toml" "$tmp/installed.toml" || true; echo "FAILED: the README's config (<) is not the installed one (>)"; exit 1; }
}
# As the unit starts the agent: its ExecStartPre if any, then ExecStart as User= with its
# RuntimeDirectory= and StateDirectory=.
start_like_unit() {
  unit=$(ls /lib/systemd/system/poolkeeper.service /usr/lib/systemd/system/poolkeeper.service 2>/dev/null | head -1)
  [ -n "$unit" ] || { echo "FAILED: no poolkeeper.service installed"; exit 1; }
  user=$(sed -n 's/^User=//p' "$unit")
  install -d -o "$user" -g "$user" -m 0755 /run/poolkeeper
  install -d -o "$user" -g "$user" -m 0750 /var/lib/poolkeeper
  pre=$(sed -n 's/^ExecStartPre=//p' "$unit")
  exe=$(sed -n 's/^ExecStart=//p' "$unit")
  # shellcheck disable=SC2086
  [ -z "$pre" ] || setpriv --reuid="$user" --regid="$user" --init-groups $pre < /dev/null ||
    { echo "FAILED: the unit's ExecStartPre=$pre"; exit 1; }
  # shellcheck disable=SC2086
  setpriv --reuid="$user" --regid="$user" --init-groups $exe > "$tmp/agent.log" 2>&1 < /dev/null &
  agent_pid=$!
  i=0
  until [ -S /run/poolkeeper/admin.sock ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
  [ -S /run/poolkeeper/admin.sock ] || { cat "$tmp/agent.log"; echo "FAILED: the agent did not start as the unit starts it"; exit 1; }
}
first_run() {  # the blocks after the two install blocks
  b=3
  while [ $b -le "$nblocks" ]; do
    block "Install and first run" $b > "$tmp/step"
    while IFS= read -r line; do
      case $line in
        "systemctl enable --now poolkeeper"*)
          if [ -d /run/systemd/system ]; then run_line "step: start" "$line" < /dev/null
          else
            echo "\$ $line   (no running systemd: enabled, then started as the unit would)"
            systemctl enable poolkeeper > "$tmp/enable.log" 2>&1 < /dev/null || { cat "$tmp/enable.log"; echo "FAILED: systemctl enable poolkeeper"; exit 1; }
            start_like_unit
          fi ;;
        *) echo "\$ $line"
           if ! (cd "$tree" && sh -ec "$line") > "$tmp/line.out" 2>&1 < /dev/null; then
             cat "$tmp/line.out"; echo "FAILED: the README's first run: $line"; exit 1
           fi
           cat "$tmp/line.out" ;;
      esac
    done < "$tmp/step"
    b=$((b + 1))
  done
  grep -q '^http ' "$tmp/line.out" || { echo "FAILED: the last step did not show the service"; exit 1; }
  stop_pid "$agent_pid"
  agent_pid=""
  rm -rf /run/poolkeeper
}

t0=$(date +%s)
block "Install and first run" 1 | sed "s|/tmp/deb|$tmp/deb|g" > "$tmp/install.sh"
echo "--- install, the package (/tmp/deb here is $tmp/deb):"
cat "$tmp/install.sh"
(cd "$tree" && env -u DEB_BUILD_OPTIONS sh -ex "$tmp/install.sh") > "$tmp/install.log" 2>&1 ||
  { tail -60 "$tmp/install.log"; echo "FAILED: the README's package install"; exit 1; }
grep -q '100% tests passed' "$tmp/install.log" || { tail -40 "$tmp/install.log"; echo "FAILED: no unit tests ran in the package build"; exit 1; }
echo "package: built (unit tests inside) and installed in $(( $(date +%s) - t0 )) s"
if [ -n "$deb_dir" ]; then
  mkdir -p "$deb_dir"
  cp "$tmp"/deb/*.deb "$deb_dir/"
  echo "left in $deb_dir: $(cd "$deb_dir" && echo *.deb)"
fi
installed_config_is_readmes
first_run
dpkg --purge poolkeeper > "$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; exit 1; }

t0=$(date +%s)
block "Install and first run" 2 > "$tmp/cmake.sh"
echo "--- install, from the build tree:"
cat "$tmp/cmake.sh"
(cd "$tree" && sh -ex "$tmp/cmake.sh") > "$tmp/cmake.log" 2>&1 ||
  { tail -40 "$tmp/cmake.log"; echo "FAILED: the README's build-tree install"; exit 1; }
manifest=$tree/build/install_manifest.txt
echo "build tree: installed in $(( $(date +%s) - t0 )) s"
installed_config_is_readmes
first_run
echo "1 passed, 0 failed"
