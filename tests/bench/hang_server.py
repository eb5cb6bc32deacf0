#!/usr/bin/env python3
"""A TCP server on a free loopback port that accepts every connection, reads what the
client sends and never answers: an HTTP check pointed at it hangs until its timeout.
A connection is closed when the client closes it. Prints "PORT PID" on stdout (the PID
is its own, which a launcher such as a pyenv shim may not return), then runs until
killed.   tests/bench/hang_server.py
"""
import os
import selectors
import socket
import sys

sel = selectors.DefaultSelector()
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(1024)
listener.setblocking(False)
sel.register(listener, selectors.EVENT_READ)
print(listener.getsockname()[1], os.getpid(), flush=True)
sys.stdout.close()

while True:
    for key, _ in sel.select():
        sock = key.fileobj
        if sock is listener:
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ)
            continue
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:  # the client gave up: forget the connection
            sel.unregister(sock)
            sock.close()
