#!/bin/sh
# The demo: installs what is missing, builds, starts a real local stack on loopback
# (nfs-ganesha, nginx, rsync daemon serving one tree, and etcd 3.4 with the v2 API
# holding the conftool keys as conftool-sync creates them) and two hosts' agents
# probing it in conftool mode (demo1 and demo2, each the other's peer, so the safety
# floor shows). It shows what the agents report and what PyBal would do with the keys,
# has an operator activate the hosts (as confctl would), breaks the NFS canary and
# mends it, depools and pools, renders the balancer's config with lvs-config, and
# ends by printing the lines that point the README's verbs at demo1 and how to stop
# it. Ctrl-C (or kill of this script's pid) stops it all; DEMO_SECONDS=N stops it N
# seconds after the tour.
set -eu
cd "$(dirname "$0")/.."
echo "== installing what is missing (deploy/packages.sh)"
deploy/packages.sh
echo "== configuring and building poolkeeper, poolctl and the stack (build/)"
. deploy/build-env.sh
[ -f build/CMakeCache.txt ] || configure_build build
cmake --build build -j"$(nproc)" --target poolkeeper poolctl pk-stack

work=$(mktemp -d /tmp/poolkeeper-demo-XXXXXX)
chmod 755 "$work"
stack_pid="" agent_pid="" agent2_pid="" etcd_pid=""
. deploy/stop-pid.sh
cleanup() {
  stop_pid "$agent_pid"
  stop_pid "$agent2_pid"
  stop_pid "$stack_pid"
  stop_pid "$etcd_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=${DEMO_PORT:-9473}
port2=$((port + 10))

echo "== starting etcd 3.4 (v2 API) on loopback"
etcd_port=$(free_port) etcd_peer=$(free_port)
etcd="http://127.0.0.1:$etcd_port"
etcd --name demo --data-dir "$work/etcd" --listen-client-urls "$etcd" --advertise-client-urls "$etcd" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "demo=http://127.0.0.1:$etcd_peer" --enable-v2=true --log-level warn >"$work/etcd.log" 2>&1 &
etcd_pid=$!
i=0
until curl -sf "$etcd/v2/keys/" >/dev/null; do
  i=$((i + 1)); [ $i -gt 200 ] && { cat "$work/etcd.log"; exit 1; }
  kill -0 "$etcd_pid" 2>/dev/null || { cat "$work/etcd.log"; exit 1; }
  sleep 0.1
done
prefix=/conftool/v1/pools/demo/dumps
echo "   $etcd (log $work/etcd.log)"

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

# conftool mode, and a service IP for lvs-config: a vip check that only warns, since
# this machine is no LVS realserver (192.0.2.10 is a documentation address). The admin
# socket in the demo's own directory, where its printed lines point.
sed -i -e 's/^checks = \["\(.*\)"\]$/checks = ["\1", "lvs"]/' \
    -e "s|^admin_socket = .*|admin_socket = \"$work/admin.sock\"|" "$work/agent.toml"
cat >>"$work/agent.toml" <<EOF

[checks.lvs]
kind = "vip"
addresses = ["192.0.2.10"]
critical = false                      # the demo's host is no realserver: it warns

[conftool]
endpoints = ["$etcd"]
prefix = "$prefix"
lock_prefix = "/poolkeeper/locks"
liveness_prefix = "/poolkeeper/alive"
EOF
# The second host: the same stack, its own port, name, state and socket; peers swapped.
sed -e "s|127.0.0.1:$port\"|127.0.0.1:PORT1\"|; s|127.0.0.1:$port2\"|127.0.0.1:$port\"|g; s|127.0.0.1:PORT1\"|127.0.0.1:$port2\"|" \
    -e 's|demo1.example.org|demo2.example.org|; s|/state"|/state2"|; s|/admin.sock"|/admin2.sock"|' \
    "$work/agent.toml" > "$work/agent2.toml"

# What PyBal makes of the keys: yes = enabled, no = disabled, inactive = removed from
# the pool (as pybal's etcd driver reads them).
cat >"$work/pybal-view" <<EOF
#!/bin/sh
# What PyBal would do with the demo's conftool keys (etcd v2 at $etcd).
curl -s "$etcd/v2/keys$prefix?recursive=true&sorted=true" | python3 -c '
import json, sys
nodes = json.load(sys.stdin).get("node", {}).get("nodes", [])
for svc in nodes:
    parts = []
    for host in svc.get("nodes", []):
        v = json.loads(host["value"])
        what = {"yes": "enabled", "no": "disabled", "inactive": "removed (inactive)"}.get(v.get("pooled"), "?")
        parts.append("%s %s weight %s" % (host["key"].rsplit("/", 1)[1], what, v.get("weight")))
    print("  %-6s %s" % (svc["key"].rsplit("/", 1)[1], ";  ".join(parts)))
'
EOF
chmod +x "$work/pybal-view"
pybal_view() { echo "-- what PyBal would do ($work/pybal-view):"; "$work/pybal-view"; }

# conftool-sync creates each host's key as inactive, weight 0.
for svc in nfs http rsync; do
  for h in demo1.example.org demo2.example.org; do
    curl -sf -X PUT "$etcd/v2/keys$prefix/$svc/$h" --data-urlencode 'value={"pooled": "inactive", "weight": 0}' >/dev/null
  done
done
# An operator's confctl: read, merge, compare-and-swap on modifiedIndex (again on a
# lost race with an agent's write).
confctl_set() {  # HOST POOLED WEIGHT
  for svc in nfs http rsync; do
    key="$etcd/v2/keys$prefix/$svc/$1"
    n=0
    until r=$(curl -sf "$key?quorum=true") &&
        idx=$(printf '%s' "$r" | python3 -c 'import json, sys; print(json.load(sys.stdin)["node"]["modifiedIndex"])') &&
        val=$(printf '%s' "$r" | python3 -c 'import json, sys
v = json.loads(json.load(sys.stdin)["node"]["value"])
v["pooled"], v["weight"] = sys.argv[1], int(sys.argv[2])
print(json.dumps(v))' "$2" "$3") &&
        curl -sf -X PUT "$key?prevExist=true&prevIndex=$idx" --data-urlencode "value=$val" >/dev/null; do
      n=$((n + 1)); [ $n -lt 5 ] || { echo "demo: cannot set $key"; exit 1; }
    done
  done
}
echo
echo "== the conftool keys as conftool-sync creates them"
pybal_view

echo
echo "== starting two agents in conftool mode: demo1 on :$port, demo2 on :$port2"
build/agent/poolkeeper --config "$work/agent.toml" 2>"$work/agent.log" &
agent_pid=$!
build/agent/poolkeeper --config "$work/agent2.toml" 2>"$work/agent2.log" &
agent2_pid=$!
url="http://127.0.0.1:$port"
i=0
until curl -s "$url/health" >/dev/null && curl -s "http://127.0.0.1:$port2/health" >/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && { cat "$work/agent.log" "$work/agent2.log"; exit 1; }; sleep 0.1
done
socket=$(sed -n 's/^admin_socket = "\(.*\)"$/\1/p' "$work/agent.toml")
ctl() { build/agent/poolctl --socket "$socket" "$@"; }
settle() {  # until both agents answer /health with 200, or 10 s
  i=0
  until curl -sf "$url/health" >/dev/null && curl -sf "http://127.0.0.1:$port2/health" >/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && return 0; sleep 0.1
  done
}
sleep 2
echo "== poolctl status (demo1): the keys are inactive, so PyBal routes nothing here yet"
ctl status

echo
echo "== an operator activates both hosts: confctl select 'name=demo[12].example.org' set/pooled=yes:weight=10"
confctl_set demo1.example.org yes 10
confctl_set demo2.example.org yes 10
settle
sleep 1
pybal_view
echo "-- demo1's /health and the PyBal ProxyFetch URL (curl $url/health/http):"
curl -s -w 'HTTP %{http_code}\n' "$url/health"
curl -s -w 'HTTP %{http_code}\n' "$url/health/http"

echo
echo "== breaking the NFS canary (wrong content on disk): both hosts fail, the floor keeps one in"
sleep 1.1; printf 'corrupted\n' > "$data/canary.txt"; sleep 4
curl -s -w 'HTTP %{http_code}\n' "$url/health"
echo "-- demo2:"
curl -s -w 'HTTP %{http_code}\n' "http://127.0.0.1:$port2/health"
pybal_view
echo "== mending it"
sleep 1.1; printf 'poolkeeper canary\n' > "$data/canary.txt"; settle; sleep 2
curl -s -w 'HTTP %{http_code}\n' "$url/health"
pybal_view

echo
echo "== an operator's depool and pool (conftool-style verbs)"
ctl depool rsync --reason "demo: disk swap" || true
sleep 1
curl -s -w 'HTTP %{http_code}\n' "$url/health/rsync"
pybal_view
ctl pool rsync
sleep 1
pybal_view

echo
echo "== the balancer's side, from demo1's config: poolctl lvs-config --config $work/agent.toml --format pybal"
build/agent/poolctl lvs-config --config "$work/agent.toml" --format pybal

echo
echo "== transitions (agent log)"
grep 'event=' "$work/agent.log" | tail -12
echo
echo "agents at $url (demo1: $work/agent.toml, log $work/agent.log) and http://127.0.0.1:$port2 (demo2)"
echo "etcd (the conftool keys) at $etcd$prefix"
echo
echo "To try the README's verbs against demo1, in another shell:"
echo "   export POOLKEEPER_SOCKET=$socket PATH=$PWD/build/agent:\$PATH"
echo "   poolctl status"
echo "   depool --for 10m --reason \"trying it\""
echo "   $work/pybal-view"
echo "   pool"
echo "   poolctl lvs-config --config $work/agent.toml --format pybal"
echo "To stop the demo: Ctrl-C here, or kill $$"
if [ -n "${DEMO_SECONDS:-}" ]; then sleep "$DEMO_SECONDS"; exit 0; fi
wait "$agent_pid"
