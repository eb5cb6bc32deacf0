#!/usr/bin/python3
"""Watches an agent's nfs checks through its /status (127.0.0.1:9473, in the caller's
network namespace) until each has passed once, or LIMIT seconds.

    watch_checks.py LIMIT OUTFILE CHECK...

Prints each change of a check's last reason with the minor version and the handles its
details carried (so a grace period that kept the handles shows them), then writes
CHECK=SECONDS (first pass after the start) or CHECK=never lines to OUTFILE, and
grace:CHECK=kept|lost|none: whether every "grace period" result carried both handles,
and reasons:CHECK=R1|R2|...: every reason seen.
"""
import json
import sys
import time
import urllib.request

limit, outfile, names = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
t0 = time.monotonic()
last, passed, grace, reasons = {}, {}, {}, {}
while time.monotonic() - t0 < limit and len(passed) < len(names):
    try:
        s = json.load(urllib.request.urlopen("http://127.0.0.1:9473/status", timeout=2))
    except Exception:
        time.sleep(0.5)
        continue
    for n in names:
        l = (s["checks"].get(n) or {}).get("last") or {}
        if not l:
            continue
        d = l.get("details") or {}
        if l.get("reason") == "grace period":
            kept = "fh" in d and "root_fh" in d
            grace[n] = "kept" if kept and grace.get(n, "kept") == "kept" else "lost"
        key = (l.get("reason"), "fh" in d, "root_fh" in d)
        reasons.setdefault(n, [])
        if l.get("reason") not in reasons[n]:
            reasons[n].append(l.get("reason"))
        if key != last.get(n):
            last[n] = key
            print("  +%5.1fs %-6s %-58s minor %s, root_fh %s, fh %s" % (
                time.monotonic() - t0, n, l.get("reason"), d.get("minor_version"),
                d.get("root_fh", "-")[:16], d.get("fh", "-")[:16]), flush=True)
        if l.get("result") == "passed" and n not in passed:
            passed[n] = time.monotonic() - t0
    time.sleep(0.5)
with open(outfile, "w") as f:
    for n in names:
        f.write("%s=%s\n" % (n, "%.1f" % passed[n] if n in passed else "never"))
    for n in names:
        f.write("grace:%s=%s\n" % (n, grace.get(n, "none")))
    for n in names:
        f.write("reasons:%s=%s\n" % (n, "|".join(reasons.get(n, []))))
