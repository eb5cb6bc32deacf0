#!/usr/bin/python3
"""What the director saw of one realserver in a window, for tests/hosts/rolling-reboot.sh.

  events.py DRIVER_LOG RS T_FROM T_TO [CLIENTS_JSON]

DRIVER_LOG is tests/vm/lbdriver.py's event file (seconds since the director's boot).
Prints one line per kind — the director's IPVS changes for RS, its conftool keys,
ProxyFetch's verdicts — as offsets from T_FROM, whether a service's pool was ever empty
(replayed from the log's start), and the clients' requests if CLIENTS_JSON is given.
The last line is machine-readable: "counts ipvs=N keys=N fetch_down=N empty=N failed=N"
(failed: HTTP and rsync requests).

director_view() and client_rows() are shared with table.py (a rolling reboot's table).
"""
import json
import sys


def director_view(dlog, rs, t0, t1=float("inf")):
    """The director's log replayed from its start; what it did about RS in [t0, t1].

    Returns (moves, keys, fetch, emptied): moves and keys as [(t, service, state)],
    fetch as [(t, "up"|"down")], emptied as [(t, service)] for each moment in the
    window at which a service had no realserver in."""
    inn, moves, keys, fetch, emptied = {}, [], [], [], []
    for line in open(dlog):
        w = line.split()
        if len(w) < 4:
            continue
        t = float(w[0])
        inside = t0 <= t <= t1
        if w[1] == "ipvs":
            s = inn.setdefault(w[2], set())
            (s.add if w[4] == "in" else s.discard)(w[3])
            if inside and not s:
                emptied.append((t, w[2]))
            if inside and w[3] == rs:
                moves.append((t, w[2], w[4]))
        elif w[1] == "key" and inside and w[3] == rs:
            keys.append((t, w[2], w[4]))
        elif w[1] == "fetch" and inside and w[2] == rs:
            fetch.append((t, w[3]))
    return moves, keys, fetch, emptied


def client_rows(cjson, t0, longest_op=False):
    """The clients' summary as table lines (offsets from t0), and the sum of the HTTP
    and rsync clients' failures (NFS clients' errors are printed, not counted: a client
    moved to another host meets handles it never gave out)."""
    s = json.load(open(cjson))
    head = "  client       ok  failed  longest stall  " + ("longest op  " if longest_op else "") + "failures (first .. last)"
    rows, failed = [head], 0
    for c in s["clients"]:
        span = "-" if not c["failed"] else "+%.1f .. +%.1f s" % (c["first_fail"] - t0, c["last_fail"] - t0)
        op = "  %8.2f s" % c["longest_op"] if longest_op else ""
        nfs = "  (remounts %d, reopens %d)" % (c["remounts"], c["reopens"]) if c["name"].startswith("nfs") else ""
        rows.append("  %-9s %5d  %6d  %11.2f s%s  %s%s" % (c["name"], c["ok"], c["failed"], c["longest_gap"], op, span, nfs))
        if not c["name"].startswith("nfs"):
            failed += c["failed"]
    return rows, failed


def main():
    dlog, rs, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    moves, keys, fetch, emptied = director_view(dlog, rs, t0, t1)
    print("  director: %s" % (", ".join("%s %s +%.1f" % (s, st, t - t0) for t, s, st in moves) or "no change"))
    print("  conftool: %s" % (", ".join("%s %s +%.1f" % (s, st, t - t0) for t, s, st in keys) or "no change"))
    print("  proxyfetch: %s" % (", ".join("%s +%.1f" % (st, t - t0) for t, st in fetch) or "no change"))
    print("  pool never empty: %s" % (
        "no: " + ", ".join("%s at +%.1f" % (s, t - t0) for t, s in emptied) if emptied else "yes"))
    failed = 0
    if len(sys.argv) > 5:
        rows, failed = client_rows(sys.argv[5], t0)
        print("\n".join(rows))
    print("counts ipvs=%d keys=%d fetch_down=%d empty=%d failed=%d" % (
        len(moves), len(keys), sum(1 for _, st in fetch if st == "down"), len(emptied), failed))


if __name__ == "__main__":
    main()
