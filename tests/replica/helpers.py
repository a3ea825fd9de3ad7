"""Assertions shared by the replica tests."""

import threading
import time

from nova_netaware.replica.drivers.local import proc_state


def assert_exactly_once(lab, results, active):
    """Every request of every client processed once, in order, replied."""
    st = lab.guest_stats(active)
    assert st['ok']
    total = 0
    for r in results:
        cid = r['id']
        assert r['send_errors'] == 0, r['id']
        assert r['missing_count'] == 0, (cid, r['missing'][:20])
        assert r['replies'] == r['sent'], (cid, 'duplicate replies')
        assert r['in_order'], (cid, 'replies out of order')
        last, count, dups, gaps = st['clients'][cid]
        assert (last, count, dups, gaps) == (r['last'], r['sent'], 0, 0), \
            (cid, st['clients'][cid])
        total += r['sent']
    assert st['total'] == total
    return st


class StateSampler:
    """Samples the /proc state of both copies; records any instant at which
    both run.

    The two reads are not one instant: the sampling thread can lose the GIL
    (5 ms switch interval) between them, longer than a lab switchover takes,
    and then a copy read running before the switch and the other read
    running after it look like two at once (CI of 2026-12-04: one such
    sample, ``('S', 'R')``). So the first copy is read again after the
    second, as the libvirt sampler does (``cloudpair.Domains.sample``): two
    copies are proved running at once only when the first runs at both its
    reads and the second at the read between them."""

    def __init__(self, pids, interval=0.0005):
        self.pids = pids
        self.interval = interval
        self.samples = 0
        self.both_running = []
        self.seen = set()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            first, second = self.pids
            sts = (proc_state(first), proc_state(second), proc_state(first))
            self.samples += 1
            run = [s not in 'Tt' for s in sts]
            self.seen.add(tuple(run[:2]))
            if all(run):
                self.both_running.append((time.monotonic(), sts))
            time.sleep(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(2)
