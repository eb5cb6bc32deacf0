#!/usr/bin/python3
"""One rolling reboot's table, for tests/hosts/rolling-reboot.sh.

  table.py RS T_DEPOOL T_BOOTED T_BACK REBOOT_S CLIENTS_JSON DRIVER_LOG JOURNAL DEPOOL_OUT STATUS

Times are the director's clock (seconds since its boot, the clock of the driver's log
and the clients); REBOOT_S is the host's wall clock from the request to the guest's
multi-user.target again. Exits 1 when the reboot broke a promise: a failed HTTP or
rsync request, a journal that does not say the agent drained because systemd was taking
the host down, a depool that failed, an --until-boot intent still there after the boot,
or a service whose pool was empty at some moment from the depool on. The director's log
is read by events.py's director_view, as for the other scenarios. NFS clients' errors
and remounts are printed, not counted as broken.
"""
import json
import sys

from events import client_rows, director_view

rs, t_dep, t_boot, t_back, reboot_s, cjson, dlog, journal, depool_out, status = sys.argv[1:11]
t_dep, t_boot, t_back = float(t_dep), float(t_boot), float(t_back)
broken = []

print("=== rolling reboot of %s: poolctl depool --until-boot --reason reboot && systemctl reboot ===" % rs)
print("  steps (s after the depool): booted again +%.1f (systemctl reboot to multi-user.target: %s s "
      "wall clock), back in every service +%.1f" % (t_boot - t_dep, reboot_s, t_back - t_dep))
rows, failed = client_rows(cjson, t_dep, longest_op=True)
print("\n".join(rows))
for c in json.load(open(cjson))["clients"]:
    if c["failed"] and not c["name"].startswith("nfs"):
        broken.append("%d %s requests failed" % (c["failed"], c["name"]))

# The director's table replayed from the start: what it did about rs from the depool on.
moves, keys, fetch, emptied = director_view(dlog, rs, t_dep - 1)
for svc in ("nfs", "http", "rsync"):
    print("  director %-6s %s" % (svc + ":", ", ".join(
        "%s +%.1f" % (st, t - t_dep) for t, s, st in moves if s == svc) or "no change"))
for svc in ("nfs", "http", "rsync"):
    print("  conftool %-6s %s" % (svc + ":", ", ".join(
        "%s +%.1f" % (st, t - t_dep) for t, s, st in keys if s == svc) or "no change"))
print("  proxyfetch:     %s" % (", ".join("%s +%.1f" % (st, t - t_dep) for t, st in fetch) or "no change"))
empties = ", ".join("%s at +%.1f" % (s, t - t_dep) for t, s in emptied)
print("  pool never empty: %s" % ("no: " + empties if emptied else "yes"))
if emptied:
    broken.append("a pool was empty (%s)" % empties)

dep = open(depool_out, errors="replace").read().strip()
print("  depool: %s" % (dep.replace("\n", " | ") or "(no output)"))
if "error" in dep.lower() or "refus" in dep.lower():
    broken.append("the depool failed")

stops = [l.strip() for l in open(journal, errors="replace") if "stopping:" in l]
print("  agent's journal at the stop: %s" % (stops[0] if stops else "(no stop logged)"))
if not stops or "systemd is taking the host down" not in stops[0]:
    broken.append("the agent did not drain for a host shutdown")

st = open(status, errors="replace").read()
until_boot = [l.strip() for l in st.splitlines() if "until" in l.lower() and "boot" in l.lower()]
print("  after the boot, poolctl status: %s" % ("; ".join(until_boot) if until_boot else "no --until-boot intent left"))
if until_boot:
    broken.append("the --until-boot intent outlived the boot")

print("  verdict: %s" % ("BROKEN: " + "; ".join(broken) if broken else "ok"))
sys.exit(1 if broken else 0)
