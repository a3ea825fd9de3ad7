"""The test bed's UDP client: sends numbered requests at a fixed rate and
records every reply.

    python -m nova_netaware.replica.lab client --server IP --id ID \\
        --count N --out FILE [--start 1] [--rate 1000] [--timeout 60]
        [--expect N]

It writes ``FILE.started`` after the first request, ``FILE.sent`` after the
last, then ``FILE`` (JSON: what was sent, what came back, in which order,
and the server-side time each request was served).
"""

import argparse
import json
import os
import socket
import threading
import time

from nova_netaware.replica.lab.netns import DATA_PORT


def parse_args(argv):
    a = argparse.ArgumentParser(prog='lab client')
    a.add_argument('--server', required=True)
    a.add_argument('--port', type=int, default=DATA_PORT)
    a.add_argument('--id', required=True)
    a.add_argument('--count', type=int, required=True)
    a.add_argument('--start', type=int, default=1)
    a.add_argument('--rate', type=float, default=1000.0)
    a.add_argument('--timeout', type=float, default=60.0)
    a.add_argument('--out', required=True)
    a.add_argument('--expect', type=int,
                   help='stop waiting once this many replies arrived '
                        '(default: one per request sent)')
    o = a.parse_args(argv)
    if o.count < 0 or o.rate <= 0 or o.start < 1:
        a.error('--count >= 0, --rate > 0 and --start >= 1 are required')
    return o


def _receive(s, replies, errors, done):
    """Collect replies ``R <id> <seq> <total> <served_ns>`` until done."""
    s.settimeout(0.2)
    while not done.is_set():
        try:
            data = s.recv(2048)
        except socket.timeout:
            continue
        except OSError:  # ICMP error (e.g. refused by overflow policy)
            errors['icmp'] += 1
            continue
        p = data.split()
        if len(p) == 5 and p[0] == b'R':
            replies.append((int(p[2]), int(p[3]), int(p[4])))


def _send(s, o, first, last):
    """Send requests ``first..last`` at ``o.rate`` per second; returns
    (sent, send errors, start time, end time)."""
    t0 = time.monotonic()
    sent = 0
    send_err = 0
    cid = o.id.encode()
    for seq in range(first, last + 1):
        target = t0 + (seq - first) / o.rate
        d = target - time.monotonic()
        if d > 0:
            time.sleep(d)
        try:
            s.send(b'Q %s %d' % (cid, seq))
            sent += 1
        except OSError:
            send_err += 1
        if seq == first:
            with open(o.out + '.started', 'w') as f:
                f.write('1\n')
    return sent, send_err, t0, time.monotonic()


def main(argv):
    o = parse_args(argv)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE
    except OSError:
        pass
    s.connect((o.server, o.port))
    first, last = o.start, o.start + o.count - 1
    replies = []  # (seq, total, served_ns)
    errors = {'icmp': 0}
    done = threading.Event()
    t = threading.Thread(target=_receive, args=(s, replies, errors, done),
                         daemon=True)
    t.start()
    sent, send_err, t0, t_sent = _send(s, o, first, last)
    with open(o.out + '.sent', 'w') as f:
        f.write('%d\n' % sent)
    deadline = t_sent + o.timeout
    while time.monotonic() < deadline:
        got = {r[0] for r in replies}
        if o.expect is not None and len(got) >= o.expect:
            break
        if len(got) >= sent and sent == o.count:
            break
        time.sleep(0.01)
    done.set()
    t.join(1)
    seqs = [r[0] for r in replies]
    got = set(seqs)
    res = {'id': o.id, 'first': first, 'last': last, 'sent': sent,
           'send_errors': send_err, 'icmp_errors': errors['icmp'],
           'replies': len(replies), 'unique_replies': len(got),
           'missing': sorted(set(range(first, last + 1)) - got)[:1000],
           'missing_count': len(set(range(first, last + 1)) - got),
           'in_order': all(x < y for x, y in zip(seqs, seqs[1:])),
           'send_seconds': t_sent - t0,
           'served_ns': [r[2] for r in replies],
           'seqs': seqs}
    with open(o.out + '.tmp', 'w') as f:
        json.dump(res, f)
    os.rename(o.out + '.tmp', o.out)
    return 0
