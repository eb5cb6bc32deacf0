#!/bin/bash
# Real hosts: the shipped unit's sandbox is enough for what the agent does.
#
#   tests/hosts/sandbox.sh NAME
#
# NAME: a host booted by tests/hosts/host.sh with the package installed and
# poolkeeper.socket and poolkeeper.service running (tests/hosts/unit-kill.sh calls it at
# its end, in the same boot). It replaces the agent's config with its own (two services,
# no conftool: sandbox-vip with a vip check, sandbox-exec with an exec check; interval
# 1 s and 2 s, rise 1, fall 1; admin_group = "poolkeeper-admins"), restarts the agent,
# and checks under the unit as shipped (User=poolkeeper, no capabilities,
# ProtectSystem=strict, ProtectProc=invisible, RestrictAddressFamilies,
# SystemCallFilter, ...):
#   vip        192.0.2.100/32 on lo with arp_ignore=1, arp_announce=2: the check healthy;
#              the address removed: unhealthy, the reason "192.0.2.100 not on lo"
#   exec       a Nagios plugin (a shell script) exiting 0: healthy; rewritten to exit 2:
#              unhealthy with its output line as the reason (which names the user it
#              ran as: poolkeeper)
#   watchdog   WatchdogUSec set; WatchdogTimestampMonotonic advances at least twice in
#              25 s, no gap as long as WatchdogUSec; NRestarts 0 and one MainPID
#   admin      a member of poolkeeper-admins runs `poolctl depool sandbox-exec` (the
#              intent becomes depooled, by that user) and `pool` again; a user outside
#              the group is refused with "permission denied: … nor in group
#              poolkeeper-admins" and the intent stays
#   socket     a request to 127.0.0.1:9473 every 20 ms on a new connection (at most
#              3000 or 120 s) while `systemctl restart poolkeeper` runs: 0 refused, 0
#              failed, every request answered (some after a wait), a new MainPID, and
#              requests sent while the restart ran
# The guest's half is tests/hosts/sandbox-guest.py. Prints one table; exits 1 when a
# row fails. Leaves the sandbox config in place (the caller powers the host off).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export HOSTS_DIR=${HOSTS_DIR:-$ROOT/build/hosts}
H="$HERE/host.sh"
[ $# = 1 ] || { echo "usage: tests/hosts/sandbox.sh NAME" >&2; exit 2; }
VM=$1
OUT=$HOSTS_DIR/$VM.sandbox
G="python3 $HERE/sandbox-guest.py"
VIP=192.0.2.100
PLUGIN=/usr/local/lib/nagios/plugins/check_sandbox
MEMBER=pk-operator
OUTSIDER=pk-outsider
T0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[%6s s] sandbox: %s\n' "$(since "$T0")" "$*"; }
rm -rf "$OUT"
mkdir -p "$OUT"

# A Nagios plugin whose exit status and output line are given; it names its user.
plugin() {
  printf '#!/bin/sh\necho "SANDBOX %s - plugin ran as $(/usr/bin/id -un)"\nexit %s\n' "$1" "$2"
}
plugin OK 0 > "$OUT/plugin-ok"
plugin CRITICAL 2 > "$OUT/plugin-critical"
cat > "$OUT/poolkeeper.toml" <<EOF
[agent]
listen = "127.0.0.1:9473"
hostname = "rs1.example.org"
admin_group = "poolkeeper-admins"

[services.sandbox-vip]
checks = ["dr-vip"]
port = 80

[services.sandbox-exec]
checks = ["plugin"]
port = 81

[checks.dr-vip]
kind = "vip"
addresses = ["$VIP"]
interface = "lo"
interval = "1s"
rise = 1
fall = 1

[checks.plugin]
kind = "exec"
command = ["$PLUGIN"]
interval = "2s"
timeout = "2s"
rise = 1
fall = 1
EOF

# The guest sees these files over 9p and may have cached older ones: caches dropped.
"$H" exec "$VM" "set -e
  sync; echo 3 > /proc/sys/vm/drop_caches
  ip addr replace $VIP/32 dev lo
  sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  mkdir -p $(dirname $PLUGIN)
  install -m 755 $OUT/plugin-ok $PLUGIN
  getent passwd $MEMBER >/dev/null || useradd -M -s /usr/sbin/nologin $MEMBER
  getent passwd $OUTSIDER >/dev/null || useradd -M -s /usr/sbin/nologin $OUTSIDER
  adduser --quiet $MEMBER poolkeeper-admins
  cp $OUT/poolkeeper.toml /etc/poolkeeper/poolkeeper.toml
  systemctl restart poolkeeper.service || { journalctl -u poolkeeper -n 20 --no-pager; exit 1; }
" > "$OUT/setup.log" 2>&1 || { log "FAIL setup: $(tail -n 20 "$OUT/setup.log")"; exit 1; }
log "agent restarted with the sandbox config"

declare -A RESULT FIGURES
row() { RESULT[$1]=$2; FIGURES[$1]=$3; log "$1: $2 $3"; }
# field JSON KEY: one field of a JSON object ("" when absent).
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2], ""); print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2" 2>/dev/null || true; }
guest() { "$H" exec "$VM" "$*" 2>&1 | tail -n 1; }
# verdict ROW JSON: the row from the guest's own judgement ("ok", "text").
verdict() {
  if [ "$(field "$2" ok)" = true ]; then row "$1" PASS "$(field "$2" text)"
  else row "$1" FAIL "$(field "$2" text) ${2:0:400}"; fi
}

# up_down ROW CHECK ACTION WANT: CHECK healthy, then ACTION run in the guest, then CHECK
# unhealthy with the reason WANT and its service's /health 503.
up_down() {
  local row=$1 check=$2 action=$3 want=$4 up down reason
  up=$(guest "$G wait-check $check healthy") || true
  if [ "$(field "$up" state)" != healthy ]; then
    row "$row" FAIL "not healthy before: $up"
    return
  fi
  "$H" exec "$VM" "$action" > /dev/null 2>&1 || true
  down=$(guest "$G wait-check $check unhealthy") || true
  reason=$(field "$down" reason)
  if [ "$(field "$down" state)" = unhealthy ] && [ "$reason" = "$want" ] \
     && [ "$(field "$down" health_code)" = 503 ]; then
    row "$row" PASS "healthy; then unhealthy after $(field "$down" seconds) s, \"$reason\", /health/$(field "$down" service) 503"
  else
    row "$row" FAIL "after \"$action\": $down"
  fi
}

# --- vip ----------------------------------------------------------------------------
up_down vip dr-vip "ip addr del $VIP/32 dev lo" "$VIP not on lo"
"$H" exec "$VM" "ip addr replace $VIP/32 dev lo" > /dev/null 2>&1 || true

# --- exec ---------------------------------------------------------------------------
up_down exec plugin "install -m 755 $OUT/plugin-critical $PLUGIN" "SANDBOX CRITICAL - plugin ran as poolkeeper"

# --- watchdog -----------------------------------------------------------------------
WD=$(guest "$G watchdog --seconds 25") || true
verdict watchdog "$WD"

# --- admin socket -------------------------------------------------------------------
"$H" exec "$VM" "
  intent() { curl -sf --max-time 5 http://127.0.0.1:9473/status | python3 -c 'import json,sys; i=json.load(sys.stdin)[\"services\"][\"sandbox-exec\"][\"intent\"]; print(i[\"intent\"], i[\"who\"])'; }
  echo \"member-depool-rc \$(runuser -u $MEMBER -- poolctl depool sandbox-exec --reason sandbox-test >/tmp/pk-member.out 2>&1; echo \$?)\"
  echo \"member-depool-out \$(head -n 1 /tmp/pk-member.out)\"
  echo \"after-member \$(intent)\"
  echo \"outsider-pool-rc \$(runuser -u $OUTSIDER -- poolctl pool sandbox-exec >/tmp/pk-outsider.out 2>&1; echo \$?)\"
  echo \"outsider-pool-out \$(head -n 1 /tmp/pk-outsider.out)\"
  echo \"after-outsider \$(intent)\"
  echo \"member-pool-rc \$(runuser -u $MEMBER -- poolctl pool sandbox-exec >/tmp/pk-member.out 2>&1; echo \$?)\"
  echo \"after-pool \$(intent)\"
  rm -f /tmp/pk-member.out /tmp/pk-outsider.out
" > "$OUT/admin.log" 2>&1 || true
a() { sed -n "s/^$1 //p" "$OUT/admin.log" | head -n 1; }
REFUSAL=$(a outsider-pool-out)
if [ "$(a member-depool-rc)" = 0 ] && [ "$(a after-member)" = "depooled $MEMBER" ] \
   && [ "$(a outsider-pool-rc)" != 0 ] && [ "$(a after-outsider)" = "depooled $MEMBER" ] \
   && grep -q "permission denied: $OUTSIDER is not root nor in group poolkeeper-admins" <<< "$REFUSAL" \
   && [ "$(a after-pool)" = "pooled $MEMBER" ]; then
  row admin PASS "$MEMBER (poolkeeper-admins): depool and pool done; $OUTSIDER: exit $(a outsider-pool-rc), \"$REFUSAL\""
else
  row admin FAIL "$(tr '\n' ';' < "$OUT/admin.log")"
fi

# --- socket activation across a restart ---------------------------------------------
SK=$(guest "$G restart-loop --every 20 --max-requests 3000 --max-seconds 120") || true
verdict socket "$SK"

"$H" exec "$VM" "journalctl -u poolkeeper.service --no-pager -o short-monotonic" > "$OUT/journal.log" 2>&1 || true

echo
echo "The sandbox is enough: $VM, poolkeeper.service as shipped"
FAILED=0
printf '%-9s %-5s %s\n' row result figures
for r in vip exec watchdog admin socket; do
  printf '%-9s %-5s %s\n' "$r" "${RESULT[$r]}" "${FIGURES[$r]}"
  [ "${RESULT[$r]}" = PASS ] || FAILED=1
done
exit $FAILED
