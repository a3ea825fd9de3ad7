"""VM selection order of the rebalance advisor, on hand-built cases.

Pure core (no Nova): nova_netaware.advisor.hot_spots / select / plan.
Topology for all cases: one spine, two leaves, two hosts per leaf::

    leaf-1: compute-1 compute-2      leaf-2: compute-3 compute-4
"""

import pytest

from nova_netaware import advisor
from nova_netaware.core.engine import Engine
from nova_netaware.core.engine import Params
from nova_netaware.core.engine import Server
from nova_netaware.core.topology import leaf_spine
from nova_netaware.core.topology import Topology
from nova_netaware.core.traffic import TrafficMatrix


def engine(uplink_gbps=10, fabric_gbps=10):
    return Engine(Topology(leaf_spine(1, 2, 2, uplink_gbps=uplink_gbps,
                                      fabric_gbps=fabric_gbps)))


def traffic(*flows):
    return TrafficMatrix({'flows': [{'src': s, 'dst': d, 'mbps': r}
                                    for s, d, r in flows]})


def idle(hosts=('compute-1', 'compute-2', 'compute-3', 'compute-4')):
    return {h: advisor.HostUsage(16, 2, 65536, 8192) for h in hosts}


def selection(eng, tm, placement, usage, **kw):
    over, up, fab = advisor.hot_spots(eng, tm, placement, usage, **kw)
    return over, up, fab, advisor.select(eng, tm, placement, over, up, fab)


def test_congested_uplink_highest_incoming_first():
    eng = engine()
    placement = {'a': 'compute-1', 'b': 'compute-1', 'c': 'compute-1',
                 'x': 'compute-3', 'y': 'compute-3', 'z': 'compute-4'}
    # compute-1 receives 8.5 of 10 Gbit/s: its uplink is over 0.8, and so
    # is compute-3's (sender side) and the spine -> leaf-1 link.
    tm = traffic(('x', 'a', 5000), ('y', 'b', 3000), ('x', 'c', 500),
                 ('z', 'y', 100))
    over, up, fab, sel = selection(eng, tm, placement, idle())
    assert over == []
    assert sorted(up) == ['compute-1', 'compute-3']
    assert len(fab) == 2          # leaf-2 -> spine and spine -> leaf-1
    assert [(s, r) for s, r, _ in sel] == [
        ('a', 5000.0), ('b', 3000.0), ('c', 500.0), ('y', 100.0),
        ('x', 0.0)]
    why = {s: w for s, _, w in sel}
    assert why['a'] == 'uplink of compute-1 congested'
    assert why['x'] == 'uplink of compute-3 congested'
    # z sends to y inside leaf-2 from an idle uplink: it is not involved,
    # y is (its own uplink is congested) and counts z's 100 Mbit/s.
    assert 'z' not in why


def test_overloaded_host_only_its_servers_in_incoming_order():
    eng = engine()
    placement = {'p': 'compute-2', 'q': 'compute-2', 's': 'compute-2',
                 'r': 'compute-4', 'o': 'compute-3'}
    tm = traffic(('o', 'p', 100), ('o', 'q', 200), ('o', 'r', 900))
    usage = idle()
    usage['compute-2'] = advisor.HostUsage(16, 15.5, 65536, 8192)  # 97%
    over, up, fab, sel = selection(eng, tm, placement, usage)
    assert over == ['compute-2'] and up == [] and fab == []
    # r has the most incoming traffic but is on a healthy host; s has none
    # but is on the overloaded one.
    assert [(s, r) for s, r, _ in sel] == [('q', 200.0), ('p', 100.0),
                                           ('s', 0.0)]
    assert all(w == 'host compute-2 overloaded' for _, _, w in sel)


def test_ram_threshold_counts_too():
    eng = engine()
    placement = {'p': 'compute-1'}
    usage = idle()
    usage['compute-1'] = advisor.HostUsage(16, 1, 1000, 950)
    over, _, _, sel = selection(eng, traffic(), placement, usage,
                                ram_threshold=0.9)
    assert over == ['compute-1'] and [s for s, _, _ in sel] == ['p']
    over, _, _, sel = selection(eng, traffic(), placement, usage,
                                ram_threshold=0.96)
    assert over == [] and sel == []


def test_congested_fabric_link_selects_both_ends_not_local_flows():
    # Big uplinks, thin fabric: only the spine -> leaf-1 link is hot.
    eng = engine(uplink_gbps=100, fabric_gbps=10)
    placement = {'m': 'compute-1', 'n': 'compute-3', 'k': 'compute-2',
                 'l': 'compute-4', 'j': 'compute-1', 'i': 'compute-2'}
    tm = traffic(('n', 'm', 4500), ('l', 'k', 4000), ('i', 'j', 9000))
    over, up, fab, sel = selection(eng, tm, placement, idle())
    assert up == [] and len(fab) == 2
    # j has the highest incoming traffic of all, but its flow stays in the
    # rack: it is not involved.
    assert [(s, r) for s, r, _ in sel] == [
        ('m', 4500.0), ('k', 4000.0), ('l', 0.0), ('n', 0.0)]
    assert {w for _, _, w in sel} <= {'link leaf-2-spine-1 congested',
                                      'link spine-1-leaf-1 congested'}


def test_ties_broken_by_server_id():
    eng = engine()
    placement = {'b2': 'compute-1', 'b1': 'compute-1', 'src': 'compute-3'}
    tm = traffic(('src', 'b2', 4300), ('src', 'b1', 4300))
    _, _, _, sel = selection(eng, tm, placement, idle())
    assert [s for s, _, _ in sel][:2] == ['b1', 'b2']


def test_no_hot_spot_selects_nothing():
    eng = engine()
    placement = {'a': 'compute-1', 'b': 'compute-3'}
    tm = traffic(('a', 'b', 1000))
    _, _, _, sel = selection(eng, tm, placement, idle())
    assert sel == []
    p = advisor.plan(eng, tm, placement, {}, idle())
    assert p.steps == [] and p.cost_before == p.cost_after == 4000.0


@pytest.mark.parametrize('limit', [1, 2])
def test_plan_follows_selection_order_and_limit(limit):
    eng = engine()
    placement = {'a': 'compute-1', 'b': 'compute-1', 'x': 'compute-3',
                 'y': 'compute-4'}
    tm = traffic(('x', 'a', 5000), ('y', 'b', 3500))
    servers = {u: Server(u, memory_mb=1024, vcpus=1) for u in placement}
    p = advisor.plan(eng, tm, placement, servers, idle(),
                     max_migrations=limit)
    # a first (5000 in), next to its peer x; then b next to y.
    assert [(s.server, s.destination) for s in p.moves] == [
        ('a', 'compute-3'), ('b', 'compute-4')][:limit]
    # network cost = sum rate x hops; cross-leaf = 4 hops, same host 0.
    assert p.cost_before == 5000 * 4 + 3500 * 4
    assert p.cost_after == (3500 * 4 if limit == 1 else 0.0)
    assert p.cost_after == advisor.network_cost(eng.topo, tm,
                                                p.placement_after)
    assert p.util_before == pytest.approx(0.85)
    assert p.util_after < p.util_before


def test_later_steps_see_earlier_moves():
    # c and d both want to join x on compute-3, which can take only one
    # more 1-vCPU server within the 90% CPU threshold (17 -> 18 of 20):
    # the second is sent elsewhere on leaf-2.
    eng = engine()
    placement = {'c': 'compute-1', 'd': 'compute-1', 'x': 'compute-3'}
    tm = traffic(('x', 'c', 4600), ('x', 'd', 4200))
    usage = idle()
    usage['compute-3'] = advisor.HostUsage(20, 17, 65536, 8192)
    servers = {u: Server(u, memory_mb=1024, vcpus=1) for u in placement}
    p = advisor.plan(eng, tm, placement, servers, usage, max_migrations=2)
    assert [(s.server, s.destination) for s in p.moves] == [
        ('c', 'compute-3'), ('d', 'compute-4')]
    # with room for both, both join x: the diversion came from the first
    # move's use of compute-3
    usage['compute-3'] = advisor.HostUsage(20, 10, 65536, 8192)
    p2 = advisor.plan(eng, tm, placement, servers, usage, max_migrations=2)
    assert [(s.server, s.destination) for s in p2.moves] == [
        ('c', 'compute-3'), ('d', 'compute-3')]


def _gain_case():
    # compute-1 is overloaded (15 of 16 vCPUs); a (highest incoming)
    # leaves for its peer x on compute-3 and relieves it (14/16 < 0.9).
    # b is then an improvement move: its own cost is 100 x 4 hops = 400;
    # on compute-3 it would be 95 x 4 = 380 (p stays on compute-1): a
    # gain of 20, 5% of 400.
    eng = engine()
    placement = {'a': 'compute-1', 'b': 'compute-1', 'p': 'compute-1',
                 'x': 'compute-3', 'q': 'compute-3'}
    tm = traffic(('x', 'a', 1000), ('q', 'b', 100), ('p', 'b', 95))
    usage = idle()
    usage['compute-1'] = advisor.HostUsage(16, 15, 65536, 8192)
    servers = {u: Server(u, memory_mb=1024, vcpus=1) for u in placement}
    return eng, tm, placement, usage, servers


@pytest.mark.parametrize('min_gain,b_moves', [(0.1, False), (0.06, False),
                                              (0.04, True), (0.0, True)])
def test_improvement_move_needs_min_gain(min_gain, b_moves):
    eng, tm, placement, usage, servers = _gain_case()
    params = Params(migration_weight=0.0)     # winner = lowest comm cost
    p = advisor.plan(eng, tm, placement, servers, usage, params,
                     max_migrations=5, min_gain=min_gain)
    assert p.overloaded_hosts == ['compute-1']
    moves = [(s.server, s.destination) for s in p.moves]
    assert moves[0] == ('a', 'compute-3')           # relief: always
    assert (('b', 'compute-3') in moves) == b_moves
    if not b_moves:
        note = [s.note for s in p.steps if s.server == 'b'][0]
        assert 'lower the network cost by 20 Mbit/s x hop (5% of the ' \
               'server\'s 400)' in note
        assert 'minimum gain of %.0f%%' % (100 * min_gain) in note


def test_relief_move_ignores_min_gain():
    # the same b, but compute-1 stays overloaded after a leaves (16 of 16
    # used): b's move relieves the host and is planned despite its 5%.
    eng, tm, placement, usage, servers = _gain_case()
    usage['compute-1'] = advisor.HostUsage(16, 16, 65536, 8192)
    p = advisor.plan(eng, tm, placement, servers, usage,
                     Params(migration_weight=0.0), min_gain=0.5)
    assert [(s.server, s.destination) for s in p.moves][:2] == [
        ('a', 'compute-3'), ('b', 'compute-3')]


def test_server_cost_is_its_share_of_network_cost():
    eng, tm, placement, _, _ = _gain_case()
    assert advisor.server_cost(eng.topo, tm, placement, 'b') == 400.0
    assert advisor.server_cost(eng.topo, tm, placement, 'a') == 4000.0
    # every flow has two ends: the shares sum to twice the total
    total = sum(advisor.server_cost(eng.topo, tm, placement, s)
                for s in placement)
    assert total == 2 * advisor.network_cost(eng.topo, tm, placement)


# -- issue 16: a plan with no move says why ------------------------------

def _congested():
    placement = {'a': 'compute-1', 'x': 'compute-3'}
    tm = traffic(('x', 'a', 9000))
    servers = {u: Server(u, memory_mb=1024, vcpus=1) for u in placement}
    return engine(), tm, placement, servers


def test_no_hot_spot_is_the_reason():
    eng, _, placement, servers = _congested()
    p = advisor.plan(eng, traffic(('x', 'a', 100)), placement, servers,
                     idle())
    assert p.moves == []
    assert p.reasons == ['no hot spot: no host above 90% of its vCPUs or '
                         '90% of its RAM, no link above 80% utilisation']


def test_zero_budget_is_the_reason():
    eng, tm, placement, servers = _congested()
    p = advisor.plan(eng, tm, placement, servers, idle(), max_migrations=0)
    assert p.moves == [] and p.congested_links
    assert p.reasons == ['the migration budget is 0 (max_migrations): 2 '
                         'server(s) involved in the hot spots were not '
                         'considered']
    assert advisor.plan(eng, tm, placement, servers, idle()).reasons == []


def test_every_candidate_refused_is_the_reason():
    eng, tm, placement, servers = _congested()
    usage = {h: advisor.HostUsage(16, 16, 65536, 8192)
             for h in eng.topo.host_names}
    p = advisor.plan(eng, tm, placement, servers, usage)
    assert p.moves == []
    assert p.reasons == ['2 of 2 server(s) involved had no candidate host '
                         'within the CPU and RAM thresholds']
