#!/bin/sh
# The demo: installs what is missing, builds, starts a real local stack on loopback
# (nfs-ganesha, nginx, rsync daemon serving one tree) and two hosts' agents probing
# it (demo1 and demo2, each the other's peer, so the safety floor shows), shows what
# they report, breaks the NFS canary and mends it. It prints the line that points the
# README's verbs (poolctl status, depool…) at demo1's agent. Ctrl-C stops it all;
# DEMO_SECONDS=N stops it after N seconds (0: at the end of the tour).
set -eu
cd "$(dirname "$0")/.."
echo "== installing what is missing (deploy/packages.sh)"
deploy/packages.sh
echo "== configuring and building poolkeeper, poolctl and the stack (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target poolkeeper poolctl pk-stack

work=$(mktemp -d /tmp/poolkeeper-demo-XXXXXX)
chmod 755 "$work"
stack_pid="" agent_pid="" agent2_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  [ -n "$agent2_pid" ] && kill "$agent2_pid" 2>/dev/null && wait "$agent2_pid" 2>/dev/null || true
  [ -n "$stack_pid" ] && kill "$stack_pid" 2>/dev/null && wait "$stack_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=${DEMO_PORT:-9473}
port2=$((port + 10))
echo "== starting the stack (real servers on loopback)"
build/tests/harness/pk-stack "$work/agent.toml" "$port" "$port2" >"$work/stack.out" 2>&1 &
stack_pid=$!
i=0
until [ -s "$work/agent.toml" ]; do
  i=$((i + 1)); [ $i -gt 300 ] && { cat "$work/stack.out"; exit 1; }
  kill -0 "$stack_pid" 2>/dev/null || { cat "$work/stack.out"; exit 1; }
  sleep 0.1
done
sleep 0.2
cat "$work/stack.out"
data=$(sed -n 's/^data //p' "$work/stack.out")
# The second host: the same stack, its own port, name, state and socket; peers swapped.
sed -e "s|127.0.0.1:$port\"|127.0.0.1:PORT1\"|; s|127.0.0.1:$port2\"|127.0.0.1:$port\"|g; s|127.0.0.1:PORT1\"|127.0.0.1:$port2\"|" \
    -e 's|demo1.example.org|demo2.example.org|; s|/state"|/state2"|; s|/admin.sock"|/admin2.sock"|' \
    "$work/agent.toml" > "$work/agent2.toml"

echo "== starting two agents: demo1 on :$port, demo2 on :$port2"
build/agent/poolkeeper --config "$work/agent.toml" 2>"$work/agent.log" &
agent_pid=$!
build/agent/poolkeeper --config "$work/agent2.toml" 2>"$work/agent2.log" &
agent2_pid=$!
url="http://127.0.0.1:$port"
i=0
until curl -sf "$url/health" >/dev/null && curl -sf "http://127.0.0.1:$port2/health" >/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && { cat "$work/agent.log" "$work/agent2.log"; curl -s "$url/health"; exit 1; }; sleep 0.1
done
socket=$(sed -n 's/^admin_socket = "\(.*\)"$/\1/p' "$work/agent.toml")
verbs="export POOLKEEPER_SOCKET=$socket PATH=$PWD/build/agent:\$PATH"
echo
echo "== to reach demo1's agent from another shell (poolctl status, depool nfs, pool nfs…):"
echo "   $verbs"
echo
ctl() { build/agent/poolctl --socket "$socket" "$@"; }
echo "== poolctl status (demo1; demo2 is its peer)"
ctl status
echo
echo "== the PyBal health URL: curl $url/health/nfs"
curl -s -w 'HTTP %{http_code}\n' "$url/health/nfs"
echo
echo "== breaking the NFS canary (wrong content on disk): both hosts fail, the floor keeps demo1 in"
sleep 1.1; printf 'corrupted\n' > "$data/canary.txt"; sleep 2.5
curl -s -w 'HTTP %{http_code}\n' "$url/health"
echo "-- demo2:"
curl -s -w 'HTTP %{http_code}\n' "http://127.0.0.1:$port2/health"
echo "== mending it"
sleep 1.1; printf 'poolkeeper canary\n' > "$data/canary.txt"; sleep 3.5
curl -s -w 'HTTP %{http_code}\n' "$url/health"
echo
echo "== an operator's depool and pool (conftool-style verbs)"
ctl depool rsync --reason "demo: disk swap" || true
curl -s -w 'HTTP %{http_code}\n' "$url/health/rsync"
ctl pool rsync
echo
echo "== transitions (agent log)"
grep 'event=' "$work/agent.log" | tail -12
echo
echo "agents at $url (demo1: $work/agent.toml, log $work/agent.log) and http://127.0.0.1:$port2 (demo2)"
echo "the README's verbs reach demo1 after:"
echo "   $verbs"
if [ -n "${DEMO_SECONDS:-}" ]; then sleep "$DEMO_SECONDS"; exit 0; fi
echo "Ctrl-C stops everything"
wait "$agent_pid"
