"""Reference guest service: a stateful UDP counter with a state endpoint.

It plays the "VM" in tests and benchmarks and documents the protocol the
shipped ``guest_endpoint`` state driver speaks.

Data (UDP, ``--port``): request ``Q <client> <seq>``; reply
``R <client> <seq> <total> <served_monotonic_ns>``. Every request with the
next sequence number of its client increments the global counter and the
client's counter; a sequence number already seen is counted as a duplicate
(and not counted again), a skipped one as a gap. So the final state proves
that every request was processed exactly once and in order per client.

State endpoint (TCP, ``--control-port``), one JSON line per request:

* ``{"op": "export"}`` -> ``{"ok": true, "size": N, "sha256": H,
  "last_served_ns": T}`` followed by N bytes of state. Pending datagrams
  are processed first, so the export is consistent with what was served.
* ``{"op": "import", "size": N, "sha256": H, "epoch": E}`` followed by N
  bytes -> ``{"ok": true, "sha256": H2}`` where H2 is computed from the state
  actually loaded. An import whose epoch is lower than the last imported one
  is refused (the epoch is a fencing token at the guest, too).
* ``{"op": "stats"}`` -> counters, checksum and served timestamps.

Pause is SIGSTOP and unpause SIGCONT, like Nova's pause of a VM's vCPUs.
"""

import argparse
import hashlib
import json
import os
import select
import socket
import sys
import time


class State:

    def __init__(self, pad_bytes=0):
        self.total = 0
        self.clients = {}  # id -> [last_seq, count, dups, gaps]
        self.epoch = 0
        self.pad = os.urandom(pad_bytes) if pad_bytes else b''

    def doc(self):
        return json.dumps({'total': self.total, 'clients': self.clients,
                           'epoch': self.epoch}, sort_keys=True).encode()

    def serialize(self):
        return self.doc() + b'\0' + self.pad

    def digest(self):
        """SHA-256 of serialize(), without building it."""
        h = hashlib.sha256(self.doc())
        h.update(b'\0')
        h.update(self.pad)
        return h.hexdigest()

    @classmethod
    def load(cls, blob):
        doc, sep, pad = blob.partition(b'\0')
        if not sep:
            raise ValueError('state blob has no separator')
        d = json.loads(doc)
        st = cls()
        st.total = int(d['total'])
        st.clients = {k: list(v) for k, v in d['clients'].items()}
        st.epoch = int(d['epoch'])
        st.pad = pad
        return st

    def apply(self, client, seq):
        c = self.clients.get(client)
        if c is None:
            c = self.clients[client] = [0, 0, 0, 0]
        if seq <= c[0]:
            c[2] += 1
            return False
        if seq != c[0] + 1:
            c[3] += 1
        c[0] = seq
        c[1] += 1
        self.total += 1
        return True


class Guest:

    def __init__(self, host, port, control_port, pad_bytes=0):
        self.state = State(pad_bytes)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:  # root may exceed rmem_max; replay bursts must not overflow
            self.udp.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # RCVBUFFORCE
        except OSError:
            self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.udp.bind((host, port))
        self.udp.setblocking(False)
        self.ctl = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ctl.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ctl.bind((host, control_port))
        self.ctl.listen(8)
        self.last_served_ns = 0
        self.first_served_after_import_ns = 0
        self.served = 0
        self.bad_requests = 0
        self.imports = 0

    def drain(self):
        n = 0
        while True:
            try:
                data, addr = self.udp.recvfrom(2048)
            except BlockingIOError:
                return n
            self.handle(data, addr)
            n += 1

    def handle(self, data, addr):
        parts = data.split()
        if len(parts) != 3 or parts[0] != b'Q' or not parts[2].isdigit():
            self.bad_requests += 1
            return
        client = parts[1].decode(errors='replace')
        seq = int(parts[2])
        self.state.apply(client, seq)
        now = time.monotonic_ns()
        self.last_served_ns = now
        if not self.first_served_after_import_ns:
            self.first_served_after_import_ns = now
        self.served += 1
        try:
            self.udp.sendto(b'R %s %d %d %d' % (parts[1], seq,
                                                self.state.total, now), addr)
        except OSError:
            pass

    def control(self, conn):
        conn.settimeout(30)
        f = conn.makefile('rb')
        line = f.readline(65536)
        try:
            req = json.loads(line)
            op = req['op']
        except (ValueError, KeyError, TypeError):
            conn.sendall(b'{"ok": false, "error": "bad request"}\n')
            return
        if op == 'export':
            # the agent fenced the data path before asking: everything that
            # was let through is already in the socket (delivery on the veth
            # is synchronous), so one drain gives a consistent cut
            self.drain()
            doc = self.state.doc()
            h = hashlib.sha256(doc)
            h.update(b'\0')
            h.update(self.state.pad)
            hdr = {'ok': True, 'size': len(doc) + 1 + len(self.state.pad),
                   'sha256': h.hexdigest(),
                   'last_served_ns': self.last_served_ns}
            conn.sendall(json.dumps(hdr).encode() + b'\n' + doc + b'\0')
            conn.sendall(self.state.pad)
        elif op == 'import':
            size = int(req.get('size', -1))
            epoch = int(req.get('epoch', 0))
            blob = f.read(size) if size >= 0 else b''
            if size < 0 or len(blob) != size:
                return self._err(conn, 'short import: %d of %d bytes'
                                 % (len(blob), size))
            try:
                st = State.load(blob)
            except (ValueError, KeyError, TypeError) as e:
                return self._err(conn, 'bad state blob: %s' % e)
            if epoch < self.state.epoch:
                return self._err(conn, 'stale epoch %d < %d'
                                 % (epoch, self.state.epoch))
            # the checksum proves what was loaded: it is computed from the
            # live state object re-serialized, and a mismatch is refused
            # before the state is adopted
            h = st.digest()
            if h != req.get('sha256'):
                return self._err(conn, 'checksum mismatch: loaded state %s, '
                                       'expected %s' % (h, req.get('sha256')))
            st.epoch = epoch
            self.state = st
            self.imports += 1
            self.first_served_after_import_ns = 0
            conn.sendall(json.dumps({'ok': True, 'sha256': h}).encode()
                         + b'\n')
        elif op == 'stats':
            self.drain()
            blob = self.state.serialize()
            conn.sendall(json.dumps({
                'ok': True, 'total': self.state.total,
                'clients': self.state.clients, 'epoch': self.state.epoch,
                'served': self.served, 'bad_requests': self.bad_requests,
                'imports': self.imports, 'state_size': len(blob),
                'sha256': hashlib.sha256(blob).hexdigest(),
                'last_served_ns': self.last_served_ns,
                'first_served_after_import_ns':
                    self.first_served_after_import_ns}).encode() + b'\n')
        else:
            self._err(conn, 'unknown op %r' % (op,))

    @staticmethod
    def _err(conn, msg):
        conn.sendall(json.dumps({'ok': False, 'error': msg}).encode() + b'\n')

    def serve(self):
        while True:
            r, _, _ = select.select([self.udp, self.ctl], [], [], 1.0)
            if self.udp in r:
                self.drain()
            if self.ctl in r:
                conn, _ = self.ctl.accept()
                with conn:
                    try:
                        self.control(conn)
                    except OSError:
                        pass


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--host', default='0.0.0.0')
    p.add_argument('--port', type=int, default=7000)
    p.add_argument('--control-port', type=int, default=7001)
    p.add_argument('--pad-bytes', type=int, default=0,
                   help='extra state ("memory") carried on every transfer')
    p.add_argument('--pid-file')
    a = p.parse_args(argv)
    if a.pad_bytes < 0:
        p.error('--pad-bytes must be >= 0')
    g = Guest(a.host, a.port, a.control_port, a.pad_bytes)
    if a.pid_file:
        tmp = a.pid_file + '.tmp'
        with open(tmp, 'w') as f:
            f.write('%d\n' % os.getpid())
        os.rename(tmp, a.pid_file)
    sys.stdout.write('guest ready\n')
    sys.stdout.flush()
    g.serve()


if __name__ == '__main__':
    main()
