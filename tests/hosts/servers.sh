#!/bin/sh
# In a realserver guest (tests/hosts), as root: the servers' configs the scenarios use.
# nginx serves /srv/dumps as dumps.example.org on port 80 with the health snippet of
# deploy/examples; the rsync daemon serves it as the module `dumps`; /srv/dumps holds
# canary.txt. Starting the servers is left to the caller.
#   servers.sh [--probe-logs]
# --probe-logs: the checks' probes, and only they, logged (nginx's access log of the
# canary in /var/log/nginx/canary.log, rsyncd's in /var/log/rsyncd-probes.log), so a
# scenario can act just after one.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
canary_log="" rsync_log=""
if [ "${1:-}" = --probe-logs ]; then
  canary_log='  location = /canary.txt { access_log /var/log/nginx/canary.log; }'
  rsync_log='log file = /var/log/rsyncd-probes.log'
fi
mkdir -p /srv/dumps
echo 'poolkeeper canary' > /srv/dumps/canary.txt
chmod 644 /srv/dumps/canary.txt
cp "$root/deploy/examples/nginx-health.conf" /etc/nginx/snippets/poolkeeper-health.conf
rm -f /etc/nginx/sites-enabled/*
cat > /etc/nginx/sites-enabled/dumps <<EOF
server {
  listen 80 default_server;
  server_name dumps.example.org;
  root /srv/dumps;
  access_log off;
$canary_log
  include /etc/nginx/snippets/poolkeeper-health.conf;
}
EOF
cat > /etc/rsyncd.conf <<EOF
reverse lookup = no
$rsync_log
[dumps]
  path = /srv/dumps
  read only = true
EOF
