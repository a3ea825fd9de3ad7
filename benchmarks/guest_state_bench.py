"""Time the real guest's state endpoint (export / import through the
shipped ``guest_endpoint`` driver, from the hypervisor's namespace).

Boots one guest bed (:mod:`nova_netaware.replica.lab.guestbed`, root,
QEMU TCG), makes a small state with numbered requests, then measures:

* ``noop``: a request the endpoint refuses at once (``unknown op``): the
  cost of one connection to the endpoint, with nothing done;
* ``export`` and ``import`` of the small state, ``--n`` times each
  (export freezes the copy, import thaws it; they alternate), and the
  endpoint's own share of each (``server_us`` in its replies);
* with ``--clients`` / ``--log-lines``: one export and one import of a
  larger state built here (imported first, so it is the guest's state).

Prints one JSON document (medians, p90 and every sample, in ms). Run it
under the local-stack lock::

    flock /tmp/netaware-localstack.lock env PYTHONPATH=. \\
        .venv/bin/python benchmarks/guest_state_bench.py --n 10
"""

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time

from nova_netaware.replica.drivers import DriverError, StateBlob
from nova_netaware.replica.lab import guestbed
from replica import pct  # benchmarks/replica, beside this file


def _ms(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def _summary(xs):
    s = sorted(xs)
    return {'median': round(statistics.median(s), 2),
            'p90': round(pct(s, 90), 2),
            'samples': [round(x, 2) for x in xs]}


def big_state(epoch, clients, log_lines):
    """A canonical state text with ``clients`` clients and ``log_lines``
    log lines (the format of the guest's ``na_dump``)."""
    names = sorted('c%05d' % i for i in range(clients))
    per = max(1, log_lines // max(1, clients))
    out = ['netaware-guest-state 1', 'epoch %d' % epoch, 'counter 7',
           'total %d' % (per * clients)]
    out += ['client %s %d %d 0 0' % (c, per, per) for c in names]
    n = 0
    for k in range(1, per + 1):
        for c in names:
            if n < log_lines:
                out.append('log %s %d' % (c, k))
                n += 1
    return ('\n'.join(out) + '\n').encode()


def run(a):
    problem = guestbed.problem()
    if problem:
        raise SystemExit('cannot run: ' + problem)
    bed = guestbed.GuestBed(tempfile.mkdtemp(prefix='gsbench-'))
    out = {'loadavg_before': os.getloadavg()}
    try:
        bed.build()
        out['guest_boot_s'] = round(bed.start_guest(), 1)
        bed.route_from_hv()
        drv = bed.state_driver(state_timeout=60.0)
        for i in range(1, a.requests + 1):
            bed.req('bench%d' % (i % 3), i)
        noop = []
        for _ in range(a.n):
            t0 = time.perf_counter()
            try:
                drv._call({'op': 'no-such-op'})
            except DriverError:
                pass
            noop.append((time.perf_counter() - t0) * 1000.0)
        exp, imp = [], []
        epoch = drv.stats()['epoch']
        blob = None
        for _ in range(a.n):
            box = {}
            exp.append(_ms(lambda: box.update(b=drv.export_state('g'))))
            blob = box['b']
            epoch += 1
            imp.append(_ms(lambda: drv.import_state('g', blob, epoch)))
        # the endpoint's own share (it reports server_us: from its reading
        # the request line to its writing the reply)
        sexp, simp = [], []
        for _ in range(a.n):
            hdr, data = drv._call({'op': 'export'})
            sexp.append(hdr.get('server_us', float('nan')) / 1000.0)
            epoch += 1
            hdr, _ = drv._call({'op': 'import', 'size': len(data),
                                'sha256': hdr['sha256'], 'epoch': epoch},
                               data)
            simp.append(hdr.get('server_us', float('nan')) / 1000.0)
        out['state_size'] = len(blob.data)
        out['noop_ms'] = _summary(noop)
        out['export_ms'] = _summary(exp)
        out['import_ms'] = _summary(imp)
        out['export_server_ms'] = _summary(sexp)
        out['import_server_ms'] = _summary(simp)
        if a.clients or a.log_lines:
            epoch += 1
            data = big_state(epoch, a.clients, a.log_lines)
            b = StateBlob(data, hashlib.sha256(data).hexdigest())
            out['big'] = {'clients': a.clients, 'log_lines': a.log_lines,
                          'size': len(data),
                          'import_ms': round(_ms(
                              lambda: drv.import_state('g', b, epoch)), 1)}
            box = {}
            out['big']['export_ms'] = round(_ms(
                lambda: box.update(b=drv.export_state('g'))), 1)
            assert box['b'].data == data, 'the big state did not round-trip'
            drv.import_state('g', box['b'], epoch)
    finally:
        bed.destroy()
    out['loadavg_after'] = os.getloadavg()
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=10)
    p.add_argument('--requests', type=int, default=6,
                   help='numbered requests that make the small state')
    p.add_argument('--clients', type=int, default=0)
    p.add_argument('--log-lines', type=int, default=0)
    a = p.parse_args(argv)
    json.dump(run(a), sys.stdout, indent=1)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
