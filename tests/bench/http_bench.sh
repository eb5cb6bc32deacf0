#!/bin/sh
# Throughput of the health endpoint against nginx answering a fixed 200 on the same
# machine, same client (wrk), same settings: keep-alive connections, 2 threads.
#   tests/bench/http_bench.sh [SECONDS] [CONNECTIONS]
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-5} conns=${2:-50}
command -v wrk >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; }
cmake -S . -B build >/dev/null && cmake --build build -j"$(nproc)" --target poolkeeper pk-stack >/dev/null
work=$(mktemp -d /tmp/poolkeeper-bench-XXXXXX)
chmod 755 "$work"
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
agent_port=$(free_port) nginx_port=$(free_port)
cat > "$work/agent.toml" <<TOML
[agent]
listen = "127.0.0.1:$agent_port"
hostname = "bench.example.org"
admin_socket = "$work/admin.sock"
state_dir = "$work/state"
[services.web]
checks = ["ok"]
[checks.ok]
kind = "exec"
command = ["/bin/true"]
TOML
mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<NGINX
daemon off;
worker_processes 2;  # like the agent's 2 HTTP threads
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$nginx_port; location / { return 200 "pooled\n"; } }
}
NGINX
build/agent/poolkeeper --config "$work/agent.toml" 2>"$work/agent.log" & pids="$pids $!"
nginx -c "$work/nginx.conf" -p "$work" & pids="$pids $!"
i=0
until curl -sf "http://127.0.0.1:$agent_port/health/web" >/dev/null && curl -sf "http://127.0.0.1:$nginx_port/" >/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && { echo "servers did not come up"; cat "$work/agent.log"; exit 1; }; sleep 0.1
done
echo "keep-alive check (no 'Connection: close' expected):"
curl -sv "http://127.0.0.1:$agent_port/health/web" "http://127.0.0.1:$agent_port/health/web" 2>&1 \
  | grep -iE "^< connection|Re-using existing connection" || true
run() { wrk -t2 -c"$conns" -d"${secs}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
nginx_rps=$(run "http://127.0.0.1:$nginx_port/")
agent_rps=$(run "http://127.0.0.1:$agent_port/health/web")
echo "nginx 'return 200':        $nginx_rps req/s"
echo "poolkeeper /health/web:    $agent_rps req/s"
python3 -c "print('ratio poolkeeper/nginx: %.2f' % ($agent_rps / $nginx_rps))"
echo "agent RSS: $(ps -o rss= -p "$(pgrep -f "poolkeeper --config $work/agent.toml")") KiB"
