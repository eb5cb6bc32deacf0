#!/bin/bash
# The test's control channel: it writes ID.cmd into /vm-out/ctl; this runs each with
# bash in the background (so that `systemctl reboot` need not wait for its caller) and
# leaves ID.out and then ID.rc. /vm-out/hb is a heartbeat: the guest is alive (its
# uptime, and the file's time is when it was written).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
mkdir -p /vm-out/ctl
while :; do
  for f in /vm-out/ctl/*.cmd; do
    [ -e "$f" ] || continue
    b=${f%.cmd}
    mv "$f" "$b.run" || continue
    ( bash "$b.run" >"$b.out.tmp" 2>&1; rc=$?; mv "$b.out.tmp" "$b.out"; echo $rc >"$b.rc.tmp"; mv "$b.rc.tmp" "$b.rc" ) &
  done
  # Written aside and renamed: a starved guest left the file truncated and empty for
  # over 5 s between the shell's truncation and cut's write.
  cut -d' ' -f1 /proc/uptime > /vm-out/hb.tmp && mv /vm-out/hb.tmp /vm-out/hb
  sleep 0.5
done
