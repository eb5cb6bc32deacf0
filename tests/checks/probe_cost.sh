#!/bin/bash
# What the agent's probes cost: threads and RSS of a running poolkeeper with N http
# checks, a third of them against a hung nginx (SIGSTOPped) so they run to their
# 500 ms timeout. Prints one line; a figure, not a test (not run by ctest).
#   tests/checks/probe_cost.sh build/agent/poolkeeper 200
set -euo pipefail
BIN=${1:?poolkeeper binary}
N=${2:-200}
D=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT -- "-$p" 2>/dev/null || true; kill -KILL -- "-$p" 2>/dev/null || true; done
  rm -rf "$D"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$D/data"
echo "poolkeeper canary" > "$D/data/canary.txt"
start_nginx() {  # name port
  mkdir -p "$D/$1/tmp"
  cat > "$D/$1/nginx.conf" <<CONF
daemon off; master_process on; worker_processes 1; pid $D/$1/nginx.pid;
error_log $D/$1/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $D/$1/tmp; proxy_temp_path $D/$1/tmp;
  fastcgi_temp_path $D/$1/tmp; uwsgi_temp_path $D/$1/tmp; scgi_temp_path $D/$1/tmp;
  server { listen 127.0.0.1:$2; root $D/data; } }
CONF
  setsid nginx -c "$D/$1/nginx.conf" -p "$D/$1" -e "$D/$1/error.log" > /dev/null 2>&1 &
  pids+=($!)
}
OK=$(port); HUNG=$(port); HTTP=$(port)
start_nginx ok "$OK"
start_nginx hung "$HUNG"
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$HUNG/canary.txt" && break; sleep 0.05; done
kill -STOP -- "-${pids[1]}"
{
  echo "[agent]"
  echo "listen = \"127.0.0.1:$HTTP\""
  echo "hostname = \"host1.example.org\""
  echo "admin_socket = \"$D/admin.sock\""
  echo "state_dir = \"$D/state\""
  echo "[services.web]"
  printf 'checks = ['; for i in $(seq 1 "$N"); do printf '"c%d"%s' "$i" "$([ "$i" -lt "$N" ] && echo ,)"; done; echo ']'
  for i in $(seq 1 "$N"); do
    p=$OK; [ $((i % 3)) -eq 0 ] && p=$HUNG
    printf '[checks.c%d]\nkind = "http"\nurl = "http://127.0.0.1:%d/canary.txt"\ninterval = "1s"\ntimeout = "500ms"\n' "$i" "$p"
  done
} > "$D/agent.toml"
setsid "$BIN" --config "$D/agent.toml" > "$D/agent.log" 2>&1 &
AGENT=$!
pids+=($AGENT)
sleep 8  # several rounds of every probe, hung ones included
threads=$(ls /proc/$AGENT/task | wc -l)
rss=$(awk '/VmRSS/ {print $2}' /proc/$AGENT/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$AGENT/status)
anon=$(awk '/^Anonymous/ {print $2}' /proc/$AGENT/smaps_rollup)
echo "checks=$N threads=$threads rss_kib=$rss rss_peak_kib=$hwm anon_kib=$anon"
