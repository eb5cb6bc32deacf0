#!/usr/bin/python3
"""What the director saw of one realserver in a window, for tests/hosts/rolling-reboot.sh.

  events.py DRIVER_LOG RS T_FROM T_TO [CLIENTS_JSON]

DRIVER_LOG is tests/vm/lbdriver.py's event file (seconds since the director's boot).
Prints one line per kind — the director's IPVS changes for RS, its conftool keys,
ProxyFetch's verdicts — as offsets from T_FROM, whether a service's pool was ever empty
(replayed from the log's start), and the clients' requests if CLIENTS_JSON is given.
The last line is machine-readable: "counts ipvs=N keys=N fetch_down=N empty=N failed=N".
"""
import json
import sys

dlog, rs, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
cjson = sys.argv[5] if len(sys.argv) > 5 else None
inn = {}
emptied = []
moves, keys, fetch = [], [], []
for line in open(dlog):
    w = line.split()
    if len(w) < 4:
        continue
    t = float(w[0])
    if w[1] == "ipvs":
        s = inn.setdefault(w[2], set())
        (s.add if w[4] == "in" else s.discard)(w[3])
        if t0 <= t <= t1 and not s:
            emptied.append("%s at +%.1f" % (w[2], t - t0))
        if t0 <= t <= t1 and w[3] == rs:
            moves.append("%s %s +%.1f" % (w[2], w[4], t - t0))
    elif w[1] == "key" and t0 <= t <= t1 and w[3] == rs:
        keys.append("%s %s +%.1f" % (w[2], w[4], t - t0))
    elif w[1] == "fetch" and t0 <= t <= t1 and w[2] == rs:
        fetch.append("%s +%.1f" % (w[3], t - t0))
print("  director: %s" % (", ".join(moves) or "no change"))
print("  conftool: %s" % (", ".join(keys) or "no change"))
print("  proxyfetch: %s" % (", ".join(fetch) or "no change"))
print("  pool never empty: %s" % ("no: " + ", ".join(emptied) if emptied else "yes"))
failed = 0
if cjson:
    s = json.load(open(cjson))
    print("  client      ok  failed  longest stall  failures (first .. last)")
    for c in s["clients"]:
        span = "-" if not c["failed"] else "+%.1f .. +%.1f s" % (c["first_fail"] - t0, c["last_fail"] - t0)
        print("  %-8s %5d  %6d  %11.2f s  %s" % (c["name"], c["ok"], c["failed"], c["longest_gap"], span))
        failed += c["failed"]
print("counts ipvs=%d keys=%d fetch_down=%d empty=%d failed=%d" % (
    len(moves), len(keys), sum(1 for f in fetch if f.startswith("down")), len(emptied), failed))
