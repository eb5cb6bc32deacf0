# Sourced by deploy/demo.sh and tests/deploy/readme_commands_test.sh.
# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL if it still runs after SECONDS
# (default 5); reaps it when it is a child. Nothing to do for an empty PID.
stop_pid() {
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  sp_i=0
  while kill -0 "$1" 2>/dev/null && [ $sp_i -lt $((${2:-5} * 10)) ]; do sleep 0.1; sp_i=$((sp_i + 1)); done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
