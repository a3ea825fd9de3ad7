"""Fluid ECMP loads, path_max and path masks against hand-routed flows."""

import numpy as np
import pytest

from nova_netaware.core import loads as loads_mod
from nova_netaware.core.routing import Fabric
from nova_netaware.core.topology import fat_tree
from nova_netaware.core.topology import Topology

from tests.unit._core import link_index
from tests.unit._core import link_loads
from tests.unit._core import ls232
from tests.unit._core import traffic


def idx(topo, *names):
    return [topo.host_index[n] for n in names]


def test_leaf_spine_ecmp_split():
    topo = ls232()
    fab = Fabric(topo)
    c1, c3 = idx(topo, 'compute-1', 'compute-3')
    ld = loads_mod.route_flows(fab, [(c1, c3, 1000.0)])
    # 1000 leaves compute-1, reaches compute-3
    assert ld.up[c1] == 1000.0 and ld.down[c3] == 1000.0
    assert ld.up.sum() == 1000.0 and ld.down.sum() == 1000.0
    # leaf-1 splits evenly over its 2 spines; each spine forwards to leaf-2
    assert link_loads(fab, ld.links) == {
        ('leaf-1', 'spine-1'): 500.0, ('leaf-1', 'spine-2'): 500.0,
        ('spine-1', 'leaf-2'): 500.0, ('spine-2', 'leaf-2'): 500.0}


def test_flows_add_up_and_directions_are_separate():
    topo = ls232()
    fab = Fabric(topo)
    c1, c2, c3, c5 = idx(topo, 'compute-1', 'compute-2', 'compute-3',
                         'compute-5')
    ld = loads_mod.route_flows(fab, [
        (c1, c3, 1000.0),     # leaf-1 -> leaf-2
        (c3, c1, 200.0),      # leaf-2 -> leaf-1
        (c2, c5, 600.0),      # leaf-1 -> leaf-3
        (c1, c2, 999.0),      # same leaf: uplinks only
        (c1, c1, 777.0),      # same host: nothing
        (c2, c3, 0.0)])       # zero rate: nothing
    assert ld.up[c1] == 1000.0 + 999.0
    assert ld.down[c1] == 200.0
    assert ld.up[c2] == 600.0
    assert ld.down[c2] == 999.0
    assert ld.down[c3] == 1000.0 and ld.up[c3] == 200.0
    assert ld.down[c5] == 600.0
    assert link_loads(fab, ld.links) == {
        # 1000/2 + 600/2
        ('leaf-1', 'spine-1'): 800.0, ('leaf-1', 'spine-2'): 800.0,
        ('spine-1', 'leaf-2'): 500.0, ('spine-2', 'leaf-2'): 500.0,
        ('spine-1', 'leaf-3'): 300.0, ('spine-2', 'leaf-3'): 300.0,
        # 200/2 the other way
        ('leaf-2', 'spine-1'): 100.0, ('leaf-2', 'spine-2'): 100.0,
        ('spine-1', 'leaf-1'): 100.0, ('spine-2', 'leaf-1'): 100.0}


def test_fat_tree_cross_pod_split():
    topo = Topology(fat_tree(4))
    fab = Fabric(topo)
    a, b = idx(topo, 'compute-1', 'compute-5')   # edge-0-0 -> edge-1-0
    ld = loads_mod.route_flows(fab, [(a, b, 1000.0)])
    # edge splits in 2 (500 per agg), each agg splits in 2 cores (250),
    # each core has one link down into pod 1, aggs of pod 1 each collect
    # 2 x 250 = 500 towards edge-1-0.
    assert link_loads(fab, ld.links) == {
        ('edge-0-0', 'agg-0-0'): 500.0, ('edge-0-0', 'agg-0-1'): 500.0,
        ('agg-0-0', 'core-0'): 250.0, ('agg-0-0', 'core-1'): 250.0,
        ('agg-0-1', 'core-2'): 250.0, ('agg-0-1', 'core-3'): 250.0,
        ('core-0', 'agg-1-0'): 250.0, ('core-1', 'agg-1-0'): 250.0,
        ('core-2', 'agg-1-1'): 250.0, ('core-3', 'agg-1-1'): 250.0,
        ('agg-1-0', 'edge-1-0'): 500.0, ('agg-1-1', 'edge-1-0'): 500.0}
    # 4 fabric hops x 1000
    assert ld.links.sum() == pytest.approx(4000.0, rel=1e-12)


def test_fat_tree_same_pod_split():
    topo = Topology(fat_tree(4))
    fab = Fabric(topo)
    a, b = idx(topo, 'compute-1', 'compute-3')   # edge-0-0 -> edge-0-1
    ld = loads_mod.route_flows(fab, [(a, b, 800.0)])
    assert link_loads(fab, ld.links) == {
        ('edge-0-0', 'agg-0-0'): 400.0, ('edge-0-0', 'agg-0-1'): 400.0,
        ('agg-0-0', 'edge-0-1'): 400.0, ('agg-0-1', 'edge-0-1'): 400.0}


def test_unequal_ecmp_split_on_a_hand_graph():
    # Shortest s -> t paths (3 hops): s-a-x-t, s-b-x-t, s-b-y-t.
    # s splits 100 over a and b (50 each); a has one next hop (x), b two
    # (x and y, 25 each); so x -> t carries 50 + 25 = 75 and y -> t 25.
    # Link b-t does not exist; the longer s-a-b... detours carry nothing.
    d = {'switches': [{'name': n} for n in 'sabxyt'],
         'links': [{'a': p, 'b': q, 'gbps': 1} for p, q in
                   [('s', 'a'), ('s', 'b'), ('a', 'x'), ('b', 'x'),
                    ('b', 'y'), ('x', 't'), ('y', 't'), ('a', 'b')]],
         'hosts': [{'name': 'hs', 'switch': 's', 'uplink_gbps': 1},
                   {'name': 'ht', 'switch': 't', 'uplink_gbps': 1}]}
    topo = Topology(d)
    fab = Fabric(topo)
    hs, ht = idx(topo, 'hs', 'ht')
    ld = loads_mod.route_flows(fab, [(hs, ht, 100.0)])
    assert link_loads(fab, ld.links) == {
        ('s', 'a'): 50.0, ('s', 'b'): 50.0,
        ('a', 'x'): 50.0, ('b', 'x'): 25.0, ('b', 'y'): 25.0,
        ('x', 't'): 75.0, ('y', 't'): 25.0}


def test_route_switch_demand_chunks_targets():
    # Many targets are processed in chunks; the result must not change.
    topo = Topology(fat_tree(4))
    fab = Fabric(topo)
    si = topo.switch_index
    demand = {(si['edge-0-0'], si['edge-%d-%d' % (p, e)]): 100.0
              for p in range(4) for e in range(2) if (p, e) != (0, 0)}
    whole = loads_mod.route_switch_demand(fab, demand)
    # 1 same-pod target (2 hops) + 6 cross-pod targets (4 hops)
    assert whole.sum() == pytest.approx(100 * 2 + 600 * 4, rel=1e-12)
    # edge-0-0 sends all 700 out over its 2 uplinks
    assert whole[link_index(fab, 'edge-0-0', 'agg-0-0')] == \
        pytest.approx(350.0, rel=1e-12)


def test_placement_flows_skips_unknown():
    topo = ls232()
    tm = traffic(('a', 'b', 10.0), ('b', 'c', 20.0), ('c', 'a', 30.0),
                 ('a', 'd', 40.0))
    placement = {'a': 'compute-1', 'b': 'compute-4', 'c': 'ghost-host'}
    # c is on a host outside the topology, d has no host
    assert sorted(loads_mod.placement_flows(topo, tm, placement)) == [
        (0, 3, 10.0)]


def path_max(fab, values, targets):
    """Largest link value on any shortest path from each switch to each
    target, through the request DAG (values per link, or per link and
    target)."""
    k = len(targets)
    if not fab.m or not k:
        return np.full((fab.n, k), -np.inf)
    vals = np.broadcast_to(np.asarray(values, dtype=np.float64).reshape(
        fab.m, -1), (fab.m, k))
    return fab.dag(targets).path_max(lambda e, c: vals[e, c])


def test_path_max_leaf_spine():
    topo = ls232()
    fab = Fabric(topo)
    si = topo.switch_index
    vals = np.full(fab.m, 0.1)
    vals[link_index(fab, 'leaf-1', 'spine-1')] = 0.7
    vals[link_index(fab, 'spine-2', 'leaf-2')] = 0.3
    vals[link_index(fab, 'leaf-2', 'spine-1')] = 0.95   # leaves leaf-2
    targets = np.array([si['leaf-2'], si['leaf-1']])
    w = path_max(fab, vals, targets)
    # leaf-1 -> leaf-2: via spine-1 max(0.7, 0.1), via spine-2 max(0.1, 0.3)
    assert w[si['leaf-1'], 0] == 0.7
    # leaf-3 -> leaf-2: max(0.1, 0.1) or max(0.1, 0.3)
    assert w[si['leaf-3'], 0] == 0.3
    assert w[si['spine-1'], 0] == 0.1
    assert w[si['spine-2'], 0] == 0.3
    assert w[si['leaf-2'], 0] == -np.inf
    # towards leaf-1: the 0.95 link leaf-2 -> spine-1 is on leaf-2's paths
    assert w[si['leaf-2'], 1] == 0.95
    assert w[si['leaf-3'], 1] == 0.1
    assert w[si['leaf-1'], 1] == -np.inf


def test_path_max_per_target_values_and_unreachable():
    d = {'switches': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'},
                      {'name': 'z'}],
         'links': [{'a': 'a', 'b': 'b', 'gbps': 1},
                   {'a': 'b', 'b': 'c', 'gbps': 1}],
         'hosts': [{'name': 'x', 'switch': 'a', 'uplink_gbps': 1}]}
    topo = Topology(d)
    fab = Fabric(topo)
    si = topo.switch_index
    vals = np.zeros((fab.m, 2))
    vals[link_index(fab, 'a', 'b'), 0] = 5.0
    vals[link_index(fab, 'b', 'c'), 0] = 2.0
    vals[link_index(fab, 'a', 'b'), 1] = 1.0
    vals[link_index(fab, 'b', 'c'), 1] = 9.0
    w = path_max(fab, vals, np.array([si['c'], si['z']]))
    assert w[si['a'], 0] == 5.0 and w[si['b'], 0] == 2.0
    # column 1 targets the isolated switch z: no path from anywhere
    assert (w[:, 1] == -np.inf).all()


def test_on_paths_from():
    topo = ls232()
    fab = Fabric(topo)
    si = topo.switch_index
    mask = fab.on_paths_from(si['leaf-1'], np.array([si['leaf-2'],
                                                     si['leaf-1']]))
    on = {(topo.switch_names[int(fab.eu[k])],
           topo.switch_names[int(fab.ev[k])])
          for k in np.flatnonzero(mask[:, 0])}
    assert on == {('leaf-1', 'spine-1'), ('leaf-1', 'spine-2'),
                  ('spine-1', 'leaf-2'), ('spine-2', 'leaf-2')}
    assert not mask[:, 1].any()
    # the reverse permutation gives the leaf-2 -> leaf-1 links
    back = {(topo.switch_names[int(fab.eu[k])],
             topo.switch_names[int(fab.ev[k])])
            for k in np.flatnonzero(mask[fab.rev, 0])}
    assert back == {('spine-1', 'leaf-1'), ('spine-2', 'leaf-1'),
                    ('leaf-2', 'spine-1'), ('leaf-2', 'spine-2')}
