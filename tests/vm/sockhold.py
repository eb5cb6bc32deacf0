#!/usr/bin/python3
"""Holds the agent's HTTP socket across restarts, as systemd's poolkeeper.socket does.

  sockhold.py ADDR:PORT PIDFILE -- AGENT ARGS...

Binds and listens on ADDR:PORT, then starts AGENT with the socket as fd 3 and
LISTEN_FDS=1 / LISTEN_PID (sd_listen_fds), and writes the agent's pid to PIDFILE
(removed when it exits). Then waits for signals:
  SIGUSR1  start the agent again if it is not running (a restart of the agent alone);
  SIGTERM  SIGTERM the agent if it runs, wait for it, close the socket and exit (the
           host going down: the socket unit stops after the service).
Health checks that arrive while no agent runs wait in the listen queue instead of
being refused. Nothing loops unbounded: the process only waits for signals.
"""
import os
import signal
import socket
import sys


def main():
    addr, port = sys.argv[1].rsplit(":", 1)
    pidfile = sys.argv[2]
    argv = sys.argv[sys.argv.index("--") + 1:]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    s.listen(512)
    sigs = {signal.SIGUSR1, signal.SIGTERM, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)

    def start():
        pid = os.fork()
        if pid == 0:
            if s.fileno() != 3:
                os.dup2(s.fileno(), 3)  # inheritable
            else:
                os.set_inheritable(3, True)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
            os.execve(argv[0], argv, env)
        with open(pidfile + ".tmp", "w") as f:
            f.write("%d\n" % pid)
        os.rename(pidfile + ".tmp", pidfile)
        return pid

    child = start()
    while True:
        sig = signal.sigwait(sigs)
        if child is not None:
            done, _ = os.waitpid(child, os.WNOHANG)
            if done == child:
                child = None
                try:
                    os.unlink(pidfile)
                except FileNotFoundError:
                    pass
        if sig == signal.SIGUSR1 and child is None:
            child = start()
        elif sig == signal.SIGTERM:
            if child is not None:
                os.kill(child, signal.SIGTERM)
                os.waitpid(child, 0)
                try:
                    os.unlink(pidfile)
                except FileNotFoundError:
                    pass
            s.close()
            return


if __name__ == "__main__":
    main()
