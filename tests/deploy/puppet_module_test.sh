#!/bin/sh
# The Puppet module: puppet-lint (warnings fail), `puppet parser validate`, the EPP
# template, rspec-puppet compiling a clouddumps-like pair, and each host's rendered
# config passing the agent's own `--check-config` (with the etcd password file the
# module would write, 0600). Runs on a copy: rspec-puppet writes fixtures beside specs.
set -eu
module=$1
poolkeeper=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -a "$module" "$tmp/poolkeeper"
cd "$tmp/poolkeeper"
puppet-lint --fail-on-warnings manifests functions
puppet parser validate manifests functions
puppet epp validate templates/poolkeeper.toml.epp
python3 -c 'import json, sys; json.load(open("metadata.json"))'
mkdir "$tmp/render"
printf 's3cret\n' > "$tmp/render/etcd-password"
chmod 600 "$tmp/render/etcd-password"
PK_RENDER_DIR=$tmp/render PK_PASSWORD_FILE=$tmp/render/etcd-password \
  rspec --pattern 'spec/classes/*_spec.rb' > "$tmp/rspec.log" 2>&1 || { cat "$tmp/rspec.log"; exit 1; }
tail -n 3 "$tmp/rspec.log"
n=0
for f in "$tmp"/render/*.toml; do
  [ -e "$f" ] || continue
  "$poolkeeper" --check-config "$f"
  n=$((n + 1))
done
[ $n = 2 ] || { echo "expected 2 rendered configs, found $n"; exit 1; }
echo "1 passed, 0 failed"
