#!/bin/bash
# The agent's cost per probe, with 1 check and with 200, against references measured in
# the same run on the same machine, printed as one table with each goal beside its figure:
#  a) GET /health over keep-alive HTTP (wrk) against nginx `return 200` (2 workers), same
#     wrk settings; with 200 HTTP checks at interval 1 s, a third of them hanging to their
#     500 ms timeout on a server that accepts and never answers, the rest at the nginx;
#  b) the agent's RSS and thread count once the checks have settled, and how much of the
#     RSS is pages of mapped files (the binary and its libraries: the same with 1 or 200
#     checks);
#  c) the agent's CPU time per probe result over a window without HTTP load
#     (utime+stime from /proc/PID/stat over the growth of poolkeeper_check_results_total);
#  c') the floor under (c): the same 200 probes made by bare libcurl in one thread with the
#     same options and start windows, nothing else (build/tests/bench/curl_floor), on the
#     same two servers, measured with getrusage over the same window;
#  d) a warm NFS probe against an NFSv4 NULL RPC on the same kind of connection and
#     against a fresh `nfs-cat`, on the same nfs-ganesha (build/tests/bench/nfs_probe_bench);
#  e) the best peer doing the same work: HAProxy health-checking the same 200 servers
#     (`option httpchk`, `inter 1s`, the same third to the hanging server, `timeout check
#     500ms`), running beside the agent with 200 checks: both processes' CPU per second
#     over the same window and their RSS at the same moment, and the ratios
#     poolkeeper/HAProxy (the goals: at most 1).
# It only reports: a missed goal does not change the exit status; it fails only when a
# figure could not be measured. Everything it starts runs on free loopback ports in a
# temp dir and is stopped on exit.
#
#   tests/bench/bench.sh [SECONDS] [--bin-dir DIR]
# SECONDS (default 10) is each wrk run and each CPU window; about 80 s in all with the
# default. It builds what it needs in build/; --bin-dir uses the binaries already built
# in the CMake build directory DIR instead (ctest's bench entry).
set -eu
cd "$(dirname "$0")/../.."
secs=10 bin_dir=""
usage() { echo "usage: tests/bench/bench.sh [SECONDS] [--bin-dir DIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) [ $# -ge 2 ] || usage; bin_dir=$2; shift ;;
    *[!0-9]* | "") usage ;;
    *) secs=$1 ;;
  esac
  shift
done
[ "$secs" -ge 1 ] || { echo "bench.sh: SECONDS must be at least 1" >&2; exit 2; }
conns=50           # wrk connections (keep-alive), both servers
checks_many=200    # the loaded configuration
hang_share=3       # one check in this many hangs to its timeout

for tool in wrk nginx haproxy nfs-cat ganesha.nfsd curl python3; do
  command -v "$tool" >/dev/null && continue
  case "$tool" in
    nfs-cat) pkg=libnfs-utils ;;
    ganesha.nfsd) pkg="nfs-ganesha nfs-ganesha-vfs" ;;
    python3) pkg=python3-minimal ;;
    *) pkg=$tool ;;
  esac
  # shellcheck disable=SC2086 # $pkg may name two packages
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pkg >/dev/null 2>&1 ||
    { echo "bench.sh: $tool is missing and apt-get install $pkg failed" >&2; exit 1; }
done
if [ -z "$bin_dir" ]; then
  bin_dir=build
  cmake -S . -B build >/dev/null
  cmake --build build -j"$(nproc)" --target poolkeeper nfs_probe_bench curl_floor >/dev/null
fi
agent_bin=$bin_dir/agent/poolkeeper nfs_bench=$bin_dir/tests/bench/nfs_probe_bench
floor_bin=$bin_dir/tests/bench/curl_floor
for b in "$agent_bin" "$nfs_bench" "$floor_bin"; do
  [ -x "$b" ] || { echo "bench.sh: $b is not built" >&2; exit 1; }
done

work=$(mktemp -d /tmp/poolkeeper-bench-XXXXXX)
chmod 755 "$work"
pids=""
agent_pid=""
hap_pid=""
stop_pid() {  # stop_pid PID: SIGTERM, then SIGKILL if it still runs after 5 s
  local i
  kill "$1" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  trap - INT TERM
  for p in $agent_pid $hap_pid $pids; do stop_pid "$p"; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "bench.sh: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- reference server (also the target of the passing checks) and the hanging server
nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<NGINX
daemon off;
worker_processes 2;
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
nginx -c "$work/nginx.conf" -p "$work" & pids="$pids $!"
python3 tests/bench/hang_server.py > "$work/hang.port" & pids="$pids $!"

wait_for() {  # wait_for SECONDS COMMAND...: until the command succeeds
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.1
  done
}
wait_for 10 curl -sf "http://127.0.0.1:$nginx_port/" || fail "nginx did not come up: $(cat "$work/nginx-error.log")"
wait_for 10 test -s "$work/hang.port" || fail "the hanging server did not start"
read -r hang_port hang_pid < "$work/hang.port"
pids="$pids $hang_pid"

# --- agent configurations
write_config() {  # write_config N FILE: N HTTP checks, every third one hanging
  local n=$1 f=$2 i list=""
  local port
  port=$(free_port)
  {
    echo "[agent]"
    echo "listen = \"127.0.0.1:$port\""
    echo "hostname = \"bench.example.org\""
    echo "admin_socket = \"$work/admin.sock\""
    echo "state_dir = \"$work/state-$n\""
    echo "drain_seconds = 0"  # no shutdown drain: the next run starts at once
    for ((i = 1; i <= n; i++)); do list="$list\"c$i\", "; done
    echo "[services.web]"
    echo "checks = [${list%, }]"
    for ((i = 1; i <= n; i++)); do
      echo "[checks.c$i]"
      echo "kind = \"http\""
      echo "interval = \"1s\""
      echo "timeout = \"500ms\""
      if (( n > 1 && i % hang_share == 0 )); then
        # Fails by timeout every second; not critical, so /health stays 200 like nginx's.
        echo "url = \"http://127.0.0.1:$hang_port/c$i\""
        echo "critical = false"
      else
        echo "url = \"http://127.0.0.1:$nginx_port/c$i\""
      fi
    done
  } > "$f"
  echo "$port"
}

status_field() { awk -v k="$1:" '$1 == k {print $2}' "/proc/${2:-$agent_pid}/status"; }  # KEY [PID]
cpu_ticks() { sed 's/.*) //' "/proc/${1:-$agent_pid}/stat" | awk '{print $12 + $13}'; }  # [PID]: utime+stime

# --- HAProxy checking the same servers as the agent's N checks (e)
write_haproxy_config() {  # write_haproxy_config N FILE
  local n=$1 f=$2 i
  {
    echo "global"
    echo "  maxconn 4096"
    echo "defaults"
    echo "  mode http"
    echo "  timeout connect 500ms"
    echo "  timeout client 5s"
    echo "  timeout server 5s"
    echo "  timeout check 500ms"
    echo "listen bench"  # HAProxy starts only with a listener; nothing connects to it
    echo "  bind 127.0.0.1:$(free_port)"
    echo "  option httpchk GET /"
    echo "  default-server inter 1s rise 3 fall 2"
    for ((i = 1; i <= n; i++)); do
      if (( n > 1 && i % hang_share == 0 )); then
        echo "  server c$i 127.0.0.1:$hang_port check"
      else
        echo "  server c$i 127.0.0.1:$nginx_port check"
      fi
    done
  } > "$f"
}
start_haproxy() {  # start_haproxy N: in the foreground mode (-db), its own single process
  write_haproxy_config "$1" "$work/haproxy.cfg"
  haproxy -c -q -f "$work/haproxy.cfg" || fail "haproxy refused its config: $(haproxy -c -f "$work/haproxy.cfg" 2>&1 | tail -3)"
  haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 & hap_pid=$!
  wait_for 10 test -r "/proc/$hap_pid/stat" || fail "haproxy did not start"
}
results_total() {
  curl -sf "http://127.0.0.1:$agent_port/metrics" |
    awk '/^poolkeeper_check_results_total[{ ]/ {s += $NF; n++} END {if (n) printf "%.0f\n", s}'
}
now() { date +%s.%N; }
to_us() {  # wrk's "1.23ms" / "850.00us" / "1.01s" → µs
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1000000; else exit 1
    sub(/[a-z]+$/, "", v); printf "%.0f\n", v * m }'
}
wrk_once() {  # wrk_once URL SECONDS: prints "REQ_PER_S P99_US NON2XX"
  local out rps p99 bad
  out=$(wrk -t2 -c"$conns" -d"${2}s" --latency "$1") || fail "wrk $1 failed"
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  bad=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ {print $NF}')
  [ -n "$rps" ] && [ -n "$p99" ] || fail "no figures from wrk $1: $out"
  p99=$(to_us "$p99") || fail "wrk latency unit not understood: $out"
  echo "$rps $p99 ${bad:-0}"
}
median() { sort -g | awk '{v[NR] = $1} END {printf "%s\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
wrk_pair() {  # wrk_pair NGINX_URL AGENT_URL SUFFIX: sets {nginx,agent}_{rps,p99,non2xx}_SUFFIX
  # The machine may be shared: the two servers take turns in rounds of about 2 s, and
  # each figure is the median over its rounds, so that a slow moment hits both alike.
  local rounds=$(( secs / 2 )) d i who
  (( rounds >= 1 )) || rounds=1
  d=$(( secs / rounds ))
  : > "$work/wrk-nginx"; : > "$work/wrk-agent"
  for ((i = 0; i < rounds; i++)); do
    wrk_once "$1" "$d" >> "$work/wrk-nginx"
    wrk_once "$2" "$d" >> "$work/wrk-agent"
  done
  for who in nginx agent; do
    printf -v "${who}_rps_$3" '%.0f' "$(awk '{print $1}' "$work/wrk-$who" | median)"
    printf -v "${who}_p99_$3" '%.0f' "$(awk '{print $2}' "$work/wrk-$who" | median)"
    printf -v "${who}_non2xx_$3" '%s' "$(awk '{s += $3} END {print s + 0}' "$work/wrk-$who")"
  done
}

measure() {  # measure N SUFFIX [haproxy]: one agent with N checks (and HAProxy beside it); sets *_SUFFIX
  local n=$1 x=$2 cfg="$work/agent-$1.toml" c0 c1 r0 r1 t0 t1 h0 h1
  agent_port=$(write_config "$n" "$cfg")
  [ "${3:-}" = haproxy ] && start_haproxy "$n"
  "$agent_bin" --config "$cfg" 2>"$work/agent-$n.log" & agent_pid=$!
  wait_for 30 curl -sf "http://127.0.0.1:$agent_port/health" ||
    fail "agent with $n checks did not report healthy: $(tail -5 "$work/agent-$n.log")"
  # Settle: first probes are spread over half an interval, the hanging checks need
  # `fall` timeouts to fall; then every check probes once a second.
  sleep 3
  printf -v "rss_$x" '%s' "$(status_field VmRSS)"
  printf -v "rssfile_$x" '%s' "$(status_field RssFile)"
  printf -v "threads_$x" '%s' "$(status_field Threads)"
  if [ -n "$hap_pid" ]; then
    kill -0 "$hap_pid" 2>/dev/null || fail "haproxy died: $(tail -5 "$work/haproxy.log")"
    hap_rss=$(status_field VmRSS "$hap_pid") hap_threads=$(status_field Threads "$hap_pid")
  fi
  # CPU per probe result, no HTTP load; the scrapes stay outside the CPU window.
  r0=$(results_total); t0=$(now); c0=$(cpu_ticks)
  [ -n "$hap_pid" ] && h0=$(cpu_ticks "$hap_pid")
  sleep "$secs"
  c1=$(cpu_ticks); t1=$(now)
  [ -n "$hap_pid" ] && h1=$(cpu_ticks "$hap_pid")
  r1=$(results_total)
  [ -n "$r0" ] && [ -n "$r1" ] && [ "$r1" -gt "$r0" ] ||
    fail "no poolkeeper_check_results_total growth on /metrics with $n checks"
  local tck; tck=$(getconf CLK_TCK)
  # The kernel counts CPU time in ticks (1/CLK_TCK s): below one tick, print the bound.
  printf -v "cpu_us_$x" '%s' "$(awk -v c="$((c1 - c0))" -v t="$tck" -v r="$((r1 - r0))" \
    'BEGIN {if (c > 0) printf "%.1f", c * 1e6 / t / r; else printf "<%.0f", 1e6 / t / r}')"
  printf -v "results_ps_$x" '%s' "$(awk -v r="$((r1 - r0))" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", r / (b - a)}')"
  # CPU milliseconds per second of both over the same window (e).
  local per_s='BEGIN {printf "%.1f", c * 1000 / t / (b - a)}'
  printf -v "cpu_ms_s_$x" '%s' "$(awk -v c="$((c1 - c0))" -v t="$tck" -v a="$t0" -v b="$t1" "$per_s")"
  if [ -n "$hap_pid" ]; then
    kill -0 "$hap_pid" 2>/dev/null || fail "haproxy died: $(tail -5 "$work/haproxy.log")"
    hap_cpu_ms_s=$(awk -v c="$((h1 - h0))" -v t="$tck" -v a="$t0" -v b="$t1" "$per_s")
    stop_pid "$hap_pid"; hap_pid=""  # not during the HTTP load below
  fi
  # HTTP: the reference first, then the agent, with the agent's checks running during both.
  wrk_pair "http://127.0.0.1:$nginx_port/" "http://127.0.0.1:$agent_port/health" "$x"
  kill -0 "$agent_pid" || fail "the agent with $n checks died"
  stop_pid "$agent_pid"; agent_pid=""
}

echo "bench.sh: ${secs}s per run, wrk -t2 -c$conns keep-alive, $(nproc) CPUs; about $(( 7 * secs + 18 ))s" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
measure 1 one
measure "$checks_many" many haproxy
# The floor: the same probes by bare libcurl (3 s to settle, then the same window).
floor_out=$("$floor_bin" "http://127.0.0.1:$nginx_port" "http://127.0.0.1:$hang_port" "$checks_many" "$secs" 2>&1) ||
  fail "curl_floor failed: $floor_out"
floor_us=$(echo "$floor_out" | sed -n 's/^RESULT .*cpu_us_per_result=\([0-9.]*\).*/\1/p')
[ -n "$floor_us" ] || fail "curl_floor printed no RESULT line: $floor_out"

probes=$(( secs * 200 )); (( probes > 2000 )) && probes=2000
cat_runs=$(( secs * 5 )); (( cat_runs > 50 )) && cat_runs=50
nfs_out=$("$nfs_bench" "$probes" "$cat_runs" 2>&1) || fail "nfs_probe_bench failed: $nfs_out"
nfs_line=$(echo "$nfs_out" | grep '^RESULT ') || fail "nfs_probe_bench printed no RESULT line: $nfs_out"
for kv in ${nfs_line#RESULT }; do printf -v "nfs_${kv%%=*}" '%s' "${kv#*=}"; done

# --- the table
m=$checks_many
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
verdict() { awk -v v="${1#<}" -v op="$2" -v g="$3" 'BEGIN {
  ok = (op == ">=") ? v >= g : (op == "<=") ? v <= g : v < g; print ok ? "met" : "MISSED" }'; }
row() { printf '%-40s %12s %12s   %-18s %s\n' "$@"; }
rps_r1=$(ratio "$agent_rps_one" "$nginx_rps_one") rps_rm=$(ratio "$agent_rps_many" "$nginx_rps_many")
p99_r1=$(ratio "$agent_p99_one" "$nginx_p99_one") p99_rm=$(ratio "$agent_p99_many" "$nginx_p99_many")
rss_mib_1=$(awk -v k="$rss_one" 'BEGIN {printf "%.1f", k / 1024}')
rss_mib_m=$(awk -v k="$rss_many" 'BEGIN {printf "%.1f", k / 1024}')
file_mib_1=$(awk -v k="$rssfile_one" 'BEGIN {printf "%.1f", k / 1024}')
file_mib_m=$(awk -v k="$rssfile_many" 'BEGIN {printf "%.1f", k / 1024}')
nfs_null_r=$(ratio "$nfs_probe_p50" "$nfs_null_p50")
hap_rss_mib=$(awk -v k="$hap_rss" 'BEGIN {printf "%.1f", k / 1024}')
# Below one clock tick in the window HAProxy's CPU reads 0: the ratio is then not a figure.
[ "$(awk -v v="$hap_cpu_ms_s" 'BEGIN {print (v > 0)}')" = 1 ] || fail "HAProxy used no measurable CPU in ${secs}s"
hap_cpu_r=$(ratio "$cpu_ms_s_many" "$hap_cpu_ms_s") hap_rss_r=$(ratio "$rss_many" "$hap_rss")
nfs_cat_r=$(ratio "$nfs_cat_p50" "$nfs_probe_p50")

echo
echo "poolkeeper cost per probe: wrk -t2 -c$conns keep-alive, ${secs}s per server (median of rounds);"
echo "nginx worker_processes 2; $m HTTP checks at 1 s, 1 in $hang_share hanging to its 500 ms timeout;"
echo "$(nproc) CPUs, load average before the run $load_before"
row "figure" "1 check" "$m checks" "goal" ""
row "GET /health req/s (agent)" "$agent_rps_one" "$agent_rps_many" "" ""
row "  nginx 'return 200' req/s" "$nginx_rps_one" "$nginx_rps_many" "" ""
row "  agent/nginx req/s" "$rps_r1" "$rps_rm" ">= 0.8 ($m)" "$(verdict "$rps_rm" ">=" 0.8)"
row "GET /health p99 us (agent)" "$agent_p99_one" "$agent_p99_many" "" ""
row "  nginx p99 us" "$nginx_p99_one" "$nginx_p99_many" "" ""
row "  agent/nginx p99" "$p99_r1" "$p99_rm" "<= 1.2 ($m)" "$(verdict "$p99_rm" "<=" 1.2)"
row "agent RSS MiB (VmRSS)" "$rss_mib_1" "$rss_mib_m" "" ""
row "  of which mapped files (RssFile)" "$file_mib_1" "$file_mib_m" "" ""
row "agent threads" "$threads_one" "$threads_many" "<= 16" "$(verdict "$threads_many" "<=" 16)"
row "probe results/s (no HTTP load)" "$results_ps_one" "$results_ps_many" "" ""
row "agent CPU us per probe result" "$cpu_us_one" "$cpu_us_many" "" ""
row "  bare libcurl, same probes (floor)" "" "$floor_us" "" ""
row "  agent/floor" "" "$(ratio "${cpu_us_many#<}" "$floor_us")" "" ""
echo
row "the same $m servers checked by HAProxy" "poolkeeper" "HAProxy" "goal" ""
row "  CPU ms per second (same window)" "$cpu_ms_s_many" "$hap_cpu_ms_s" "" ""
row "  RSS MiB (VmRSS, same moment)" "$rss_mib_m" "$hap_rss_mib" "" ""
row "  threads" "$threads_many" "$hap_threads" "" ""
row "  poolkeeper/HAProxy CPU" "$hap_cpu_r" "" "<= 1" "$(verdict "$hap_cpu_r" "<=" 1)"
row "  poolkeeper/HAProxy RSS" "$hap_rss_r" "" "<= 1" "$(verdict "$hap_rss_r" "<=" 1)"
echo
row "NFS (same nfs-ganesha)" "p50 us" "p99 us" "goal" ""
row "  warm NFS probe ($probes)" "$nfs_probe_p50" "$nfs_probe_p99" "" ""
row "  NFSv4 NULL RPC, warm ($probes)" "$nfs_null_p50" "$nfs_null_p99" "" ""
row "  fresh nfs-cat ($cat_runs)" "$nfs_cat_p50" "$nfs_cat_p99" "" ""
row "  probe/NULL p50" "$nfs_null_r" "" "<= 1.5" "$(verdict "$nfs_null_r" "<=" 1.5)"
row "  nfs-cat/probe p50" "$nfs_cat_r" "" ">= 20" "$(verdict "$nfs_cat_r" ">=" 20)"
[ "$agent_non2xx_one" = 0 ] && [ "$agent_non2xx_many" = 0 ] ||
  echo "note: /health answered non-2xx during wrk (1 check: $agent_non2xx_one, $m checks: $agent_non2xx_many)"
