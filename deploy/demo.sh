#!/bin/sh
# The demo: installs what is missing, builds, starts a real local stack on loopback
# (nfs-ganesha, nginx, rsync daemon serving one tree) and the agent probing it, shows
# what the agent reports, breaks the NFS canary and mends it. Ctrl-C stops it all;
# DEMO_SECONDS=N stops it after N seconds (0: at the end of the tour).
set -eu
cd "$(dirname "$0")/.."
deploy/packages.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target poolkeeper poolctl pk-stack

work=$(mktemp -d /tmp/poolkeeper-demo-XXXXXX)
chmod 755 "$work"
stack_pid="" agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  [ -n "$stack_pid" ] && kill "$stack_pid" 2>/dev/null && wait "$stack_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=${DEMO_PORT:-9473}
build/tests/harness/pk-stack "$work/agent.toml" "$port" >"$work/stack.out" 2>&1 &
stack_pid=$!
i=0
until [ -s "$work/agent.toml" ]; do
  i=$((i + 1)); [ $i -gt 300 ] && { cat "$work/stack.out"; exit 1; }
  kill -0 "$stack_pid" 2>/dev/null || { cat "$work/stack.out"; exit 1; }
  sleep 0.1
done
sleep 0.2
echo "== the stack (real servers on loopback)"
cat "$work/stack.out"
data=$(sed -n 's/^data //p' "$work/stack.out")

build/agent/poolkeeper --config "$work/agent.toml" 2>"$work/agent.log" &
agent_pid=$!
url="http://127.0.0.1:$port"
i=0
until curl -sf "$url/health" >/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && { cat "$work/agent.log"; curl -s "$url/health"; exit 1; }; sleep 0.1
done
echo
ctl() { build/agent/poolctl --config "$work/agent.toml" "$@"; }
echo "== poolctl status"
ctl status
echo
echo "== the PyBal health URL: curl $url/health/nfs"
curl -s -w 'HTTP %{http_code}\n' "$url/health/nfs"
echo
echo "== breaking the NFS canary (wrong content on disk)"
sleep 1.1; printf 'corrupted\n' > "$data/canary.txt"; sleep 2.5
curl -s -w 'HTTP %{http_code}\n' "$url/health"
echo "== mending it"
sleep 1.1; printf 'poolkeeper canary\n' > "$data/canary.txt"; sleep 3.5
curl -s -w 'HTTP %{http_code}\n' "$url/health"
echo
echo "== an operator's depool and pool (conftool-style verbs)"
ctl depool rsync --reason "demo: disk swap"
curl -s -w 'HTTP %{http_code}\n' "$url/health/rsync"
ctl pool rsync
echo
echo "== transitions (agent log)"
grep 'event=' "$work/agent.log" | tail -12
if [ -n "${DEMO_SECONDS:-}" ]; then sleep "$DEMO_SECONDS"; exit 0; fi
echo
echo "agent at $url (config $work/agent.toml, log $work/agent.log)"
echo "try: build/agent/poolctl --config $work/agent.toml status; Ctrl-C stops everything"
wait "$agent_pid"
