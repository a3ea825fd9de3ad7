"""Numbered ICMP echo requests from a client namespace, with every reply
recorded (arrival order and CLOCK_MONOTONIC time).

A reply's time is the client kernel's receive time (``SO_TIMESTAMPNS``),
not the moment this process got round to reading it: with the
switchover's path at real-time priority the reader thread read replies a
median 40-80 ms late, by different amounts at the two ends of a measured
gap. The read delay is kept (``read_lag``) for diagnosis.

A guest kernel answers each echo request once, at once, and nothing
retransmits one: a request lost, duplicated or reordered on its way (by the
data plane) shows as a missing, duplicated or out-of-order reply. That
makes echoes the strict packet-level check of a hold and replay at a real
guest's port, where the guest's TCP service would hide a loss behind a
retransmission.
"""

import os
import select
import socket
import struct
import threading
import time

from nova_netaware.replica.dataplane.netfilter import checksum


def echo_request(ident, seq, payload=b''):
    """An ICMP echo request (type 8) with ``ident`` and ``seq``."""
    hdr = struct.pack('!BBHHH', 8, 0, 0, ident, seq)
    csum = checksum(hdr + payload)
    return struct.pack('!BBHHH', 8, 0, csum, ident, seq) + payload


#: setsockopt name (Linux): SO_RCVBUF past rmem_max, for root
SO_RCVBUFFORCE = getattr(socket, 'SO_RCVBUFFORCE', 33)
#: setsockopt name and control message type (Linux): receive timestamps as
#: a struct timespec of CLOCK_REALTIME
SO_TIMESTAMPNS = getattr(socket, 'SO_TIMESTAMPNS', 35)
_TIMESPEC = struct.Struct('@qq')


def kernel_time(ancdata):
    """The CLOCK_REALTIME receive time in an ``SCM_TIMESTAMPNS`` control
    message of ``ancdata`` (from ``recvmsg``), or None."""
    for level, typ, data in ancdata:
        if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and \
                len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return sec + nsec * 1e-9
    return None


class EchoStream:
    """Sends numbered echoes to ``dst`` over ``sock`` (a raw ICMP socket,
    e.g. made in a namespace with ``ns_socket(..., SOCK_RAW,
    IPPROTO_ICMP)``) and records the replies carrying its identifier.

    Echoes are numbered 1, 2, ... without limit: the ICMP sequence field
    has 16 bits, so echo ``n`` goes out with identifier ``ident + (n - 1)
    // 65535`` and sequence ``(n - 1) % 65535 + 1``, and a reply is mapped
    back to ``n`` (a run at one echo per ms passes 65,535 in 66 s)."""

    def __init__(self, sock, dst, ident=None, payload_bytes=32):
        self.sock = sock
        self.dst = dst
        # a replay answers thousands of held echoes at once: with the
        # default buffer (~280 replies) the client's own socket dropped
        # replies the guest had sent (seen: 4,888 of 73,913 "lost")
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        self.ident = (os.getpid() ^ id(self)) & 0xffff \
            if ident is None else ident
        self.pad = b'n' * payload_bytes
        self.sent = {}        # n -> send time
        self.replies = []     # (n, receive time), in arrival order
        self.read_lag = []    # per reply: s from the kernel's receive to
        # our read
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._seq = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._recv, daemon=True)
        self._t.start()

    def _recv(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                data, anc, _f, _a = self.sock.recvmsg(65536, 64)
            except OSError:
                continue
            t = time.monotonic()
            lag = 0.0
            real = kernel_time(anc)
            if real is not None:
                # CLOCK_REALTIME -> CLOCK_MONOTONIC at this instant
                kt = real - (time.time() - time.monotonic())
                lag = max(0.0, t - kt)
                t -= lag
            ihl = (data[0] & 0x0f) * 4
            if len(data) < ihl + 8:
                continue
            typ, _code, _c, ident, seq = struct.unpack(
                '!BBHHH', data[ihl:ihl + 8])
            block = (ident - self.ident) & 0xffff
            n = block * 65535 + seq
            if typ == 0 and n in self.sent:
                self.replies.append((n, t))
                self.read_lag.append(lag)

    def send(self):
        """Send the next echo; returns its number (1, 2, ...)."""
        self._seq += 1
        n = self._seq
        ident = (self.ident + (n - 1) // 65535) & 0xffff
        pkt = echo_request(ident, (n - 1) % 65535 + 1, self.pad)
        self.sent[n] = time.monotonic()
        self.sock.sendto(pkt, (self.dst, 0))
        return n

    def send_many(self, n, interval):
        """``n`` echoes, one every ``interval`` seconds."""
        t0 = time.monotonic()
        for i in range(n):
            delay = t0 + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.send()

    def wait_replies(self, n, timeout):
        deadline = time.monotonic() + timeout
        while len(self.replies) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.replies)

    def rtts(self):
        return [t - self.sent[s] for s, t in self.replies if s in self.sent]

    def result(self):
        """Loss, duplicates and order over every echo sent so far."""
        seqs = [s for s, _ in self.replies]
        seen = set()
        dups = 0
        for s in seqs:
            if s in seen:
                dups += 1
            seen.add(s)
        missing = sorted(set(self.sent) - seen)
        # replies that came after a reply to a later echo: how many, and
        # the first few as (echo, highest echo answered before, arrival)
        late, top = [], 0
        for s, t in self.replies:
            if s < top:
                late.append((s, top, t))
            top = max(top, s)
        return {'sent': len(self.sent), 'replies': len(seqs),
                'missing': missing, 'duplicates': dups,
                'in_order': seqs == sorted(seqs),
                'late': len(late), 'first_late': late[:5]}

    def close(self):
        self._stop.set()
        self._t.join(2)
        self.sock.close()


def paced(interval, send, stop, skipped=None):
    """Call ``send()`` every ``interval`` seconds (on a fixed schedule, no
    drift) until ``stop`` is non-empty; for a sender thread.

    A sender that finds itself more than one interval behind (its thread
    waited for a CPU) skips the ticks it missed and sends once, instead of
    sending them back to back, and appends how many it skipped to
    ``skipped`` (a list) if given. A catch-up burst is not the offered
    load of one echo per interval, and it is loss of its own: bursts of
    250 and 300 echoes sent back to back to the TCG guest, with no data
    plane in the path, made it discard 56 and 7 of its own replies
    (``Ip.OutDiscards``), while bursts of 25-200 lost none."""
    t0 = time.monotonic()
    i = 0
    while not stop:
        i += 1
        delay = t0 + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -interval:
            behind = int(-delay / interval)
            i += behind
            if skipped is not None:
                skipped.append(behind)
        send()
