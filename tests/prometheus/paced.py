"""A paced TCP sender and a sink, run inside the test's "guest"
namespaces: ``python -m tests.prometheus.paced sink PORT`` and
``python -m tests.prometheus.paced send HOST PORT KBITPS``.

The sender writes whole 1,000-byte chunks so that the payload sent by
time t is ``KBITPS * 1000 / 8 * t`` bytes, never ahead of schedule; a
sender starved of CPU (2 shared cores) catches up at most 2 s of backlog
and skips the rest. It runs until killed.
"""

import socket
import sys
import threading
import time

CHUNK = 1000
MAX_WRITE = 64000
BEHIND = 2.0          # seconds of backlog a late sender may catch up


def sink(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('0.0.0.0', port))
    srv.listen(16)
    print('ready', flush=True)

    def drain(conn):
        while conn.recv(65536):
            pass
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()


def send(host, port, kbitps):
    rate = kbitps * 1000 / 8.0                 # payload bytes per second
    deadline = time.monotonic() + 20
    while True:
        try:
            s = socket.create_connection((host, port), timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    print('ready', flush=True)
    data = b'x' * MAX_WRITE
    start = time.monotonic()
    sent = 0
    while True:
        due = rate * (time.monotonic() - start)
        if due - sent > rate * BEHIND:          # fell far behind: skip
            sent = due - rate * BEHIND
        n = int(due - sent) // CHUNK * CHUNK
        while n > 0:
            k = min(n, MAX_WRITE)
            s.sendall(data[:k])
            sent += k
            n -= k
        time.sleep(0.01)


def main():
    if sys.argv[1] == 'sink':
        sink(int(sys.argv[2]))
    else:
        send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))


if __name__ == '__main__':
    main()
