#!/usr/bin/python3
"""Rounds of `systemctl kill` timed inside the guest (run by tests/hosts/unit-kill.sh).

    unit-round.py --row NAME --unit U --check C --service S [--key URL] [--signal SIG]
                  [--rounds N] [--restart start|auto|cont] [--probe-log FILE]
                  [--via cgroup|systemctl]

Each round: wait until the service is back (/health/S 200 and, with --key, the conftool
key pooled=yes) and the check has had a probe pass since; wait for the check's next probe
(the --probe-log file, where the server logs the check's requests, grows by the line
--probe-end names, the one a probe's end writes; else /status checks.C.last.time
changes) so the kill lands just after a probe, the worst case for polling; then SIG to
every process of U's cgroup, read again until no new one appears (what `systemctl kill
-s SIG U` does; --via systemctl runs systemctl, whose own start-up takes
up to seconds under emulation) and poll /health/S (and the key) every 20 ms until it
turns 503 (and `no`). The elapsed time runs from the signal's effect on the unit's main
process (gone, a zombie or stopped, seen every 5 ms) to the first answer seen out, on
the guest's CLOCK_MONOTONIC; since_probe_s is how long after the probe that effect came.
Then the server is brought back: `systemctl start U` (start), its own Restart= (auto), or
`systemctl kill -s CONT U` (cont). One JSON line per round on stdout.

Every wait has a deadline; a missed one prints {"error": ...} and exits 1.
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse

AGENT = "http://127.0.0.1:9473"
POLL = 0.02


_conns = {}


def get(url, timeout=2.0):
    """(status, body) of a GET; (0, reason) when nothing answered. One kept-alive
    connection per host: polling every 20 ms must not eat the guest's one emulated CPU
    with connection set-ups."""
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    for attempt in (0, 1):
        c = _conns.get(u.netloc)
        if c is None:
            c = _conns[u.netloc] = http.client.HTTPConnection(u.netloc, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        except (http.client.HTTPException, OSError) as e:
            c.close()
            del _conns[u.netloc]
            if attempt:
                return 0, str(e).encode()
    return 0, b""


def health(service):
    return get(f"{AGENT}/health/{service}")[0]


def key_pooled(url):
    """The conftool key's `pooled` ("yes"/"no"), or "" when it cannot be read."""
    status, body = get(url)
    if status != 200:
        return ""
    try:
        return json.loads(json.loads(body)["node"]["value"]).get("pooled", "")
    except (ValueError, KeyError, TypeError):
        return ""


def check_status(check):
    status, body = get(f"{AGENT}/status")
    if status != 200:
        return {}
    try:
        return json.loads(body)["checks"][check]
    except (ValueError, KeyError):
        return {}


def file_size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return -1


def proc_state(pid):
    """The state letter of /proc/PID/stat ("R", "S", "T", "Z"...), "gone" without it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def probe_ended(path, size, end_text):
    """Whether `path` grew past `size` by a line containing `end_text` (any growth when
    it is empty)."""
    if file_size(path) <= size:
        return False
    if not end_text:
        return True
    with open(path, "rb") as f:
        f.seek(size)
        return end_text.encode() in f.read()


def cgroup_kill(procs, sig):
    """The signal to every process in the cgroup, read again until no new one appears
    (as systemd's cg_kill does): a child a server forks meanwhile is not missed."""
    done = set()
    for _ in range(20):
        try:
            with open(procs) as f:
                pids = {int(p) for p in f.read().split()} - done
        except OSError:
            return
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        done |= pids


def fail(row, what):
    print(json.dumps({"row": row, "error": what}), flush=True)
    sys.exit(1)


def wait_for(row, what, cond, deadline_s):
    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            fail(row, f"not {what} within {deadline_s} s")
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--row", required=True)
    ap.add_argument("--unit", required=True)
    ap.add_argument("--check", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--key", default="")
    ap.add_argument("--signal", default="KILL")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--restart", choices=["start", "auto", "cont"], default="start")
    ap.add_argument("--probe-log", default="", help="a file that grows with each probe")
    ap.add_argument("--probe-end", default="",
                    help="with --probe-log: the text of the line a probe's end writes there "
                         "(default: any growth)")
    ap.add_argument("--via", choices=["cgroup", "systemctl"], default="cgroup")
    ap.add_argument("--deadline", type=float, default=60.0, help="per detection")
    a = ap.parse_args()

    def back():
        if health(a.service) != 200:
            return False
        return not a.key or key_pooled(a.key) == "yes"

    for n in range(1, a.rounds + 1):
        wait_for(a.row, "back in (health 200, key yes)", back, 180)
        # A passing probe since the service came back, then the next probe's result.
        wait_for(a.row, f"check {a.check} passing",
                 lambda: check_status(a.check).get("last", {}).get("result") == "passed", 60)
        unit_before = subprocess.run(["systemctl", "show", "-P", "ActiveState", a.unit],
                                     capture_output=True, text=True).stdout.strip()
        pid = subprocess.run(["systemctl", "show", "-P", "MainPID", a.unit],
                             capture_output=True, text=True).stdout.strip()
        if pid in ("", "0"):
            fail(a.row, f"round {n}: {a.unit} has no main process")
        procs = f"/sys/fs/cgroup/system.slice/{a.unit}/cgroup.procs"
        if not os.path.exists(procs):
            fail(a.row, f"round {n}: no {procs}")
        if a.probe_log:
            # The server logs each of the check's probes (and only those): nginx one line
            # at its end, rsyncd several, of which --probe-end marks the end (the agent
            # has closed the connection). Seen every 5 ms.
            size = file_size(a.probe_log)
            end = time.monotonic() + 60
            while not probe_ended(a.probe_log, size, a.probe_end):
                if time.monotonic() > end:
                    fail(a.row, f"round {n}: no probe's end in {a.probe_log} within 60 s")
                time.sleep(0.005)
            t_probe = time.monotonic()
        else:
            before = check_status(a.check).get("last", {}).get("time")
            wait_for(a.row, f"check {a.check} probed again",
                     lambda: check_status(a.check).get("last", {}).get("time") != before, 60)
            t_probe = time.monotonic()
        t_start = time.monotonic()
        if a.via == "systemctl":
            kill = subprocess.Popen(["systemctl", "kill", "-s", a.signal, a.unit])
        else:
            # What `systemctl kill -s SIG U` does (the signal to every process of the
            # unit's cgroup), without systemctl's own start-up (a new process and a bus
            # connection: up to seconds under emulation), so that the kill lands just
            # after the probe.
            kill = None
            cgroup_kill(procs, getattr(signal, "SIG" + a.signal))
        # The signal's effect on the main process (dead, a zombie or stopped), seen
        # every 5 ms: the clock of the rows starts there.
        end = t_start + a.deadline
        t_kill = None if kill else time.monotonic()
        while proc_state(pid) in ("R", "S", "D"):
            if t_kill is None and kill.poll() is not None:
                t_kill = time.monotonic()
            if time.monotonic() > end:
                fail(a.row, f"round {n}: {a.unit}'s main process {pid} still running "
                            f"{a.deadline} s after systemctl kill")
            time.sleep(0.005)
        t0 = time.monotonic()
        t_health = t_key = None
        end = t0 + a.deadline
        while t_health is None or (a.key and t_key is None):
            if t_kill is None and kill.poll() is not None:
                t_kill = time.monotonic()
            if t_health is None and health(a.service) == 503:
                t_health = time.monotonic() - t0
            if a.key and t_key is None and key_pooled(a.key) == "no":
                t_key = time.monotonic() - t0
            if time.monotonic() > end:
                if kill:
                    kill.wait()
                fail(a.row, f"round {n}: not out within {a.deadline} s "
                            f"(health {health(a.service)}, key {key_pooled(a.key) if a.key else '-'})")
            time.sleep(POLL)
        if kill and kill.wait() != 0:
            fail(a.row, f"round {n}: systemctl kill exited {kill.returncode}")
        if t_kill is None:
            t_kill = time.monotonic()
        st = check_status(a.check)
        unit = st.get("unit") or {}
        unit_during = subprocess.run(["systemctl", "show", "-P", "ActiveState", a.unit],
                                     capture_output=True, text=True).stdout.strip()
        print(json.dumps({
            "row": a.row, "round": n, "health_s": round(t_health, 3),
            "key_s": round(t_key, 3) if t_key is not None else None,
            "systemctl_s": round(t_kill - t_start, 3), "signal_s": round(t0 - t_start, 3),
            "since_probe_s": round(t0 - t_probe, 3),
            "unit_before": unit_before,
            "unit_after": unit_during, "reason": st.get("last", {}).get("reason", ""),
            "unit_text": unit.get("text", ""),
        }), flush=True)
        if a.restart == "start":
            subprocess.run(["systemctl", "reset-failed", a.unit], check=False)
            if subprocess.run(["systemctl", "start", a.unit]).returncode != 0:
                fail(a.row, f"round {n}: systemctl start {a.unit} failed")
        elif a.restart == "cont":
            subprocess.run(["systemctl", "kill", "-s", "CONT", a.unit], check=True)
    wait_for(a.row, "back in after the last round", back, 180)


if __name__ == "__main__":
    main()
