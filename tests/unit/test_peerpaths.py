"""The twin-class walks (core/peerpaths) against straightforward per-target
computations, on random graphs with twins, fat-trees and leaf-spines."""

import random

import numpy as np
import pytest

from nova_netaware.core import loads as loads_mod
from nova_netaware.core import peerpaths
from nova_netaware.core.routing import Fabric
from nova_netaware.core.topology import fat_tree
from nova_netaware.core.topology import leaf_spine
from nova_netaware.core.topology import Topology
from nova_netaware.core.topology import UNREACHABLE


def random_graph(seed, n=10, twins=5):
    """A connected random graph, then *twins* switches that copy another
    switch's neighbours (an isolated switch 'lone' too, without hosts)."""
    rng = random.Random(seed)
    names = ['s%d' % i for i in range(n)]
    edges = {(names[i], names[rng.randrange(i)]) for i in range(1, n)}
    for _ in range(n):
        a, b = rng.sample(names, 2)
        if (b, a) not in edges:
            edges.add((a, b))
    adj = {x: set() for x in names}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    for t in range(twins):
        orig = rng.choice(names)
        name = 't%d' % t
        for nb in adj[orig]:
            edges.add((name, nb))
        adj[name] = set(adj[orig])
        for nb in adj[orig]:
            adj[nb].add(name)
        names.append(name)
    gbps = [10, 40, 100]
    data = {'switches': [{'name': x} for x in names + ['lone']],
            'links': [{'a': a, 'b': b, 'gbps': rng.choice(gbps)}
                      for a, b in sorted(edges)],
            'hosts': [{'name': 'h-' + x, 'switch': x, 'uplink_gbps': 10}
                      for x in names]}
    return Topology(data)


def topologies():
    yield 'fat-tree-4', Topology(fat_tree(4))
    yield 'fat-tree-6', Topology(fat_tree(6, link_gbps=40))
    yield 'leaf-spine', Topology(leaf_spine(3, 6, 2))
    for seed in range(8):
        yield 'random-%d' % seed, random_graph(seed)


CASES = list(topologies())


def sp_links(fab, s, t):
    """Links on any shortest path s -> t, straight from the definition."""
    dist = fab.topo.dist
    if s == t or dist[s, t] >= UNREACHABLE:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(dist[s, fab.eu] + 1 + dist[fab.ev, t] ==
                          dist[s, t])


def setup(topo, seed):
    fab = Fabric(topo)
    rng = np.random.default_rng(seed)
    n = fab.n
    k = int(rng.integers(1, n + 1))
    targets = np.sort(rng.choice(n, size=k, replace=False))
    r_out = rng.uniform(1, 50, k)
    r_in = rng.uniform(1, 50, k)
    r_out[rng.random(k) < 0.2] = -np.inf
    r_in[rng.random(k) < 0.2] = -np.inf
    lk = rng.random(fab.m)
    inv = 1.0 / fab.cap

    def value(e, ro, ri):
        re = fab.rev[e]
        return np.maximum(lk[e] + ro * inv[e], lk[re] + ri * inv[re])
    return fab, targets, r_out, r_in, value, rng


def reference(fab, targets, r_out, r_in, value, src):
    """(switches x targets x 2) per-target maxima, link by link."""
    w = np.full((fab.n, len(targets), 2), -np.inf)
    for s in range(fab.n):
        for j, t in enumerate(targets):
            on = sp_links(fab, s, t)
            if not len(on):
                continue
            v = value(on, np.full(len(on), r_out[j]),
                      np.full(len(on), r_in[j]))
            w[s, j, 0] = v.max()
            if src is not None:
                used = np.isin(on, sp_links(fab, src, t))
                v = np.where(used, -np.inf, v)
            w[s, j, 1] = v.max()
    return w


@pytest.mark.parametrize('name,topo', CASES, ids=[c[0] for c in CASES])
def test_peer_paths_equal_per_target_maxima(name, topo):
    for seed in range(4):
        fab, targets, r_out, r_in, value, rng = setup(topo, seed)
        # the source: none, one of the targets, or any switch
        for src in (None, int(targets[0]), int(rng.integers(fab.n))):
            pp = peerpaths.PeerPaths(fab, targets, r_out, r_in, value, src)
            ref = reference(fab, targets, r_out, r_in, value, src)
            # exact, not approximately: maxima do not depend on order
            assert np.array_equal(pp.best, ref[:, :, 0].max(axis=1))
            assert np.array_equal(pp.check, ref[:, :, 1].max(axis=1))
            col = 1 if src is not None else 0
            for s in range(fab.n):
                if np.isfinite(ref[s, :, col].max()):
                    assert pp.worst(s) == int(np.argmax(ref[s, :, col]))


def route_reference(fab, demand):
    """Per-target fluid ECMP with the plain Dag, one target at a time."""
    load = np.zeros(fab.m)
    for t in sorted({t for _, t in demand}):
        d = np.zeros((fab.n, 1))
        for (s, tt), r in demand.items():
            if tt == t:
                d[s, 0] += r
        load += fab.dag(np.array([t])).route(d)
    return load


@pytest.mark.parametrize('name,topo', CASES, ids=[c[0] for c in CASES])
def test_route_demand_and_route_from_equal_per_target_routing(name, topo):
    fab = Fabric(topo)
    rng = random.Random(name)
    hs = [int(x) for x in topo.host_switch]
    for _ in range(3):
        demand = {}
        for _ in range(3 * len(hs)):
            a, b = rng.choice(hs), rng.choice(hs)
            if a != b:
                demand[(a, b)] = demand.get((a, b), 0) + rng.uniform(1, 99)
        ref = route_reference(fab, demand)
        got = loads_mod.route_switch_demand(fab, demand)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-9)
        # one source to many targets (the request's own traffic)
        src = rng.choice(hs)
        targets = np.array(sorted(set(hs)), dtype=np.int64)
        rates = np.array([0.0 if t == src else rng.uniform(1, 99)
                          for t in targets])
        ref = route_reference(fab, {(src, int(t)): r for t, r in
                                    zip(targets, rates) if r > 0})
        got = peerpaths.route_from(fab, src, targets, rates)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-9)


def test_twin_classes_of_a_fat_tree():
    topo = Topology(fat_tree(4))
    fab = Fabric(topo)
    si = topo.switch_index
    tw = fab.twin
    # the edge switches of a pod share their neighbours (the pod's aggs)
    assert tw[si['edge-0-0']] == tw[si['edge-0-1']]
    assert tw[si['edge-0-0']] != tw[si['edge-1-0']]
    # aggregation switches of a pod reach different cores: no twins
    assert tw[si['agg-0-0']] != tw[si['agg-0-1']]
    # cores linked to the same aggregation switch of each pod are twins
    assert tw[si['core-0']] == tw[si['core-1']] != tw[si['core-2']]
    groups = fab.twin_groups(np.array([si['edge-1-0'], si['edge-0-0'],
                                       si['edge-0-1']]))
    assert [list(g) for g in groups] == [[0], [1, 2]]
