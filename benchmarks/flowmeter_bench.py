#!/usr/bin/env python3
"""Cost of one flow-meter scrape against the number of guest pairs (root).

    sudo .venv/bin/python benchmarks/flowmeter_bench.py \
        [--pairs 2 100 1000 10000] [--repeat 5]

For each size, in a private network namespace: installs the meter's
table (nova_netaware.flowmeter.nft), fills its set with that many pairs
(with counters, as the kernel adds them), then times what a scrape does,
``Nft.read()`` (``ip netns exec NS nft -j list set`` plus parsing), and
prints the median and the maximum. The namespace is deleted at the end.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from nova_netaware.flowmeter import nft  # noqa: E402


def fill(ns, n):
    elems = ', '.join('10.%d.%d.1 . 10.200.%d.%d' % (
        i // 250, i % 250, i // 250, i % 250) for i in range(n))
    script = 'add element bridge %s %s { %s }\n' % (nft.TABLE, nft.SET,
                                                     elems)
    subprocess.run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'],
                   input=script, text=True, check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--pairs', type=int, nargs='+',
                   default=[2, 100, 1000, 10000])
    p.add_argument('--repeat', type=int, default=5)
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit('root needed (network namespace, nft)')
    ns = 'nfmbench%d' % os.getpid()
    subprocess.run(['ip', 'netns', 'add', ns], check=True)
    try:
        meter = nft.Nft(netns=ns)
        load = os.getloadavg()[0]
        print('pairs  scrape median  max     (load average %.1f)' % load)
        for n in args.pairs:
            meter.install()
            fill(ns, n)
            times = []
            for _ in range(args.repeat):
                t0 = time.monotonic()
                got = meter.read()
                times.append(time.monotonic() - t0)
            assert len(got) == n, (len(got), n)
            print('%6d %10.1f ms %7.1f ms' % (
                n, statistics.median(times) * 1000, max(times) * 1000))
    finally:
        subprocess.run(['ip', 'netns', 'del', ns])


if __name__ == '__main__':
    main()
