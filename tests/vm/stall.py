#!/usr/bin/python3
"""What an NFS client sees when the realserver serving it leaves the IPVS pool.

  stall.py FILE LIMIT_SECONDS -- COMMAND...

Opens FILE (on an NFS mount) and reads from it, runs COMMAND (the `ipvsadm -d` of the
serving realserver), then from that moment on reads in two threads until a fresh open
succeeds again (and the held descriptor got 3 more tries) or LIMIT_SECONDS pass:
  held:  pread() on the descriptor opened before the change;
  fresh: open() + read() + close() of FILE.
Both read with O_DIRECT, so that every read goes to the server.
Prints one line per attempt (seconds after COMMAND, duration, result) and a summary.
"""
import errno
import os
import subprocess
import sys
import threading
import time


def drop_caches():
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def outcome(fn):
    try:
        n = fn()
        return "ok (%d bytes)" % n
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def main():
    path, limit = sys.argv[1], float(sys.argv[2])
    command = sys.argv[sys.argv.index("--") + 1:]
    # O_DIRECT: every read goes to the server (a dropped page cache would have to be
    # dropped again before each read, and dropping it waits for reads in flight).
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    size = os.fstat(fd).st_size
    print("before: held read", outcome(lambda: len(os.pread(fd, 4096, 0))), flush=True)
    drop_caches()

    subprocess.run(command, check=True)
    t0 = time.monotonic()
    fresh_ok = threading.Event()
    lines = []
    lock = threading.Lock()

    def record(kind, i, start, took, result):
        with lock:
            lines.append((kind, start, took, result))
            print("%-5s #%-2d at +%6.2f s  took %6.2f s  %s" % (kind, i, start, took, result), flush=True)

    def fresh_read():
        f = os.open(path, os.O_RDONLY | os.O_DIRECT)
        try:
            return len(os.pread(f, 4096, 0))
        finally:
            os.close(f)

    offsets = iter(range(4096, max(size, 8192), 4096))

    def held_read():
        return len(os.pread(fd, 4096, next(offsets, 0)))

    def loop(kind, fn):
        # fresh: until it reads; held: until it reads, or 3 more tries after fresh did.
        i = after = 0
        while time.monotonic() - t0 < limit:
            i += 1
            start = time.monotonic()
            result = outcome(fn)
            record(kind, i, start - t0, time.monotonic() - start, result)
            if result.startswith("ok"):
                if kind == "fresh":
                    fresh_ok.set()
                return
            if fresh_ok.is_set():
                after += 1
                if after >= 3:
                    return
            time.sleep(0.5)

    threads = [threading.Thread(target=loop, args=("held", held_read)),
               threading.Thread(target=loop, args=("fresh", fresh_read))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os.close(fd)

    def summary(kind):
        rows = sorted(r for r in lines if r[0] == kind)
        rows.sort(key=lambda r: r[1])
        if not rows:
            return "%-5s no attempt" % kind
        seq = []
        for r in rows:
            res = r[3].split(" ")[0]
            if seq and seq[-1][0] == res:
                seq[-1][1] += 1
            else:
                seq.append([res, 1])
        results = ", ".join(res if n == 1 else "%s x%d" % (res, n) for res, n in seq)
        ok = [r for r in rows if r[3].startswith("ok")]
        end = ("reads again %.2f s after the change" % (ok[0][1] + ok[0][2])) if ok \
            else "no read within %.0f s" % limit
        return "%-5s first read blocked %.2f s; results: %s; %s" % (kind, rows[0][2], results, end)

    print("summary: " + summary("held"))
    print("summary: " + summary("fresh"))


if __name__ == "__main__":
    main()
