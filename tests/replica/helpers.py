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
    both run."""

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
            sts = tuple(proc_state(p) for p in self.pids)
            self.samples += 1
            run = [s not in 'Tt' for s in sts]
            self.seen.add(tuple(run))
            if all(run):
                self.both_running.append((time.monotonic(), sts))
            time.sleep(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(2)
