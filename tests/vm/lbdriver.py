#!/usr/bin/python3
"""Drives an IPVS director as PyBal (or Liberica) drives production's.

  lbdriver.py --vip VIP --prefix PREFIX --etcd URL --log FILE --seconds N
              [--depool remove|quiesce] HOST=IP...

Runs in the director's namespace next to the IPVS services (VIP:80, :2049, :873, made
by the caller, which also picks the scheduler). HOST is the realserver's conftool name
(the last part of <prefix>/<service>/<HOST>), IP its address. A realserver is in a
service's IPVS table exactly when:
  - http:  its conftool key says pooled=yes AND ProxyFetch passes: a GET of
           http://IP/pybal-health/http (Host: dumps.example.org, the URL the README
           gives PyBal; nginx proxies it to the agent's /health/http) every second,
           PyBal's own 5 s timeout, 200 = up; one failure is down, one success is up;
  - nfs, rsync: its conftool key says pooled=yes (PyBal cannot ask port 2049 or 873
           anything; NFS has no monitor at all, so that a held host stays in through
           its reboot).
A realserver that leaves is removed (`ipvsadm -d`), not set to weight 0: that is what
PyBal does on a depool, and it is what `net.ipv4.vs.expire_nodest_conn` acts on (a
weight-0 destination stays "available", so its connections would never be expired and
the sysctl would change nothing). Note what removal costs: IPVS drops every packet of
a connection whose destination was removed (expire_nodest_conn only decides whether
the entry is expired at once, so that the client's next SYN is scheduled again, or
lingers), so a request in flight at the removal is lost whatever the realserver does.
`--depool quiesce` instead sets weight 0 on the way out (and 1 on the way back):
established connections go on, new ones go elsewhere only when the scheduler has its
fallback flag (mh-fallback, sh-fallback): without it the sources hashed to a weight-0
destination are refused. Like PyBal's depool-threshold (0.5), a removal that
would leave fewer than half of a service's realservers in is refused (logged).

The conftool keys are watched as PyBal's etcd driver does: GET recursive, then
long-polls with wait=true&recursive=true&waitIndex=N, a full re-read on errorCode 401
and after any error.

FILE gets one line per event, with seconds since boot (/proc/uptime's clock):
  <t> key <service> <host> <pooled>
  <t> fetch <host> up|down <detail>
  <t> ipvs <service> <host> in|out
  <t> refused <service> <host> (depool-threshold)
The driver exits after N seconds or on SIGTERM.
"""
import argparse
import json
import math
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

SERVICES = {"http": 80, "nfs": 2049, "rsync": 873}


def now():
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class Driver:
    def __init__(self, a):
        self.a = a
        self.hosts = dict(h.split("=", 1) for h in a.hosts)
        self.lock = threading.Lock()
        self.logf = open(a.log, "a", buffering=1)
        self.pooled = {}   # (svc, host) -> "yes"/"no"/...
        self.fetch_up = {}  # host -> bool
        self.inipvs = {(s, h): False for s in SERVICES for h in self.hosts}
        self.stop = threading.Event()

    def log(self, *words):
        with self.lock:
            self.logf.write("%.3f %s\n" % (now(), " ".join(str(w) for w in words)))

    def want(self, svc, host):
        ok = self.pooled.get((svc, host)) == "yes"
        if svc == "http":
            ok = ok and self.fetch_up.get(host, False)
        return ok

    def apply(self):
        # Called with self.lock held is not required: serialised by apply_lock.
        for svc, port in SERVICES.items():
            for host, ip in self.hosts.items():
                w, cur = self.want(svc, host), self.inipvs[(svc, host)]
                if w == cur:
                    continue
                if not w:
                    n_in = sum(1 for h in self.hosts if self.inipvs[(svc, h)])
                    if n_in - 1 < math.ceil(0.5 * len(self.hosts)):
                        if self.refused.get((svc, host)) != True:
                            self.log("refused", svc, host, "(depool-threshold)")
                        self.refused[(svc, host)] = True
                        continue
                self.refused[(svc, host)] = False
                vs = "%s:%d" % (self.a.vip, port)
                rs = "%s:%d" % (ip, port)
                if self.a.depool == "quiesce" and self.present.get((svc, host)):
                    cmd = ["ipvsadm", "-e", "-t", vs, "-r", rs, "-g", "-w", "1" if w else "0"]
                elif w:
                    cmd = ["ipvsadm", "-a", "-t", vs, "-r", rs, "-g", "-w", "1"]
                else:
                    cmd = ["ipvsadm", "-d", "-t", vs, "-r", rs]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode == 0:
                    self.inipvs[(svc, host)] = w
                    self.present[(svc, host)] = self.present.get((svc, host)) or w
                    self.log("ipvs", svc, host, "in" if w else "out")
                else:
                    self.log("ipvsadm-error", svc, host, r.stderr.strip().replace("\n", " | "))

    def changed(self):
        with self.apply_lock:
            self.apply()

    # --- ProxyFetch ---------------------------------------------------------------
    def fetch_loop(self, host, ip):
        url = "http://%s/pybal-health/http" % ip
        while not self.stop.is_set():
            t0 = now()
            try:
                req = urllib.request.Request(url, headers={"Host": "dumps.example.org"})
                with urllib.request.urlopen(req, timeout=5) as r:
                    up, detail = r.status == 200, "status %d" % r.status
            except urllib.error.HTTPError as e:
                up, detail = False, "status %d" % e.code
            except Exception as e:  # connection refused, timeout, reset
                up, detail = False, type(e).__name__ + ": " + str(e)[:80]
            if self.fetch_up.get(host) != up:
                self.fetch_up[host] = up
                self.log("fetch", host, "up" if up else "down", detail.replace(" ", "_"))
                self.changed()
            self.stop.wait(max(0.0, 1.0 - (now() - t0)))

    # --- conftool -----------------------------------------------------------------
    def set_key(self, key, value):
        rest = key[len(self.a.prefix) + 1:].split("/")
        if len(rest) != 2:
            return
        svc, host = rest[0], rest[1].split(".")[0]
        if svc not in SERVICES or host not in self.hosts:
            return
        pooled = "(deleted)"
        if value is not None:
            try:
                pooled = json.loads(value).get("pooled", "?")
            except ValueError:
                pooled = "?"
        if self.pooled.get((svc, host)) != pooled:
            self.pooled[(svc, host)] = pooled
            self.log("key", svc, host, pooled)
            self.changed()

    def watch_loop(self):
        base = self.a.etcd + "/v2/keys" + self.a.prefix
        index, need_read = 0, True
        while not self.stop.is_set():
            try:
                if need_read:
                    with urllib.request.urlopen(base + "?recursive=true", timeout=3) as r:
                        body = json.load(r)
                        index = int(r.headers.get("X-Etcd-Index", "0"))
                    for s in body["node"].get("nodes", []):
                        for h in s.get("nodes", []):
                            self.set_key(h["key"], h.get("value"))
                    need_read = False
                url = "%s?recursive=true&wait=true&waitIndex=%d" % (base, index + 1)
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        body = json.load(r)
                except TimeoutError:
                    continue
                except urllib.error.URLError as e:
                    if isinstance(e.reason, TimeoutError):
                        continue
                    raise
                n = body.get("node", {})
                gone = body.get("action") in ("delete", "expire")
                if not n.get("dir"):
                    self.set_key(n.get("key", ""), None if gone else n.get("value"))
                index = n.get("modifiedIndex", index)
            except urllib.error.HTTPError as e:
                try:
                    code = json.load(e).get("errorCode")
                except Exception:
                    code = None
                self.log("watch-error", "http", e.code, "errorCode", code)
                need_read = True
                self.stop.wait(0.2)
            except Exception as e:
                self.log("watch-error", type(e).__name__, str(e)[:80].replace(" ", "_"))
                need_read = True
                self.stop.wait(0.2)

    def run(self):
        self.apply_lock = threading.Lock()
        self.present = {}  # (svc, host) -> in the IPVS table (any weight)
        self.refused = {}
        threads = [threading.Thread(target=self.watch_loop, daemon=True)]
        for host, ip in self.hosts.items():
            threads.append(threading.Thread(target=self.fetch_loop, args=(host, ip), daemon=True))
        for t in threads:
            t.start()
        self.log("driver", "started", " ".join("%s=%s" % hi for hi in self.hosts.items()))
        self.stop.wait(self.a.seconds)
        self.stop.set()
        self.log("driver", "stopped")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--vip", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--etcd", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--seconds", type=float, default=900)
    p.add_argument("--depool", choices=("remove", "quiesce"), default="remove")
    p.add_argument("hosts", nargs="+")
    d = Driver(p.parse_args())
    signal.signal(signal.SIGTERM, lambda *_: d.stop.set())
    d.run()


if __name__ == "__main__":
    main()
