#!/bin/sh
# The demo: installs what is missing, builds, starts the agent on loopback with
# example checks, and shows what it reports. Ctrl-C (or DEMO_SECONDS) stops it all.
set -eu
cd "$(dirname "$0")/.."
deploy/packages.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target poolkeeper poolctl

work=$(mktemp -d /tmp/poolkeeper-demo-XXXXXX)
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=${DEMO_PORT:-9473}
touch "$work/healthy"
cat > "$work/agent.toml" <<TOML
[agent]
listen = "127.0.0.1:$port"
hostname = "demo1.example.org"
drain_seconds = 1

[services.web]
checks = ["flag"]

[checks.flag]
kind = "exec"
command = ["/usr/bin/test", "-e", "$work/healthy"]
interval = "500ms"
rise = 2
fall = 2
TOML

build/agent/poolkeeper --config "$work/agent.toml" 2>"$work/agent.log" &
agent_pid=$!
url="http://127.0.0.1:$port"
i=0
until curl -sf "$url/health/web" >/dev/null; do
  i=$((i + 1)); [ $i -gt 50 ] && { cat "$work/agent.log"; exit 1; }; sleep 0.1
done
echo "== poolkeeper is up: $url"
build/agent/poolctl status --url "$url"
echo
echo "== breaking the check (rm $work/healthy)"
rm "$work/healthy"; sleep 2
curl -s -w 'HTTP %{http_code}\n' "$url/health/web"
echo "== fixing it"
touch "$work/healthy"; sleep 2
curl -s -w 'HTTP %{http_code}\n' "$url/health/web"
echo
echo "== events"
curl -s "$url/events"
if [ -n "${DEMO_SECONDS:-}" ]; then sleep "$DEMO_SECONDS"; exit 0; fi
if [ -t 0 ]; then
  echo "agent running at $url (log: $work/agent.log); press Ctrl-C to stop"
  wait "$agent_pid"
fi
