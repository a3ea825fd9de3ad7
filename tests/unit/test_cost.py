"""nova_netaware.core.cost: every rate x hops, on hand-checked cases."""

import itertools

import numpy as np
import pytest

from nova_netaware.core import cost
from nova_netaware.core.engine import Candidate
from nova_netaware.core.engine import Engine
from nova_netaware.core.engine import Params
from nova_netaware.core.engine import Server
from nova_netaware.core.topology import fat_tree
from nova_netaware.core.topology import leaf_spine
from nova_netaware.core.topology import Topology
from nova_netaware.core.traffic import TrafficMatrix


def traffic(*flows):
    return TrafficMatrix({'flows': [{'src': s, 'dst': d, 'mbps': r}
                                    for s, d, r in flows]})


def test_flows_cost_counts_flows_with_an_end_in_servers():
    topo = Topology(leaf_spine(1, 2, 2))
    placement = {'a': 'compute-1', 'b': 'compute-2', 'c': 'compute-3',
                 'd': 'compute-3'}
    tm = traffic(('a', 'b', 100), ('a', 'c', 10), ('c', 'd', 1),
                 ('a', 'gone', 1000))
    # same leaf 2 hops, other leaf 4, same host 0; 'gone' is unplaced
    assert cost.network_cost(topo, tm, placement) == 100 * 2 + 10 * 4
    assert cost.flows_cost(topo, tm, placement, {'c'}) == 10 * 4
    assert cost.flows_cost(topo, tm, placement, {'b', 'd'}) == 100 * 2
    assert cost.server_cost(topo, tm, placement, 'a') == 100 * 2 + 10 * 4


@pytest.mark.parametrize('data', [leaf_spine(2, 3, 2), leaf_spine(1, 3, 1),
                                  fat_tree(4)])
def test_switch_hops_rebuild_the_host_hops(data):
    topo = Topology(data)
    hops = cost.hop_matrix(topo)
    sws, pair, same_host = cost.switch_hops(topo, hops)
    pos = {s: i for i, s in enumerate(sws)}
    n = len(topo.host_names)
    for a, b in itertools.product(range(n), range(n)):
        assert hops[a, b] == topo.host_hops(a, b)
        sa, sb = (pos[int(topo.host_switch[x])] for x in (a, b))
        rebuilt = pair[sa, sb] - (same_host[a] if a == b else 0.0)
        assert rebuilt == hops[a, b]


def test_mover_terms_linear_part_is_the_cost_on_each_host():
    topo = Topology(leaf_spine(1, 2, 2))
    placement = {'a': 'compute-1', 'b': 'compute-2', 'c': 'compute-3',
                 'x': 'compute-4'}
    tm = traffic(('a', 'b', 100), ('c', 'a', 10), ('a', 'x', 7),
                 ('x', 'c', 3))
    linear, pair = cost.mover_terms(topo, tm, placement, ['a', 'x'],
                                    cost.hop_matrix(topo))
    assert pair == {(0, 1): 7}
    for h, name in enumerate(topo.host_names):
        moved = dict(placement, a=name, x=placement['x'])
        fixed = cost.flows_cost(topo, tm, moved, {'a'}) - 7 * topo.host_hops(
            h, topo.host_index['compute-4'])
        assert linear[0, h] == fixed


def test_migration_volume_is_the_engine_cost_over_the_hops():
    eng = Engine(Topology(leaf_spine(1, 2, 2)))
    placement = {'a': 'compute-1', 'b': 'compute-3'}
    tm = traffic(('a', 'b', 100))
    cands = [Candidate(h) for h in ('compute-2', 'compute-3', 'compute-4')]
    ev = eng.evaluate(tm, placement, Server('a', memory_mb=2048, vcpus=1),
                      cands, Params())
    for i, c in enumerate(cands):
        vol = ev.volume_mb[i]
        hops = eng.topo.host_hops(0, eng.topo.host_index[c.host])
        assert vol >= 2048 * 1.0 - 1e-9      # at least the memory once
        assert np.isclose(vol * hops, ev.migration[i])
