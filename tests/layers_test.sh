#!/bin/bash
# The layers (agent/CMakeLists.txt): a file may include only from its own folder and the
# folders below it. Fails with every include that points up, as FILE:LINE: include.
set -u
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$src" || exit 2
declare -A allowed=(
  [agent/base]="agent/base"
  [agent/model]="agent/base agent/model"
  [checks]="agent/base checks"
  [pybal-compat]="agent/base agent/model pybal-compat"
  [agent/config]="agent/base agent/model checks pybal-compat agent/config"
  [agent/publish]="agent/base agent/model agent/config agent/publish"
  [agent/admin]="agent/base agent/model agent/config pybal-compat agent/admin"
  [agent/runtime]="agent/base agent/model checks pybal-compat agent/config agent/publish agent/admin agent/runtime"
  [agent/cli]="agent/base agent/model checks pybal-compat agent/config agent/publish agent/admin agent/runtime agent/cli"
)
bad=0 files=0
for layer in "${!allowed[@]}"; do
  for f in "$layer"/*.cc "$layer"/*.h; do
    [ -e "$f" ] || continue
    files=$((files + 1))
    while IFS=: read -r line inc; do
      dir=$(dirname "$inc")
      ok=0
      for a in ${allowed[$layer]}; do [ "$dir" = "$a" ] && ok=1; done
      if [ $ok = 0 ]; then echo "$f:$line: includes $inc (layer $layer may use: ${allowed[$layer]})"; bad=$((bad + 1)); fi
    done < <(grep -n '^#include "' "$f" | sed -E 's/^([0-9]+):#include "([^"]*)".*/\1:\2/')
  done
done
# Every source file belongs to a layer.
stray=$(find agent checks pybal-compat -name '*.cc' -o -name '*.h' | while read -r f; do
  d=$(dirname "$f"); [ -n "${allowed[$d]+x}" ] || echo "$f"; done)
if [ -n "$stray" ]; then echo "files outside every layer:"; echo "$stray"; bad=$((bad + 1)); fi
[ "$files" -gt 50 ] || { echo "only $files files found under $src: wrong directory?"; exit 1; }
echo "$files files, $bad upward includes"
[ $bad = 0 ] || exit 1
# The check itself must catch one: a copy with checks/ including the runtime fails.
if [ -z "${LAYERS_SELF_TEST:-}" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  cp -r agent checks pybal-compat "$tmp"/
  echo '#include "agent/runtime/runtime.h"' >> "$tmp/checks/check.h"
  if LAYERS_SELF_TEST=1 "$0" "$tmp" >"$tmp/out" 2>&1 || ! grep -q 'checks/check.h:.*agent/runtime/runtime.h' "$tmp/out"; then
    echo "self-test: an upward include was not caught"; cat "$tmp/out"; exit 1
  fi
  echo "self-test: an injected upward include is caught"
fi
