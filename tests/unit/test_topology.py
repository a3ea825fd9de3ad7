"""Topology validation, generators and distances, against hand counts."""

import json
import os

import numpy as np
import pytest

from nova_netaware.core.topology import fat_tree
from nova_netaware.core.topology import leaf_spine
from nova_netaware.core.topology import load_data_file
from nova_netaware.core.topology import Topology
from nova_netaware.core.topology import TopologyError

from tests.unit._core import ls232


def tiny():
    """Two leaves under one spine, three hosts; latencies chosen so every
    path sum is distinct."""
    return {
        'switches': [{'name': 'spine'}, {'name': 'leaf-a'},
                     {'name': 'leaf-b'}],
        'links': [{'a': 'leaf-a', 'b': 'spine', 'gbps': 100,
                   'latency_us': 3},
                  {'a': 'leaf-b', 'b': 'spine', 'gbps': 40,
                   'latency_us': 7}],
        'hosts': [{'name': 'h1', 'switch': 'leaf-a', 'uplink_gbps': 25,
                   'latency_us': 1},
                  {'name': 'h2', 'switch': 'leaf-a', 'uplink_gbps': 10,
                   'latency_us': 0.5},
                  {'name': 'h3', 'switch': 'leaf-b', 'uplink_gbps': 25,
                   'latency_us': 2}],
    }


def err(data, **kw):
    with pytest.raises(TopologyError) as e:
        Topology(data, source='t.yaml', **kw)
    return str(e.value)


# -- validation: every message names the bad entry --------------------------

def test_not_a_mapping():
    msg = err([{'name': 'x'}])
    assert msg.startswith('t.yaml: the topology must be a mapping')
    assert 'must be a mapping' in err(None)


def test_unknown_top_level_keys():
    d = tiny()
    d['hostz'] = []
    d['extra'] = 1
    assert err(d) == 't.yaml: unknown top-level keys extra, hostz'


def test_section_not_a_list():
    d = tiny()
    d['links'] = {'a': 'leaf-a'}
    assert err(d) == 't.yaml: "links" must be a list'


def test_no_hosts():
    d = tiny()
    d['hosts'] = []
    assert err(d) == 't.yaml: no hosts'


def test_switch_without_name_and_duplicate_switch():
    d = tiny()
    d['switches'][1] = {'nom': 'leaf-a'}
    assert err(d).startswith('t.yaml: switches[1] needs a name')
    d = tiny()
    d['switches'].append({'name': 'spine'})
    assert err(d) == "t.yaml: switches[3]: duplicate switch 'spine'"


def test_unknown_switch_in_link():
    d = tiny()
    d['links'][1]['b'] = 'spine-9'
    assert err(d) == "t.yaml: links[1]: unknown switch 'spine-9'"
    d = tiny()
    del d['links'][0]['a']
    # issue 16: the missing key is named, not "unknown switch None"
    assert err(d) == ("t.yaml: links[0]: missing key 'a' (the switch at that "
                      "end): {'b': 'spine', 'gbps': 100, 'latency_us': 3}")
    d = tiny()
    d['links'][1]['b'] = None
    assert "links[1]: missing key 'b'" in err(d)


def test_bad_links():
    d = tiny()
    d['links'][0] = 'leaf-a-spine'
    assert err(d).startswith('t.yaml: links[0] must be a mapping')
    d = tiny()
    d['links'][1]['b'] = 'leaf-b'
    assert err(d) == "t.yaml: links[1]: link from 'leaf-b' to itself"
    d = tiny()
    d['links'].append({'a': 'spine', 'b': 'leaf-a', 'gbps': 1})
    assert err(d) == 't.yaml: links[2]: duplicate link spine-leaf-a'


def test_link_gbps_non_numeric_missing_or_not_positive():
    d = tiny()
    d['links'][1]['gbps'] = 'fast'
    assert err(d) == ("t.yaml: links[1].gbps must be a number, "
                      "got 'fast'")
    d = tiny()
    del d['links'][0]['gbps']
    assert err(d) == 't.yaml: links[0].gbps must be a number, got None'
    d = tiny()
    d['links'][0]['gbps'] = 0
    assert err(d) == 't.yaml: links[0].gbps must be > 0, got 0'
    d = tiny()
    d['links'][0]['gbps'] = -5
    assert err(d) == 't.yaml: links[0].gbps must be > 0, got -5'


def test_link_latency_bad():
    d = tiny()
    d['links'][1]['latency_us'] = -1
    assert err(d) == ('t.yaml: links[1].latency_us must be a number >= 0, '
                      'got -1')
    d['links'][1]['latency_us'] = 'slow'
    assert err(d) == ('t.yaml: links[1].latency_us must be a number >= 0, '
                      "got 'slow'")


def test_bad_hosts():
    d = tiny()
    d['hosts'].append({'name': 'h2', 'switch': 'leaf-b', 'uplink_gbps': 1})
    assert err(d) == "t.yaml: hosts[3]: duplicate host 'h2'"
    d = tiny()
    d['hosts'][0] = {'switch': 'leaf-a'}
    assert err(d).startswith('t.yaml: hosts[0] needs a name')
    assert "missing key 'name'" in err(d)
    d = tiny()
    d['hosts'][0] = 'h1'
    assert err(d) == "t.yaml: hosts[0] must be a mapping: 'h1'"
    d = tiny()
    del d['hosts'][1]['switch']
    assert err(d) == ("t.yaml: hosts[1] (h2): missing key 'switch' (the "
                      "switch the host is cabled to)")
    d = tiny()
    d['hosts'][2]['name'] = 'spine'
    assert err(d) == "t.yaml: hosts[2]: host 'spine' has the name of a switch"
    d = tiny()
    d['hosts'][2]['switch'] = 'leaf-z'
    assert err(d) == "t.yaml: hosts[2] (h3): unknown switch 'leaf-z'"


def test_host_uplink_missing_non_numeric_zero():
    d = tiny()
    del d['hosts'][1]['uplink_gbps']
    assert err(d) == ('t.yaml: hosts[1] (h2).uplink_gbps must be a number, '
                      'got None')
    d = tiny()
    d['hosts'][1]['uplink_gbps'] = '25G'
    assert err(d) == ('t.yaml: hosts[1] (h2).uplink_gbps must be a number, '
                      "got '25G'")
    d = tiny()
    d['hosts'][1]['uplink_gbps'] = 0
    assert err(d) == 't.yaml: hosts[1] (h2).uplink_gbps must be > 0, got 0'
    d = tiny()
    d['hosts'][0]['latency_us'] = 'x'
    assert err(d) == ("t.yaml: hosts[0] (h1).latency_us must be a number "
                      ">= 0, got 'x'")


def test_negative_or_nan_latency():
    # BUG found (fixed in core/topology.py): a negative host latency and a
    # NaN link or host latency were accepted (only links checked < 0, and
    # NaN < 0 is false), poisoning the latency matrix.
    d = tiny()
    d['hosts'][2]['latency_us'] = -1
    assert err(d) == ('t.yaml: hosts[2] (h3).latency_us must be a number '
                      '>= 0, got -1')
    d = tiny()
    d['hosts'][2]['latency_us'] = float('nan')
    assert err(d) == ('t.yaml: hosts[2] (h3).latency_us must be a number '
                      '>= 0, got nan')
    d = tiny()
    d['links'][0]['latency_us'] = float('nan')
    assert err(d) == ('t.yaml: links[0].latency_us must be a number >= 0, '
                      'got nan')
    d = tiny()
    d['links'][0]['gbps'] = float('nan')
    assert err(d) == 't.yaml: links[0].gbps must be > 0, got nan'


def test_unreachable_switch():
    d = tiny()
    d['switches'].append({'name': 'island'})
    d['hosts'].append({'name': 'h4', 'switch': 'island', 'uplink_gbps': 1})
    msg = err(d)
    # leaf-a (index 1) is the first used switch that cannot reach island.
    assert msg == 't.yaml: switch leaf-a cannot reach switch island'


def test_unreachable_switch_without_hosts_is_fine():
    # A disconnected switch that carries no host does not matter.
    d = tiny()
    d['switches'].append({'name': 'island'})
    t = Topology(d)
    assert t.max_host_hops == 4


def test_numeric_strings_are_accepted():
    d = tiny()
    d['links'][0]['gbps'] = '100'
    d['hosts'][0]['uplink_gbps'] = '2.5'
    t = Topology(d)
    assert t.host_cap[0] == 2500.0


# -- files -------------------------------------------------------------------

def test_from_file_yaml_and_json(tmp_path):
    import yaml
    p = tmp_path / 'topo.yaml'
    p.write_text(yaml.safe_dump(tiny()))
    t = Topology.from_file(str(p))
    assert t.host_names == ['h1', 'h2', 'h3']
    assert t.source == 'topo.yaml'
    j = tmp_path / 'topo.json'
    j.write_text(json.dumps(tiny()))
    assert Topology.from_file(str(j)).switch_names == ['spine', 'leaf-a',
                                                       'leaf-b']


def test_from_file_names_file_on_validation_error(tmp_path):
    d = tiny()
    d['links'][1]['a'] = 'nope'
    p = tmp_path / 'dc.json'
    p.write_text(json.dumps(d))
    with pytest.raises(TopologyError) as e:
        Topology.from_file(str(p))
    assert str(e.value) == "dc.json: links[1]: unknown switch 'nope'"


def test_yaml_syntax_error(tmp_path):
    p = tmp_path / 'bad.yaml'
    p.write_text('switches: [{name: a}\nlinks: ]\n')
    with pytest.raises(TopologyError) as e:
        load_data_file(str(p))
    assert str(e.value).startswith('%s is not valid YAML: ' % p)


def test_json_syntax_error(tmp_path):
    p = tmp_path / 'bad.json'
    p.write_text('{"switches": [}')
    with pytest.raises(TopologyError) as e:
        Topology.from_file(str(p))
    assert str(e.value).startswith('%s is not valid JSON: ' % p)


def test_missing_and_unreadable_file(tmp_path):
    p = tmp_path / 'absent.yaml'
    with pytest.raises(TopologyError) as e:
        Topology.from_file(str(p))
    assert str(e.value) == 'cannot read %s: No such file or directory' % p
    with pytest.raises(TopologyError) as e:
        load_data_file(str(tmp_path))      # a directory
    assert str(e.value) == 'cannot read %s: Is a directory' % tmp_path
    if os.geteuid() != 0:
        q = tmp_path / 'locked.yaml'
        q.write_text('hosts: []')
        q.chmod(0)
        with pytest.raises(TopologyError) as e:
            load_data_file(str(q))
        assert str(e.value) == 'cannot read %s: Permission denied' % q


def test_empty_yaml_file_is_not_a_mapping(tmp_path):
    p = tmp_path / 'empty.yaml'
    p.write_text('')
    with pytest.raises(TopologyError) as e:
        Topology.from_file(str(p))
    assert str(e.value).startswith('empty.yaml: the topology must be a '
                                   'mapping')


# -- distances ---------------------------------------------------------------

def test_hops_from_is_host_hops_vectorised():
    t = ls232()
    # from compute-1 to compute-1, -2, -3, -6: 0, 2, 4, 4
    assert list(t.hops_from(0, [0, 1, 2, 5])) == [0, 2, 4, 4]
    assert [t.host_hops(0, b) for b in (0, 1, 2, 5)] == [0, 2, 4, 4]


def test_tiny_hops_and_latency():
    t = Topology(tiny())
    h1, h2, h3 = (t.host_index[h] for h in ('h1', 'h2', 'h3'))
    assert t.host_hops(h1, h1) == 0
    # same leaf: uplink + uplink
    assert t.host_hops(h1, h2) == 2
    # h1 -> leaf-a -> spine -> leaf-b -> h3
    assert t.host_hops(h1, h3) == 4
    assert t.host_hops(h3, h2) == 4
    assert t.host_latency(h1, h1) == 0.0
    # host latencies 1 + 0.5, same switch
    assert t.host_latency(h1, h2) == pytest.approx(1.5, abs=1e-6)
    # 1 + 2 (hosts) + 3 + 7 (links)
    assert t.host_latency(h1, h3) == pytest.approx(13.0, abs=1e-6)
    # 0.5 + 2 + 3 + 7
    assert t.host_latency(h2, h3) == pytest.approx(12.5, abs=1e-6)
    assert t.max_host_hops == 4
    assert t.diameter == 2
    # capacities in Mbit/s
    assert list(t.host_cap) == [25000.0, 10000.0, 25000.0]
    assert sorted(t.edge_cap) == [40000.0, 40000.0, 100000.0, 100000.0]


def test_default_link_latency():
    d = tiny()
    del d['links'][0]['latency_us']
    # link leaf-a - spine takes the default 4.5: 1 + 2 + 4.5 + 7
    t = Topology(d, default_link_latency_us=4.5)
    assert t.host_latency(0, 2) == pytest.approx(14.5, abs=1e-6)
    # and 1.0 when not given: 1 + 2 + 1 + 7
    assert Topology(d).host_latency(0, 2) == pytest.approx(11.0, abs=1e-6)


def test_latency_takes_the_lowest_latency_path_not_fewest_hops():
    # a - b direct at 50 us, or a - c - b at 10 + 10 us.
    d = {'switches': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}],
         'links': [{'a': 'a', 'b': 'b', 'gbps': 1, 'latency_us': 50},
                   {'a': 'a', 'b': 'c', 'gbps': 1, 'latency_us': 10},
                   {'a': 'c', 'b': 'b', 'gbps': 1, 'latency_us': 10}],
         'hosts': [{'name': 'x', 'switch': 'a', 'uplink_gbps': 1},
                   {'name': 'y', 'switch': 'b', 'uplink_gbps': 1}]}
    t = Topology(d)
    assert t.host_hops(0, 1) == 3          # 1 + 1 + 1
    assert t.host_latency(0, 1) == pytest.approx(20.0, abs=1e-6)


def test_leaf_spine_232_sizes_and_distances():
    t = ls232()
    assert t.switch_names == ['spine-1', 'spine-2', 'leaf-1', 'leaf-2',
                              'leaf-3']
    assert t.host_names == ['compute-%d' % i for i in range(1, 7)]
    # 3 leaves x 2 spines = 6 links, 12 directed edges of 100 Gbit/s
    assert len(t.edge_u) == 12
    assert set(t.edge_cap) == {100000.0}
    assert set(t.host_cap) == {25000.0}
    hop = t.host_hops
    assert hop(0, 0) == 0
    assert hop(0, 1) == 2            # compute-1, compute-2 on leaf-1
    assert hop(0, 2) == 4            # leaf-1 -> spine -> leaf-2
    assert hop(5, 0) == 4
    assert t.max_host_hops == 4
    assert t.diameter == 2           # spine-1 -> leaf -> spine-2
    # 2 us per link, hosts 0 us
    assert t.host_latency(0, 1) == pytest.approx(0.0, abs=1e-6)
    assert t.host_latency(0, 4) == pytest.approx(4.0, abs=1e-6)


def three_tier():
    """core; agg-1, agg-2; edge-1..4 (two per agg); one host per edge."""
    sw = ['core', 'agg-1', 'agg-2', 'edge-1', 'edge-2', 'edge-3', 'edge-4']
    links = [('agg-1', 'core'), ('agg-2', 'core'), ('edge-1', 'agg-1'),
             ('edge-2', 'agg-1'), ('edge-3', 'agg-2'), ('edge-4', 'agg-2')]
    return {'switches': [{'name': s} for s in sw],
            'links': [{'a': a, 'b': b, 'gbps': 10} for a, b in links],
            'hosts': [{'name': 'h%d' % i, 'switch': 'edge-%d' % i,
                       'uplink_gbps': 1} for i in range(1, 5)]}


def test_three_tier_tree_hops_and_default_latency():
    t = Topology(three_tier())
    # h1-h2: edge-1 agg-1 edge-2 -> 2 fabric hops + 2 uplinks
    assert t.host_hops(0, 1) == 4
    # h1-h3: edge-1 agg-1 core agg-2 edge-3 -> 4 + 2
    assert t.host_hops(0, 2) == 6
    assert t.host_hops(3, 0) == 6
    assert t.max_host_hops == 6
    # default 1 us per link, 0 per host
    assert t.host_latency(0, 1) == pytest.approx(2.0, abs=1e-6)
    assert t.host_latency(0, 3) == pytest.approx(4.0, abs=1e-6)


def test_fat_tree_4_sizes():
    d = fat_tree(4)
    # (k/2)^2 = 4 core, k pods x (2 agg + 2 edge) = 16
    assert len(d['switches']) == 20
    # per pod: 2x2 edge-agg + 2x2 agg-core = 8; 4 pods -> 32
    assert len(d['links']) == 32
    # k^3 / 4 = 16 hosts
    assert len(d['hosts']) == 16
    t = Topology(d)
    assert len(t.edge_u) == 64
    assert set(t.edge_cap) == {10000.0}
    # every core reaches every pod exactly once: 4 links per core
    core = [t.switch_index['core-%d' % c] for c in range(4)]
    assert [int((t.edge_u == c).sum()) for c in core] == [4, 4, 4, 4]
    assert t.diameter == 4
    assert t.max_host_hops == 6


def test_fat_tree_4_hop_counts():
    t = Topology(fat_tree(4))
    ix = t.host_index
    # hosts are numbered pod by pod, edge by edge, 2 per edge:
    # compute-1,2 edge-0-0; 3,4 edge-0-1; 5,6 edge-1-0 ...
    assert t.host_switch[ix['compute-2']] == t.switch_index['edge-0-0']
    assert t.host_switch[ix['compute-5']] == t.switch_index['edge-1-0']
    assert t.host_hops(ix['compute-1'], ix['compute-2']) == 2   # same edge
    assert t.host_hops(ix['compute-1'], ix['compute-3']) == 4   # same pod
    assert t.host_hops(ix['compute-1'], ix['compute-5']) == 6   # cross-pod
    assert t.host_hops(ix['compute-16'], ix['compute-1']) == 6
    # 1 us per link: edge-agg-core-agg-edge = 4 us
    assert t.host_latency(ix['compute-1'], ix['compute-16']) == \
        pytest.approx(4.0, abs=1e-6)


def test_fat_tree_options_and_bad_k():
    d = fat_tree(4, hosts_per_edge=1, link_gbps=40, uplink_gbps=25)
    assert len(d['hosts']) == 8
    assert {l['gbps'] for l in d['links']} == {40}
    with pytest.raises(TopologyError):
        fat_tree(3)
    with pytest.raises(TopologyError):
        fat_tree(0)


def test_leaf_spine_generator_data():
    d = leaf_spine(2, 3, 2, uplink_gbps=10, fabric_gbps=40, latency_us=5,
                   host_prefix='h')
    assert [h['name'] for h in d['hosts']] == ['h1', 'h2', 'h3', 'h4',
                                               'h5', 'h6']
    assert [h['switch'] for h in d['hosts']] == [
        'leaf-1', 'leaf-1', 'leaf-2', 'leaf-2', 'leaf-3', 'leaf-3']
    assert len(d['links']) == 6
    assert {(l['gbps'], l['latency_us']) for l in d['links']} == {(40, 5)}


def test_graph_export():
    g = Topology(tiny()).graph()
    assert g.number_of_nodes() == 6
    assert g.number_of_edges() == 5
    assert g['h2']['leaf-a']['mbps'] == 10000.0
    assert g['leaf-b']['spine']['latency_us'] == 7.0


def test_dist_matrix_is_symmetric_bfs():
    t = Topology(fat_tree(4))
    assert (t.dist == t.dist.T).all()
    e00 = t.switch_index['edge-0-0']
    # from an edge switch: 2 aggs at 1, 2 cores + other edge at 2,
    # 6 remote aggs at 3, 6 remote edges at 4
    row = np.sort(t.dist[e00])
    assert list(row) == [0] + [1] * 2 + [2] * 5 + [3] * 6 + [4] * 6


# -- one definition of hops; modules apart --------------------------------------

def test_remote_host_hops_is_the_one_hop_formula():
    from nova_netaware.core.topology import remote_host_hops
    t = Topology(tiny())
    # switches: spine 0, leaf-a 1, leaf-b 2
    assert remote_host_hops(t.dist, 1, 2) == 4
    assert remote_host_hops(t.dist, 1, 1) == 2      # other host, same leaf
    assert remote_host_hops(t.dist, slice(None), [2]).ravel().tolist() == [
        3, 4, 2]
    # host hops: 0 on the host itself, else remote_host_hops of the switches
    for a in range(3):
        for b in range(3):
            want = 0 if a == b else int(remote_host_hops(
                t.dist, t.host_switch[a], t.host_switch[b]))
            assert t.host_hops(a, b) == want
    assert t.max_host_hops == 4


def test_generators_and_reader_live_apart_and_are_reexported():
    from nova_netaware.core import generators
    from nova_netaware.core import readwrite
    from nova_netaware.core import topology
    assert topology.fat_tree is generators.fat_tree
    assert topology.leaf_spine is generators.leaf_spine
    assert topology.load_data_file is readwrite.load_data_file


def test_data_errors_share_the_root(tmp_path):
    from nova_netaware.core.exceptions import NetawareError
    from nova_netaware.core.traffic import TrafficError
    from nova_netaware.core.traffic import TrafficMatrix
    with pytest.raises(TopologyError) as e:
        Topology.from_file(str(tmp_path / 'nope.yaml'))
    assert isinstance(e.value, NetawareError)
    assert isinstance(e.value, ValueError)
    # a traffic file that cannot be read is a traffic error, not a
    # topology error
    with pytest.raises(TrafficError) as e:
        TrafficMatrix.from_file(str(tmp_path / 'nope.yaml'))
    assert not isinstance(e.value, TopologyError)
    assert isinstance(e.value, NetawareError)


def _lonely_and_slow():
    """A leaf-spine with one unlinked switch and one slower link: twins,
    an unreachable switch and unequal latencies."""
    d = leaf_spine(2, 4, 2, 25, 100)
    d['switches'].append({'name': 'lonely'})
    d['links'][0]['latency_us'] = 3.5
    return d


def _random_with_twins(seed):
    """A random sparse fabric where some switches copy the neighbours of
    another (twins, some of them in the same class of three or more), one
    unlinked switch and hosts on a few switches of one component."""
    import random
    rng = random.Random(seed)
    n = rng.randint(4, 14)
    adj = {i: set() for i in range(n)}
    for _ in range(rng.randint(n - 1, 2 * n)):
        a, b = rng.sample(range(n), 2)
        adj[a].add(b)
        adj[b].add(a)
    for _ in range(rng.randint(1, 6)):
        src = rng.randrange(len(adj))
        if not adj[src]:
            continue
        new = len(adj)
        adj[new] = set(adj[src])
        for b in adj[new]:
            adj[b].add(new)
    adj[len(adj)] = set()                   # unlinked
    names = ['s%d' % i for i in range(len(adj))]
    links = sorted({(min(a, b), max(a, b)) for a in adj for b in adj[a]})
    # hosts only where every hosted switch reaches the others
    comp, todo = {0}, [0]
    while todo:
        for b in adj[todo.pop()] - comp:
            comp.add(b)
            todo.append(b)
    hosted = rng.sample(sorted(comp), min(len(comp), rng.randint(1, 4)))
    return {
        'switches': [{'name': x} for x in names],
        'links': [{'a': names[a], 'b': names[b], 'gbps': 10}
                  for a, b in links],
        'hosts': [{'name': 'h%d-%d' % (s, i), 'switch': names[s],
                   'uplink_gbps': 10}
                  for s in hosted for i in range(rng.randint(1, 2))]}


@pytest.mark.parametrize('data', [
    fat_tree(4), fat_tree(8), leaf_spine(4, 10, 3, 25, 100),
    leaf_spine(1, 3, 1, 25, 100), _lonely_and_slow(),
] + [_random_with_twins(seed) for seed in range(40)],
    ids=['fat-tree-4', 'fat-tree-8', 'leaf-spine', 'one-spine',
         'lonely-and-slow'] + ['random-%d' % i for i in range(40)])
def test_distances_equal_all_pairs_searches(data):
    """Hops from the twin classes' quotient graph and latencies by the
    per-hop table are the same numbers, bit for bit, as scipy's all-pairs
    searches on the whole graph; so are the diameter and the longest
    host-to-host distance."""
    from scipy.sparse import csgraph
    from scipy.sparse import csr_matrix
    from nova_netaware.core.topology import UNREACHABLE
    topo = Topology(data)
    n = len(topo.switch_names)
    eu, ev = topo.edge_u, topo.edge_v
    d = csgraph.shortest_path(csr_matrix((np.ones(len(eu)), (eu, ev)),
                                         shape=(n, n)),
                              method='D', unweighted=True)
    hops = np.where(np.isinf(d), UNREACHABLE, d).astype(np.int32)
    lat = csgraph.shortest_path(csr_matrix((topo.edge_lat + 1e-9,
                                            (eu, ev)), shape=(n, n)),
                                method='D')
    np.fill_diagonal(lat, 0.0)
    assert topo.dist.dtype == hops.dtype
    assert np.array_equal(topo.dist, hops)
    some = np.array([n - 1, 0, n // 2, 0])
    assert np.array_equal(topo.lat_to(some), lat[:, some])
    hl = topo.host_lat
    for a in range(min(5, len(topo.host_names))):
        for b in range(len(topo.host_names)):
            sa, sb = topo.host_switch[a], topo.host_switch[b]
            want = 0.0 if a == b else float(hl[a] + hl[b] + lat[sa, sb])
            assert topo.host_latency(a, b) == want
    assert np.array_equal(topo.lat, lat)
    assert topo.diameter == int(hops[hops < UNREACHABLE].max())
    hs = topo.host_switch
    pair = 2 + hops[np.ix_(hs, hs)]
    np.fill_diagonal(pair, 0)
    assert topo.max_host_hops == (int(pair.max()) if len(hs) > 1 else 2)


@pytest.mark.parametrize('data', [
    fat_tree(4), leaf_spine(4, 10, 3, 25, 100), _lonely_and_slow(),
    _random_with_twins(3),
], ids=['fat-tree-4', 'leaf-spine', 'lonely-and-slow', 'random'])
def test_fast_reading_equals_the_checked_reading(data):
    """The vectorised reading of links and hosts gives the arrays of the
    link-by-link and host-by-host one, bit for bit."""
    data = dict(data, hosts=[dict(h, latency_us=0.25 * (i % 3))
                             for i, h in enumerate(data['hosts'])])
    data['links'][-1]['gbps'] = '40.5'
    fast = Topology(data)
    slow = Topology.__new__(Topology)
    slow.source = 'x'
    slow._read_switches(data['switches'])
    slow._read_links_checked(data['links'], 1.0)
    slow._read_hosts_checked(data['hosts'])
    for attr in ('edge_u', 'edge_v', 'edge_cap', 'edge_lat', 'host_switch',
                 'host_cap', 'host_lat'):
        a, b = getattr(fast, attr), getattr(slow, attr)
        assert a.dtype == b.dtype and np.array_equal(a, b), attr
    assert fast.host_names == slow.host_names
    assert fast.host_index == slow.host_index
