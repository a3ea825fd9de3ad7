"""Loads updated after a few moves equal loads recomputed from scratch."""

import random

import numpy as np

from nova_netaware.core.engine import Engine
from nova_netaware.core.topology import fat_tree
from nova_netaware.core.topology import Topology
from nova_netaware.core.traffic import TrafficMatrix


def test_incremental_update_matches_full_recompute():
    rng = random.Random(3)
    topo = Topology(fat_tree(4))
    hosts = topo.host_names
    servers = ['s%d' % i for i in range(60)]
    placement = {s: rng.choice(hosts) for s in servers}
    flows = [{'src': a, 'dst': b, 'mbps': rng.uniform(1, 900)}
             for a in servers for b in rng.sample(servers, 3) if a != b]
    traffic = TrafficMatrix({'flows': flows}, version='v1')
    eng = Engine(topo)
    eng.base_loads(traffic, placement)
    for step in range(25):
        for s in rng.sample(servers, rng.randint(1, 3)):
            placement[s] = rng.choice(hosts)
        inc = eng.base_loads(traffic, placement)
        full = Engine(topo).base_loads(traffic, placement)
        np.testing.assert_allclose(inc.up, full.up, atol=1e-6)
        np.testing.assert_allclose(inc.down, full.down, atol=1e-6)
        np.testing.assert_allclose(inc.links, full.links, atol=1e-6)
    # many moves at once: a full recompute, still equal
    for s in servers:
        placement[s] = rng.choice(hosts)
    np.testing.assert_allclose(eng.base_loads(traffic, placement).links,
                               Engine(topo).base_loads(traffic,
                                                       placement).links,
                               atol=1e-6)


def test_cached_loads_follow_a_new_traffic_version():
    topo = Topology(fat_tree(4))
    a, b = topo.host_names[0], topo.host_names[-1]
    eng = Engine(topo)
    t1 = TrafficMatrix({'flows': [{'src': 'x', 'dst': 'y', 'mbps': 100}]},
                       version='1')
    t2 = TrafficMatrix({'flows': [{'src': 'x', 'dst': 'y', 'mbps': 300}]},
                       version='2')
    pl = {'x': a, 'y': b}
    assert eng.base_loads(t1, pl).up.sum() == 100
    assert eng.base_loads(t2, pl).up.sum() == 300
