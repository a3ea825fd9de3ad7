"""Candidates read from Nova's HostStates as columns equal the per-host
reading (the formula of Nova's RAM and CPU checks, host by host)."""

from tests.functional import base  # noqa: F401,I100 - eventlet patch first

import random
import unittest

import numpy as np
from nova.scheduler import host_manager

from nova_netaware.core import request
from nova_netaware.scheduler import runtime


def _per_host(hs):
    """The per-host reading the columns replace (as it was written)."""
    free_ram = free_vcpus = None
    ram_ratio = getattr(hs, 'ram_allocation_ratio', None)
    if ram_ratio and hs.total_usable_ram_mb:
        used = hs.total_usable_ram_mb - hs.free_ram_mb
        free_ram = hs.total_usable_ram_mb * ram_ratio - used
    cpu_ratio = getattr(hs, 'cpu_allocation_ratio', None)
    if cpu_ratio and hs.vcpus_total:
        free_vcpus = hs.vcpus_total * cpu_ratio - hs.vcpus_used
    return request.Candidate(hs.host, free_ram, free_vcpus)


def _host_states(rng, n, gaps):
    out = []
    for i in range(n):
        hs = host_manager.HostState('h%d' % i, 'h%d' % i, 'cell')
        hs.total_usable_ram_mb = rng.choice([0, rng.randint(1, 2 ** 20)])
        hs.free_ram_mb = rng.choice([rng.randint(-4096, 2 ** 20),
                                     rng.uniform(-10, 1e6)])
        hs.vcpus_total = rng.choice([0, rng.randint(1, 512)])
        hs.vcpus_used = rng.choice([rng.randint(0, 600),
                                    rng.uniform(0, 600)])
        hs.ram_allocation_ratio = rng.choice([1.0, 1.5, rng.uniform(0.1, 16)])
        hs.cpu_allocation_ratio = rng.choice([4.0, rng.uniform(0.1, 16)])
        if gaps:
            if rng.random() < 0.1:
                hs.ram_allocation_ratio = rng.choice([None, 0.0])
            if rng.random() < 0.1:
                hs.cpu_allocation_ratio = None
        else:
            hs.total_usable_ram_mb = hs.total_usable_ram_mb or 1
            hs.vcpus_total = hs.vcpus_total or 1
        out.append(hs)
    return out


class TestCandidateColumns(unittest.TestCase):

    def test_columns_equal_the_per_host_reading(self):
        rng = random.Random(5)
        for trial in range(40):
            hss = _host_states(rng, rng.randint(1, 60), gaps=trial % 2)
            want = request.Candidates.of([_per_host(h) for h in hss])
            got = runtime.candidates_from_host_states(hss)
            self.assertEqual(got.hosts, want.hosts)
            for attr in ('free_ram_mb', 'free_vcpus'):
                a, b = getattr(got, attr), getattr(want, attr)
                if b is None:
                    self.assertIsNone(a, attr)
                else:
                    self.assertEqual(a.dtype, b.dtype)
                    self.assertTrue(np.array_equal(a, b), attr)
            for h in hss:
                self.assertEqual(runtime.candidate_from_host_state(h),
                                 _per_host(h))

    def test_no_hosts(self):
        c = runtime.candidates_from_host_states([])
        self.assertEqual((c.hosts, c.free_ram_mb, c.free_vcpus),
                         ([], None, None))
