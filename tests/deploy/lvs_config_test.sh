#!/bin/sh
# `poolctl lvs-config` on the shipped example config, with its etcd password file
# absent and no agent running: each format parses with its consumer's own reader —
# PyBal's INI (Python configparser with interpolation, so %% escapes; list literals),
# the service catalog (YAML, checked against the Wmflib::Service::Lvs shape), HAProxy
# (`haproxy -c`, in an empty network namespace so no name is looked up on the network,
# the two hosts resolving through a private /etc/hosts: no warning allowed).
set -eu
poolctl=$1 example=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pw=$(sed -n 's/^password_file *= *"\([^"]*\)".*/\1/p' "$example")
[ -n "$pw" ] || { echo "the example config names no password_file"; exit 1; }
# The config points at a password file that must not be there for this test; the
# host is named as on a real host (not this machine's name).
sed -e "s|$pw|$tmp/absent/etcd-password|" \
    -e 's|^# hostname defaults to.*|hostname = "clouddumps1001.example.org"|' "$example" > "$tmp/poolkeeper.toml"
grep -q '^hostname = "clouddumps1001.example.org"' "$tmp/poolkeeper.toml" || { echo "cannot name the host"; exit 1; }
fail=0
for f in pybal service-catalog haproxy; do
  if ! "$poolctl" lvs-config --config "$tmp/poolkeeper.toml" --format "$f" > "$tmp/$f.out" 2> "$tmp/$f.err"; then
    echo "lvs-config --format $f failed: $(cat "$tmp/$f.err")"; fail=1
  fi
done
"$poolctl" pybal-config --config "$tmp/poolkeeper.toml" > "$tmp/alias.out"
cmp -s "$tmp/alias.out" "$tmp/pybal.out" || { echo "pybal-config differs from lvs-config --format pybal"; fail=1; }
if "$poolctl" lvs-config --config "$tmp/poolkeeper.toml" --format nginx > /dev/null 2> "$tmp/bad.err"; then
  echo "an unknown format was accepted"; fail=1
fi
grep -q 'unknown --format "nginx"' "$tmp/bad.err" || { echo "bad error: $(cat "$tmp/bad.err")"; fail=1; }
[ $fail = 0 ] || exit 1

python3 - "$tmp/pybal.out" <<'PY'
import ast, configparser, sys
c = configparser.ConfigParser()
c.read(sys.argv[1])
seen = {}
for s in c.sections():
    mons = ast.literal_eval(c.get(s, 'monitors'))
    assert isinstance(mons, list), s
    if 'ProxyFetch' in mons:
        urls = ast.literal_eval(c.get(s, 'ProxyFetch.url'))
        assert isinstance(urls, list) and urls, s
    seen[s] = (c.get(s, 'ip'), c.get(s, 'port'), c.get(s, 'scheduler'), mons, c.get(s, 'config'))
pools = 'etcd://etcd1001.example.org:2379/conftool/v1/pools/eqiad/dumps/'
assert seen['dumps_nfs_2049'] == ('198.51.100.10', '2049', 'sh', [], pools + 'nfs'), seen
assert seen['dumps_http_443'] == ('198.51.100.10', '443', 'wrr', ['ProxyFetch'], pools + 'http'), seen
assert seen['dumps_rsync_873'] == ('198.51.100.10', '873', 'wrr', ['IdleConnection'], pools + 'rsync'), seen
print("pybal: %d stanzas parse" % len(seen))
PY

python3 - "$tmp/service-catalog.out" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
cat = doc['service::catalog']
classes = {'low-traffic', 'high-traffic1', 'high-traffic2'}
schedulers = {'rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'mh'}
for name, svc in cat.items():
    lvs = svc['lvs']
    assert set(lvs) <= {'enabled', 'class', 'scheduler', 'conftool', 'depool_threshold', 'monitors',
                        'bgp', 'protocol', 'ipip_encapsulation'}, (name, set(lvs))
    assert lvs['enabled'] is True and lvs['class'] in classes and lvs['scheduler'] in schedulers, name
    assert set(lvs['conftool']) == {'cluster', 'service'} and all(lvs['conftool'].values()), name
    assert isinstance(lvs['depool_threshold'], str) and lvs['depool_threshold'], name
    assert isinstance(lvs['monitors'], dict) and set(lvs['monitors']) <= {'ProxyFetch', 'IdleConnection', 'UDP'}, name
    assert isinstance(svc['port'], int), name
nfs = cat['dumps-nfs']['lvs']
assert nfs['scheduler'] == 'mh' and nfs['monitors'] == {}, nfs
assert cat['dumps-http']['lvs']['monitors']['ProxyFetch']['url'] == ['https://dumps.example.org/pybal-health/http']
assert 'IdleConnection' in cat['dumps-rsync']['lvs']['monitors']
print("service-catalog: %d entries parse" % len(cat))
PY
grep -q "Liberica accepts only mh" "$tmp/service-catalog.out" || { echo "the catalog does not say why mh"; exit 1; }

# Every server is a host at its service's port (not the agent's: the peers are agent
# URLs); with the two hosts resolving (documentation addresses, in a private
# /etc/hosts) haproxy -c must pass with no warning — an unresolvable or malformed
# address would be a warning and a disabled server.
bad=$(awk '$1 == "backend" { b = $2 } $1 == "server" { print b, $3 }' "$tmp/haproxy.out" |
      awk '{ split($2, a, ":"); want = ($1 == "nfs" ? 2049 : $1 == "http" ? 443 : 873)
             if (a[1] !~ /^clouddumps100[12]\.example\.org$/ || a[2] != want || a[3] != "") print }')
[ -z "$bad" ] || { echo "server addresses not HOST:SERVICE_PORT: $bad"; exit 1; }
[ "$(grep -c '^    server ' "$tmp/haproxy.out")" = 6 ] || { echo "want 2 servers per backend"; cat "$tmp/haproxy.out"; exit 1; }
printf '192.0.2.11 clouddumps1001.example.org\n192.0.2.12 clouddumps1002.example.org\n' > "$tmp/hosts"
unshare -n -m sh -c 'mount --bind "$1" /etc/hosts && haproxy -c -f "$2"' sh "$tmp/hosts" "$tmp/haproxy.out" \
  > "$tmp/haproxy.log" 2>&1 || { cat "$tmp/haproxy.log"; exit 1; }
if grep -qi 'warning' "$tmp/haproxy.log"; then cat "$tmp/haproxy.log"; echo "haproxy -c warned"; exit 1; fi
grep -q "agent-check agent-port 9474" "$tmp/haproxy.out" || { echo "no agent-check"; exit 1; }
echo "haproxy: $(grep -c '^backend ' "$tmp/haproxy.out") backends valid"
echo "1 passed, 0 failed"
