#!/bin/sh
# The test command: installs what is missing (Debian 12, as root), builds in build/,
# and runs every test with ctest. Usage: tests/run.sh [ctest arguments...]
set -eu
cd "$(dirname "$0")/.."
deploy/packages.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cd build
exec ctest --output-on-failure --timeout 600 "$@"
