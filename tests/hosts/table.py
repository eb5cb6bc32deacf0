#!/usr/bin/python3
"""One rolling reboot's table, for tests/hosts/rolling-reboot.sh.

  table.py RS T_DEPOOL T_BOOTED T_BACK REBOOT_S CLIENTS_JSON DRIVER_LOG JOURNAL DEPOOL_OUT STATUS

Times are the director's clock (seconds since its boot, the clock of the driver's log
and the clients); REBOOT_S is the host's wall clock from the request to the guest's
multi-user.target again. Exits 1 when the reboot broke a promise: a failed HTTP or
rsync request, a journal that does not say the agent drained because systemd was taking
the host down, a depool that failed, an --until-boot intent still there after the boot,
or a service whose pool was empty at some moment.
"""
import json
import sys

rs, t_dep, t_boot, t_back, reboot_s, cjson, dlog, journal, depool_out, status = sys.argv[1:11]
t_dep, t_boot, t_back = float(t_dep), float(t_boot), float(t_back)
broken = []

print("=== rolling reboot of %s: poolctl depool --until-boot --reason reboot && systemctl reboot ===" % rs)
print("  steps (s after the depool): booted again +%.1f (systemctl reboot to multi-user.target: %s s "
      "wall clock), back in every service +%.1f" % (t_boot - t_dep, reboot_s, t_back - t_dep))
s = json.load(open(cjson))
print("  client      ok  failed  longest stall  longest op  failures (first .. last)")
for c in s["clients"]:
    span = "-" if not c["failed"] else "+%.1f .. +%.1f s" % (c["first_fail"] - t_dep, c["last_fail"] - t_dep)
    print("  %-8s %5d  %6d  %11.2f s  %8.2f s  %s" % (
        c["name"], c["ok"], c["failed"], c["longest_gap"], c["longest_op"], span))
    if c["failed"]:
        broken.append("%d %s requests failed" % (c["failed"], c["name"]))

# The director's table replayed from the start: who is in each service when.
inn = {"http": set(), "rsync": set()}
emptied = []
moves = {"http": [], "rsync": []}
keys = {"http": [], "rsync": []}
fetch = []
for line in open(dlog):
    w = line.split()
    t = float(w[0])
    if w[1] == "ipvs" and w[2] in inn:
        (inn[w[2]].add if w[4] == "in" else inn[w[2]].discard)(w[3])
        if not inn[w[2]]:
            emptied.append("%s at +%.1f" % (w[2], t - t_dep))
        if t >= t_dep - 1 and w[3] == rs:
            moves[w[2]].append("%s +%.1f" % (w[4], t - t_dep))
    elif w[1] == "key" and w[2] in keys and t >= t_dep - 1 and w[3] == rs:
        keys[w[2]].append("%s +%.1f" % (w[4], t - t_dep))
    elif w[1] == "fetch" and t >= t_dep - 1 and w[2] == rs:
        fetch.append("%s +%.1f" % (w[3], t - t_dep))
for svc in ("http", "rsync"):
    print("  director %-6s %s" % (svc + ":", ", ".join(moves[svc]) or "no change"))
for svc in ("http", "rsync"):
    print("  conftool %-6s %s" % (svc + ":", ", ".join(keys[svc]) or "no change"))
print("  proxyfetch:     %s" % (", ".join(fetch) or "no change"))
print("  pool never empty: %s" % ("no: " + ", ".join(emptied) if emptied else "yes"))
if emptied:
    broken.append("a pool was empty (%s)" % ", ".join(emptied))

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
