import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', 39555)); s.listen()
while True:
    c, _ = s.accept()
    try:
        c.settimeout(0.1)
        try: c.recv(100)
        except Exception: pass
        c.sendall((open('/tmp/hx/word').read().strip() + "\n").encode())
    except Exception: pass
    finally: c.close()
