#!/usr/bin/env python3
"""A TCP service that names its host, and a client that reuses its source port.

  portreuse.py serve NAME ADDR PORT          answer every connection with NAME, then close
  portreuse.py connect ADDR PORT SRC SPORT   connect from SRC:SPORT, print what answered:
                                             "answer NAME", "refused", "timeout" or
                                             "error ..."; exit 0 in every case

The server closes first, so the client ends with no TIME_WAIT and can bind the same
source port again at once: a new connection then carries the same addresses and ports
as the one before it, as a busy client's reused ephemeral port does.
"""
import socket
import sys


def serve(name, addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    s.listen(16)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(name.encode() + b"\n")
        except OSError:
            pass
        c.close()


def connect(addr, port, src, sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(5)
    try:
        s.bind((src, int(sport)))
        s.connect((addr, int(port)))
        data = b""
        while True:
            chunk = s.recv(64)
            if not chunk:
                break
            data += chunk
        print("answer " + data.decode(errors="replace").strip())
    except ConnectionRefusedError:
        print("refused")
    except socket.timeout:
        print("timeout")
    except OSError as e:
        print("error " + str(e))
    finally:
        s.close()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "connect":
        connect(*sys.argv[2:])
    else:
        sys.exit(__doc__)
