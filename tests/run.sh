#!/bin/sh
# The test command: installs what is missing (Debian 12, as root), builds, runs every
# test with ctest, then every fuzzer for a bounded time; with CI=true it also runs the
# unit tests under ASan+UBSan. Prints the time each stage took; a failing stage does
# not stop the later ones, and the run fails at the end.
#
#   tests/run.sh [ctest arguments...]         normal build (build/, the Debian package's
#                                             flags), tests (the real hosts, label
#                                             hosts, in a stage of their own, last),
#                                             fuzzers
#   tests/run.sh --asan [ctest arguments...]  ASan+UBSan build (build-asan/), all tests
#   tests/run.sh --tsan [ctest arguments...]  TSan build (build-tsan/): unit tests and
#                                             one integration test (or what the
#                                             arguments select)
#   tests/run.sh --fuzz                       only the fuzzers (build-fuzz/, clang)
#   tests/run.sh --no-fuzz [ctest args...]    normal tests without the fuzzers
# Environment: SANITIZE=address|thread is --asan|--tsan. FUZZ_SECONDS (default 25) is
# each fuzzer's run time; FUZZ_TARGETS (space separated) limits which run. CI=true adds
# the ASan+UBSan unit tests to the default run.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

mode=default
case "${1:-}" in
  --asan) mode=asan; shift ;;
  --tsan) mode=tsan; shift ;;
  --fuzz) mode=fuzz; shift ;;
  --no-fuzz) mode=nofuzz; shift ;;
esac
if [ "$mode" = default ] || [ "$mode" = nofuzz ]; then
  case "${SANITIZE:-}" in
    address) mode=asan ;;
    thread) mode=tsan ;;
    "") ;;
    *) echo "run.sh: SANITIZE must be address or thread" >&2; exit 2 ;;
  esac
fi

JOBS=$(nproc)
# ccache, and configure_build: build/ with the Debian package's flags.
. deploy/build-env.sh
LAUNCHER=$PK_LAUNCHER
# Sanitizer findings abort the process that made them, so the test fails.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp}"

TIMES=""
FAILED=""
stage_start=0
start() { stage_start=$(date +%s); echo "=== run.sh: $1"; }
done_stage() {
  t=$(( $(date +%s) - stage_start ))
  TIMES="$TIMES$(printf '%-34s %4d s' "$1" "$t")
"
}
summary() {
  echo "=== run.sh: time per stage"
  printf '%s' "$TIMES"
  if [ -n "$FAILED" ]; then echo "=== run.sh: FAILED:$FAILED"; fi
}
trap summary EXIT

start "packages"
deploy/packages.sh
done_stage "packages"

# build DIR NAME [cmake options...]: configure and build everything in DIR.
build() {
  dir=$1 name=$2
  shift 2
  start "build $name ($dir)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo $LAUNCHER "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
  done_stage "build $name"
}

# ctest_in DIR NAME [ctest arguments...]: a failure is recorded and the later stages
# still run; the script fails at the end. Tests run $CTEST_JOBS at a time (default: the
# number of cores); those that share something (a VM's core, the machine's dpkg) say so
# with RESOURCE_LOCK, the benchmarks with RUN_SERIAL. The stage's time is printed with
# the sum of the tests' own times (what one at a time would take).
ctest_in() {
  dir=$1 name=$2
  shift 2
  start "tests $name"
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j"${CTEST_JOBS:-$JOBS}" "$@") || FAILED="$FAILED [tests $name]"
  done_stage "tests $name"
  sum=$(awk '/^Test time = / { s += $4 } END { printf "%d", s }' "$dir/Testing/Temporary/LastTest.log" 2>/dev/null || echo 0)
  TIMES="$TIMES$(printf '%-34s %4d s' "  (the tests' own times, summed)" "$sum")
"
}

unit_targets() {  # the executables of the tests labelled unit, as configured in $1
  # (tests run by a script, like layers_test, have no target of their own)
  targets=$(cmake --build "$1" --target help | awk '$1 == "..." {print $2}')
  (cd "$1" && ctest -N -L unit | awk '/Test +#/ {print $3}') | grep -Fx -e "$targets"
}

run_fuzzers() {
  secs=${FUZZ_SECONDS:-25}
  start "build fuzzers (build-fuzz, clang)"
  cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DPOOLKEEPER_FUZZ=ON $LAUNCHER >/dev/null
  cmake --build build-fuzz -j"$JOBS" --target fuzzers
  done_stage "build fuzzers"
  targets=${FUZZ_TARGETS:-$(ls tests/fuzz/corpus)}
  mkdir -p build-fuzz/artifacts
  # $JOBS at a time (each fuzzer is one process on one core); their results after.
  start "fuzz ($(echo $targets | wc -w) targets, ${secs} s each, $JOBS at a time)"
  running=0
  for t in $targets; do
    # New inputs go to a scratch corpus; the committed seeds are only read.
    mkdir -p "build-fuzz/corpus/$t"
    ("build-fuzz/tests/fuzz/$t" -max_total_time="$secs" -timeout=25 -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/artifacts/$t-" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" \
      >"build-fuzz/$t.log" 2>&1; echo $? >"build-fuzz/$t.rc") &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait; running=0; fi
  done
  wait
  for t in $targets; do
    if [ "$(cat "build-fuzz/$t.rc")" != 0 ]; then
      tail -n 60 "build-fuzz/$t.log"
      echo "run.sh: fuzzer $t found a problem; the input is in build-fuzz/artifacts/ (log: build-fuzz/$t.log)" >&2
      FAILED="$FAILED [fuzz $t]"
    fi
    printf '%s: ' "$t"
    grep -E '^stat::number_of_executed_units|^Done' "build-fuzz/$t.log" | tr '\n' ' '
    echo
  done
  done_stage "fuzz ($(echo $targets | wc -w) targets)"
}

case "$mode" in
  asan)
    build build-asan "asan+ubsan" -DPOOLKEEPER_SANITIZE=address
    ctest_in build-asan "asan+ubsan" "$@"
    ;;
  tsan)
    build build-tsan "tsan" -DPOOLKEEPER_SANITIZE=thread
    if [ $# -gt 0 ]; then
      ctest_in build-tsan "tsan" "$@"
    else
      ctest_in build-tsan "tsan unit" -L unit
      ctest_in build-tsan "tsan agent_binary_test" -R '^agent_binary_test$'
    fi
    ;;
  fuzz)
    run_fuzzers
    ;;
  default | nofuzz)
    start "build normal (build, the Debian package's flags)"
    configure_build build
    cmake --build build -j"$JOBS"
    done_stage "build normal"
    # The real hosts (label hosts: a VM per host, each on a core of its own under
    # emulation) run alone after the rest, on the package the normal stage built with
    # the README's command (readme_commands_test); without a package from this run,
    # ctest builds it first. Their output (the scenarios' tables) is printed (-V).
    touch build/.tests-normal-start
    ctest_in build "normal" -LE hosts "$@"
    if [ -n "$(find build/deb -name 'poolkeeper_*.deb' -newer build/.tests-normal-start 2>/dev/null)" ]; then
      ctest_in build "hosts" -V -L hosts -FA '.*' "$@"
    else
      ctest_in build "hosts" -V -L hosts "$@"
    fi
    if [ "$mode" = default ]; then run_fuzzers; fi
    if [ "${CI:-}" = true ]; then
      start "build asan+ubsan unit tests (build-asan)"
      cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOOLKEEPER_SANITIZE=address \
        $LAUNCHER >/dev/null
      # shellcheck disable=SC2046
      cmake --build build-asan -j"$JOBS" --target $(unit_targets build-asan)
      done_stage "build asan+ubsan unit tests"
      ctest_in build-asan "asan+ubsan unit" -L unit
    fi
    ;;
esac
[ -z "$FAILED" ]
