"""Link and packet-rate measurements of the replica benchmark (see
``benchmarks/replica_bench.py``): the inter-cloud link, the reference
NFQUEUE pass-through and the durable buffering rate."""

import os
import signal
import socket
import statistics
import sys
import threading
import time

from nova_netaware.replica import lab as lab_mod

HERE = os.path.dirname(os.path.abspath(__file__))


# ------------------------------------------------------------------ link
def measure_link(lab, nbytes=256 << 20):
    """TCP bulk bandwidth and UDP RTT between hv-a and hv-b."""
    srv = lab_mod.ns_socket(lab.ns('hv', 'b'), socket.AF_INET,
                            socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((lab_mod.LINK_IP['b'], 5999))
    srv.listen(1)
    got = {}

    def sink():
        c, _ = srv.accept()
        n = 0
        while True:
            d = c.recv(1 << 20)
            if not d:
                break
            n += len(d)
        got['n'] = n
        got['t'] = time.perf_counter()
        c.sendall(b'k')
        c.close()
    t = threading.Thread(target=sink)
    t.start()
    cli = lab_mod.ns_socket(lab.ns('hv', 'a'), socket.AF_INET,
                            socket.SOCK_STREAM)
    cli.connect((lab_mod.LINK_IP['b'], 5999))
    chunk = os.urandom(1 << 20)
    t0 = time.perf_counter()
    for _ in range(nbytes >> 20):
        cli.sendall(chunk)
    cli.shutdown(socket.SHUT_WR)
    cli.recv(1)
    t.join()
    bw = got['n'] / (got['t'] - t0)
    cli.close()
    srv.close()
    # RTT: UDP ping-pong
    us = lab_mod.ns_socket(lab.ns('hv', 'b'))
    us.bind((lab_mod.LINK_IP['b'], 5998))
    stop = threading.Event()

    def echo():
        us.settimeout(0.2)
        while not stop.is_set():
            try:
                d, a = us.recvfrom(64)
            except socket.timeout:
                continue
            us.sendto(d, a)
    et = threading.Thread(target=echo)
    et.start()
    uc = lab_mod.ns_socket(lab.ns('hv', 'a'))
    uc.settimeout(1)
    rtts = []
    for i in range(300):
        t1 = time.perf_counter()
        uc.sendto(b'%d' % i, (lab_mod.LINK_IP['b'], 5998))
        uc.recvfrom(64)
        rtts.append(time.perf_counter() - t1)
    stop.set()
    et.join()
    us.close()
    uc.close()
    return bw, statistics.median(rtts)


# ------------------------------------------------------------------ rates
def nfq_counters(pid, qnum):
    with open('/proc/%d/net/netfilter/nfnetlink_queue' % pid) as f:
        for line in f:
            p = line.split()
            if int(p[0]) == qnum:
                # queue_total, queue_dropped, user_dropped, id_sequence
                return int(p[2]), int(p[5]), int(p[6]), int(p[7])
    raise RuntimeError('queue %d not found' % qnum)


def saturated_rate(pid, qnum, start_traffic, n, done=None, timeout=120):
    """Rate at which the listener of queue ``qnum`` (process ``pid``, whose
    namespace holds the queue) takes ``n`` packets. The listener is stopped
    (SIGSTOP) while the burst is sent, so the kernel queue holds all ``n``
    packets; the clock runs from SIGCONT until every packet is processed
    (and ``done()``, e.g. committed): the listener's own rate, not the
    sender's."""
    base = nfq_counters(pid, qnum)[3]
    os.kill(pid, signal.SIGSTOP)
    try:
        proc = start_traffic()
        end = time.monotonic() + timeout
        while True:
            total, qdrop, udrop, idseq = nfq_counters(pid, qnum)
            if idseq - base >= n and proc.poll() is not None:
                break
            if time.monotonic() > end:
                raise RuntimeError('timed out queueing: %d of %d packets'
                                   % (idseq - base, n))
            time.sleep(0.005)
        queued = total
    finally:
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGCONT)
    while True:
        total, qdrop, udrop, idseq = nfq_counters(pid, qnum)
        now = time.perf_counter()
        if total == 0 and (done is None or done()):
            break
        if time.monotonic() > end:
            raise RuntimeError('timed out: %d packets still queued' % total)
        time.sleep(0.001)
    if queued < n:
        raise RuntimeError('only %d of %d packets were held in the kernel '
                           'queue (raise nfqueue_max_len)' % (queued, n))
    return n / (now - t0), qdrop, udrop


def blast(lab, x, cid, n):
    return lambda: lab.start_client(x, cid, n, 10_000_000, timeout=0.1)


def reference_passthrough(lab, n, qnum=20, max_len=65536):
    ns = lab.ns('hv', 'a')
    ifc = lab.ifname('v', 'a', 0)
    lab_mod.sh('ip', 'netns', 'exec', ns, 'iptables', '-w', '5', '-I',
               'FORWARD', '-o', ifc, '-j', 'NFQUEUE', '--queue-num',
               str(qnum))
    p = lab.spawn('nfq-ref', ns, [sys.executable, os.path.join(
        HERE, 'nfq_passthrough.py'), str(qnum), str(max_len)],
        'nfq-ref.log', nice=True)
    lab.wait_for(lambda: os.path.exists('/proc/%d/net' % p.pid) and
                 any(line.split()[0] == str(qnum) for line in open(
                     '/proc/%d/net/netfilter/nfnetlink_queue' % p.pid)),
                 20, 'reference queue')
    # like the buffering measurement, where the copy is paused: the guest
    # does not compete for the CPU (accepted packets wait in its socket)
    gpid = lab.guest_pid('a')
    os.kill(gpid, signal.SIGSTOP)
    try:
        return saturated_rate(p.pid, qnum, blast(lab, 'a', 'ref', n), n)
    finally:
        os.kill(gpid, signal.SIGCONT)
        lab.kill('nfq-ref')
        lab_mod.sh('ip', 'netns', 'exec', ns, 'iptables', '-w', '5', '-D',
                   'FORWARD', '-o', ifc, '-j', 'NFQUEUE', '--queue-num',
                   str(qnum), check=False)


def buffering_rate(lab, x, cid, n):
    st = lab.status(x)
    assert st['role'] == 'standby', st['role']
    before = st['buffer']['packets']
    qnum = 10 if x == 'a' else 11
    return saturated_rate(
        st['pid'], qnum, blast(lab, x, cid, n), n,
        done=lambda: lab.status(x)['buffer']['packets'] >= before + n)
