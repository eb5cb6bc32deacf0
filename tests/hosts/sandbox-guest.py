#!/usr/bin/env python3
"""The guest's half of tests/hosts/sandbox.sh: runs inside a host (as root), prints JSON.

  sandbox-guest.py wait-check CHECK STATE [--deadline S]
      polls the agent's /status every 100 ms until CHECK is in STATE (healthy,
      unhealthy); prints the check's state, last reason, the service's /health/<svc>
      answer and the seconds it took. Exit 1 past the deadline (default 60 s).
  sandbox-guest.py watchdog [--seconds S]
      samples poolkeeper.service's WatchdogUSec, WatchdogTimestampMonotonic,
      NRestarts and MainPID every 0.5 s for S seconds (default 25).
  sandbox-guest.py restart-loop [--every MS] [--max-requests N] [--max-seconds S]
      one HTTP request to the agent's port on a new connection every MS ms (20);
      `systemctl restart poolkeeper.service` runs after the first second; the loop
      ends 2 s after the restart returned, or after N requests (3000) or S seconds
      (120). Counts answered, refused and otherwise failed requests, the slowest
      answer, and the requests sent while the restart ran.
"""
import argparse
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

AGENT = ("127.0.0.1", 9473)
UNIT = "poolkeeper.service"


def get(path, timeout=5):
    try:
        with urllib.request.urlopen(f"http://{AGENT[0]}:{AGENT[1]}{path}", timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def wait_check(args):
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < args.deadline:
        try:
            _, body = get("/status")
            st = json.loads(body)
            c = st["checks"][args.check]
            last = c
            if c["state"] == args.state:
                svc = c["services"][0]
                code, text = get(f"/health/{svc}")
                print(json.dumps({"check": args.check, "state": c["state"],
                                  "reason": (c.get("last") or {}).get("reason", ""),
                                  "service": svc, "health_code": code,
                                  "health": text.strip(),
                                  "seconds": round(time.monotonic() - t0, 2)}))
                return 0
        except (OSError, ValueError, KeyError) as e:
            last = {"error": str(e)}
        time.sleep(0.1)
    print(json.dumps({"check": args.check, "want": args.state, "timeout": args.deadline,
                      "last": last}))
    return 1


def show():
    out = subprocess.run(["systemctl", "show", "-p", "WatchdogUSec,WatchdogTimestampMonotonic,NRestarts,MainPID",
                          UNIT], capture_output=True, text=True, timeout=30).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def watchdog(args):
    t0 = time.monotonic()
    samples = []
    while time.monotonic() - t0 < args.seconds:
        s = show()
        s["at"] = round(time.monotonic() - t0, 2)
        samples.append(s)
        time.sleep(0.5)
    stamps = sorted({int(s.get("WatchdogTimestampMonotonic") or 0) for s in samples} - {0})
    gaps = [(b - a) / 1e6 for a, b in zip(stamps, stamps[1:])]
    max_gap = round(max(gaps), 2) if gaps else None
    wd = samples[0].get("WatchdogUSec", "")
    limit = systemd_seconds(wd)
    nrestarts = sorted({s.get("NRestarts", "?") for s in samples})
    pids = sorted({s.get("MainPID", "?") for s in samples})
    ok = limit > 0 and len(stamps) >= 3 and max_gap is not None and max_gap < limit \
        and nrestarts == ["0"] and len(pids) == 1 and pids != ["0"]
    print(json.dumps({"ok": ok, "watchdog_usec": wd, "samples": len(samples), "stamps": len(stamps),
                      "max_gap_s": max_gap, "nrestarts": nrestarts, "main_pids": pids,
                      "text": f"WatchdogUSec={wd}; WatchdogTimestampMonotonic took {len(stamps)} values"
                              f" in {args.seconds:g} s, largest step {max_gap} s;"
                              f" NRestarts={','.join(nrestarts)}; MainPID {','.join(pids)}"}))
    return 0


def systemd_seconds(text):
    """systemctl show's time span ("10s", "1min 30s", "500ms") in seconds; 0 when unset."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600}
    total = 0.0
    for part in text.split():
        num = part.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = part[len(num):]
        if not num or unit not in units:
            return 0
        total += float(num) * units[unit]
    return total


def one_request(timeout):
    """'answered', 'refused' or 'error: …', and the seconds it took."""
    t = time.monotonic()
    try:
        with socket.create_connection(AGENT, timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        if data.startswith(b"HTTP/1."):
            return "answered", time.monotonic() - t
        return f"error: no status line ({data[:40]!r})", time.monotonic() - t
    except ConnectionRefusedError:
        return "refused", time.monotonic() - t
    except OSError as e:
        return f"error: {e}", time.monotonic() - t


def restart_loop(args):
    pid_before = show()["MainPID"]
    window = {}
    lock = threading.Lock()
    results = []

    def restart():
        time.sleep(1)
        window["start"] = time.monotonic()
        r = subprocess.run(["systemctl", "restart", UNIT], capture_output=True, text=True, timeout=120)
        window["end"] = time.monotonic()
        window["rc"] = r.returncode
        window["stderr"] = r.stderr.strip()

    def request():
        sent = time.monotonic()
        what, took = one_request(30)
        with lock:
            results.append((sent, what, took))

    threading.Thread(target=restart, daemon=True).start()
    t0 = time.monotonic()
    threads = []
    n = 0
    while n < args.max_requests and time.monotonic() - t0 < args.max_seconds:
        if "end" in window and time.monotonic() > window["end"] + 2:
            break
        th = threading.Thread(target=request, daemon=True)
        th.start()
        threads.append(th)
        n += 1
        time.sleep(args.every / 1000)
    for th in threads:
        th.join(timeout=35)
    pid_after = show()["MainPID"]
    with lock:
        done = list(results)
    errors = {}
    for _, what, _ in done:
        if what not in ("answered", "refused"):
            errors[what] = errors.get(what, 0) + 1
    during = [r for r in done if "start" in window and window["start"] <= r[0] <= window.get("end", r[0])]
    answered = sum(1 for r in done if r[1] == "answered")
    refused = sum(1 for r in done if r[1] == "refused")
    max_wait = round(max((r[2] for r in done), default=0), 3)
    restart_s = round(window["end"] - window["start"], 2) if "end" in window else None
    ok = window.get("rc") == 0 and refused == 0 and not errors and answered == n \
        and len(during) > 0 and pid_before != pid_after
    failed = f"{sum(errors.values())} failed" + (f" {json.dumps(errors)}" if errors else "")
    restart = f"restart {restart_s} s" if window.get("rc") == 0 else \
        f"restart rc {window.get('rc')} {window.get('stderr', '')!r}"
    print(json.dumps({"ok": ok, "sent": n, "finished": len(done), "answered": answered, "refused": refused,
                      "errors": errors, "max_wait_s": max_wait,
                      "max_wait_during_s": round(max((r[2] for r in during), default=0), 3),
                      "sent_during_restart": len(during), "restart_s": restart_s,
                      "restart_rc": window.get("rc"), "restart_stderr": window.get("stderr", ""),
                      "pid_before": pid_before, "pid_after": pid_after,
                      "text": f"{n} requests every {args.every:g} ms, {answered} answered, {refused} refused, {failed};"
                              f" {restart} with {len(during)} sent meanwhile; longest wait {max_wait} s;"
                              f" MainPID {pid_before} -> {pid_after}"}))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait-check")
    w.add_argument("check")
    w.add_argument("state", choices=["healthy", "unhealthy"])
    w.add_argument("--deadline", type=float, default=60)
    d = sub.add_parser("watchdog")
    d.add_argument("--seconds", type=float, default=25)
    r = sub.add_parser("restart-loop")
    r.add_argument("--every", type=float, default=20)
    r.add_argument("--max-requests", type=int, default=3000)
    r.add_argument("--max-seconds", type=float, default=120)
    a = p.parse_args()
    return {"wait-check": wait_check, "watchdog": watchdog, "restart-loop": restart_loop}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
