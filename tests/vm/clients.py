#!/usr/bin/python3
"""Production-like clients of the VIP, for one scenario of stack.sh.

  clients.py --vip VIP --dir DIR --seconds N --stop FILE --src ADDR[,ADDR...] --data FILE
             [--only CLIENT[,CLIENT...]]

Runs until FILE exists or N seconds have passed (each loop bounded: no request
outlives the end by more than its own timeout), then writes DIR/summary.json and
DIR/events.log (every failure and remount, seconds since boot). Timeouts are
generous for software emulation (a request sent to a stopped server fails at once,
refused; a slow one shows in "longest op"). Clients:
  http       curl of http://VIP/data.bin (connect 5 s, all 20 s), a new connection
             each time, the source address rotating over --src (so the director's hash spreads them over
             both realservers); the body must equal --data;
  rsync      alternately a module listing (rsync://VIP/dumps/) and a transfer of
             data.bin (--contimeout=5 --timeout=20), with --address rotating as above;
  nfs-held   a kernel mount of VIP:/ (vers=4.1,ro,soft,timeo=20,retrans=1) with
             data.bin held open, a 4 KiB O_DIRECT pread every 200 ms;
  nfs-fresh  a second such mount: open + pread + close of data.bin every 200 ms.
Both NFS clients run production's remount helper: on ESTALE, `umount -l` and mount
again (a "remount"). A held descriptor the kernel has given up on (EBADF after its
open state was lost) is opened again by the reader ("reopen"), as an application
would. Every other error counts as a failure and the reader goes on. --only runs the
named clients alone (e.g. http,rsync: no NFS mounts).
"""
import argparse
import errno
import json
import os
import subprocess
import threading
import time

OPTS = "vers=4.1,ro,soft,timeo=20,retrans=1"


def now():
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class Recorder:
    def __init__(self, name, events):
        self.name, self.events = name, events
        self.ok = self.failed = self.remounts = self.reopens = 0
        self.first_fail = self.last_fail = None
        self.last_ok = None
        self.longest_gap = 0.0
        self.longest_op = 0.0
        self.begin = now()

    def success(self, started):
        t = now()
        self.ok += 1
        self.longest_gap = max(self.longest_gap, t - (self.last_ok or self.begin))
        self.longest_op = max(self.longest_op, t - started)
        self.last_ok = t

    def failure(self, what, started):
        t = now()
        self.failed += 1
        self.longest_op = max(self.longest_op, t - started)
        self.first_fail = self.first_fail or t
        self.last_fail = t
        self.events.add(self.name, "FAILED after %.2f s: %s" % (t - started, what))

    def note(self, what):
        self.events.add(self.name, what)

    def report(self, end):
        self.longest_gap = max(self.longest_gap, end - (self.last_ok or self.begin))
        return {k: getattr(self, k) for k in ("name", "ok", "failed", "remounts", "reopens",
                                               "first_fail", "last_fail", "longest_gap", "longest_op")}


class Events:
    def __init__(self, path):
        self.f = open(path, "w", buffering=1)
        self.lock = threading.Lock()

    def add(self, who, what):
        with self.lock:
            self.f.write("%.3f %s %s\n" % (now(), who, what))


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) else type(e).__name__


class Clients:
    def __init__(self, a):
        self.a = a
        self.srcs = a.src.split(",")
        self.data = open(a.data, "rb").read()
        self.end = now() + a.seconds
        os.makedirs(a.dir, exist_ok=True)
        self.events = Events(os.path.join(a.dir, "events.log"))

    def running(self):
        return now() < self.end and not os.path.exists(self.a.stop)

    def http_loop(self, r):
        out = os.path.join(self.a.dir, "http.body")
        i = 0
        while self.running():
            src = self.srcs[i % len(self.srcs)]
            i += 1
            t0 = now()
            p = subprocess.run(["curl", "-sS", "--interface", src, "--connect-timeout", "5",
                                "--max-time", "20", "-o", out, "-w", "%{http_code}",
                                "http://%s/data.bin" % self.a.vip], capture_output=True, text=True)
            if p.returncode != 0:
                r.failure("from %s: curl exit %d %s" % (src, p.returncode, p.stderr.strip()[:120]), t0)
            elif p.stdout != "200":
                r.failure("from %s: status %s" % (src, p.stdout), t0)
            elif open(out, "rb").read() != self.data:
                r.failure("from %s: wrong body" % src, t0)
            else:
                r.success(t0)
            time.sleep(0.05)

    def rsync_loop(self, r):
        dest = os.path.join(self.a.dir, "rsync-dest")
        os.makedirs(dest, exist_ok=True)
        i = 0
        while self.running():
            src = self.srcs[i % len(self.srcs)]
            listing = i % 2 == 0
            i += 1
            t0 = now()
            argv = ["rsync", "--contimeout=5", "--timeout=20", "--address=" + src]
            target = os.path.join(dest, "data.bin")
            if listing:
                argv.append("rsync://%s/dumps/" % self.a.vip)
            else:
                try:
                    os.unlink(target)
                except FileNotFoundError:
                    pass
                argv += ["rsync://%s/dumps/data.bin" % self.a.vip, target]
            try:
                p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                rc, text = p.returncode, (p.stdout + p.stderr).strip()
            except subprocess.TimeoutExpired:
                rc, text = -1, "killed after 30 s"
            what = "list" if listing else "transfer"
            if rc != 0:
                r.failure("%s from %s: exit %d %s" % (what, src, rc, text.replace("\n", " | ")[:160]), t0)
            elif listing and "data.bin" not in text:
                r.failure("list from %s: data.bin missing" % src, t0)
            elif not listing and open(target, "rb").read() != self.data:
                r.failure("transfer from %s: wrong data" % src, t0)
            else:
                r.success(t0)
            time.sleep(0.1)

    # --- NFS --------------------------------------------------------------------------
    def mount(self, mnt, r):
        os.makedirs(mnt, exist_ok=True)
        p = subprocess.run(["timeout", "20", "mount", "-t", "nfs4", "-o", OPTS, self.a.vip + ":/", mnt],
                           capture_output=True, text=True)
        if p.returncode != 0:
            r.note("mount failed: %s" % p.stderr.strip()[:120])
        return p.returncode == 0

    def remount(self, mnt, r):
        # Production's helper: on ESTALE, lazily unmount and mount again.
        r.remounts += 1
        r.note("ESTALE: umount -l and mount again")
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        return self.mount(mnt, r)

    def check(self, buf, off):
        if buf != self.data[off:off + len(buf)] or not buf:
            raise OSError(errno.EIO, "wrong data")

    def held_loop(self, r):
        mnt = os.path.join(self.a.dir, "held")
        path = os.path.join(mnt, "data.bin")
        fd = None
        i = 0
        while self.running():
            t0 = now()
            off = (i * 4096) % len(self.data)
            i += 1
            try:
                if fd is None:
                    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
                self.check(os.pread(fd, 4096, off), off)
                r.success(t0)
            except OSError as e:
                r.failure(errname(e), t0)
                if e.errno == errno.ESTALE:
                    if fd is not None:
                        os.close(fd)
                    fd = None
                    self.remount(mnt, r)
                elif e.errno == errno.EBADF and fd is not None:
                    os.close(fd)
                    fd = None
                    r.reopens += 1
                    r.note("EBADF: open again")
            time.sleep(0.2)
        if fd is not None:
            os.close(fd)

    def fresh_loop(self, r):
        mnt = os.path.join(self.a.dir, "fresh")
        path = os.path.join(mnt, "data.bin")
        i = 0
        while self.running():
            t0 = now()
            off = (i * 4096) % len(self.data)
            i += 1
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
                try:
                    self.check(os.pread(fd, 4096, off), off)
                finally:
                    os.close(fd)
                r.success(t0)
            except OSError as e:
                r.failure(errname(e), t0)
                if e.errno == errno.ESTALE:
                    self.remount(mnt, r)
            time.sleep(0.2)

    def run(self):
        loops = [("http", self.http_loop), ("rsync", self.rsync_loop),
                 ("nfs-held", self.held_loop), ("nfs-fresh", self.fresh_loop)]
        if self.a.only:
            only = self.a.only.split(",")
            loops = [(name, fn) for name, fn in loops if name in only]
        recs = {name: Recorder(name, self.events) for name, _ in loops}
        for name in [n for n in ("nfs-held", "nfs-fresh") if n in recs]:
            mnt = os.path.join(self.a.dir, name.split("-")[1])
            if not self.mount(mnt, recs[name]):
                raise SystemExit("clients.py: cannot mount %s:/ on %s" % (self.a.vip, mnt))
        # The held reader's descriptor is open before the scenario starts.
        t_ready = now()
        for r in recs.values():
            r.begin = t_ready
        threads = [threading.Thread(target=fn, args=(recs[name],)) for name, fn in loops]
        for t in threads:
            t.start()
        with open(os.path.join(self.a.dir, "started"), "w") as f:
            f.write("%.3f\n" % t_ready)
        for t in threads:
            t.join()
        end = now()
        for name in [n.split("-")[1] for n in ("nfs-held", "nfs-fresh") if n in recs]:
            subprocess.run(["umount", "-l", os.path.join(self.a.dir, name)], capture_output=True)
        with open(os.path.join(self.a.dir, "summary.json"), "w") as f:
            json.dump({"start": t_ready, "end": end,
                       "clients": [recs[name].report(end) for name, _ in loops]}, f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--vip", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--stop", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--only", default="")
    Clients(p.parse_args()).run()


if __name__ == "__main__":
    main()
