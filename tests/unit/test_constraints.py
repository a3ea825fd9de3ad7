"""Each hard constraint through Engine.evaluate, with hand-computed numbers.

Topology unless said otherwise: leaf_spine(2, 3, 2) -- spine-1, spine-2;
leaf-1 {compute-1, compute-2}, leaf-2 {compute-3, compute-4}, leaf-3
{compute-5, compute-6}; host uplinks 25 Gbit/s = 25000 Mbit/s.
The server "vm" sits on compute-1 unless said otherwise.
"""

import math

import numpy as np
import pytest

from nova_netaware.core.engine import Candidate
from nova_netaware.core.engine import Server
from nova_netaware.core.topology import leaf_spine
from nova_netaware.core.topology import Topology

from tests.unit._core import by_host
from tests.unit._core import evaluate
from tests.unit._core import ls232

MBIT_PER_MB = 8.388608
OTHERS = ['compute-2', 'compute-3', 'compute-4', 'compute-5', 'compute-6']


def reasons(ev):
    return {h: ev.reasons.get(h, []) for h in ev.hosts}


def passing(ev):
    return [h for h, ok in by_host(ev, 'passed').items() if ok]


# -- 1. server capacity ------------------------------------------------------

def capacity_eval(**pkw):
    cands = [Candidate('compute-2', free_ram_mb=4096, free_vcpus=2),
             Candidate('compute-3', free_ram_mb=2048, free_vcpus=8),
             Candidate('compute-4', free_ram_mb=8192, free_vcpus=1.5)]
    srv = Server('vm', memory_mb=4096, vcpus=2, dirty_rate_mbps=0)
    return evaluate(ls232(), [], {'vm': 'compute-1'}, srv, cands, **pkw)


def test_capacity():
    ev = capacity_eval()
    # exactly enough passes; less RAM or fewer vCPUs fails
    assert reasons(ev) == {
        'compute-2': [],
        'compute-3': ['capacity: free RAM 2048 MB < flavor 4096 MB'],
        'compute-4': ['capacity: free vCPUs 1.5 < flavor 2']}
    assert passing(ev) == ['compute-2']


def test_capacity_check_can_be_disabled():
    ev = capacity_eval(check_server_capacity=False)
    assert passing(ev) == ['compute-2', 'compute-3', 'compute-4']


def test_capacity_unknown_free_resources_do_not_refuse():
    srv = Server('vm', memory_mb=4096, vcpus=2, dirty_rate_mbps=0)
    ev = evaluate(ls232(), [], {'vm': 'compute-1'}, srv,
                  [Candidate('compute-2', free_ram_mb=10, free_vcpus=None),
                   Candidate('compute-3')])
    # one candidate without numbers: the RAM check is skipped for all
    # (free_vcpus missing everywhere too)
    assert passing(ev) == ['compute-2', 'compute-3']


# -- 2. uplink bandwidth, out and in, with the ceiling ------------------------

PEER = [('vm', 'p', 5000.0), ('p', 'vm', 2000.0)]


def uplink_eval(background, **pkw):
    # vm (compute-1) sends 5000 to p (compute-3) and receives 2000;
    # x (compute-5) sends *background* to y (compute-6), same leaf.
    flows = PEER + [('x', 'y', background)]
    pl = {'vm': 'compute-1', 'p': 'compute-3', 'x': 'compute-5',
          'y': 'compute-6'}
    return evaluate(ls232(), flows, pl, 'vm', OTHERS, **pkw)


def test_uplink_out_over_ceiling():
    ev = uplink_eval(18000.0)
    # compute-5 out: 18000 + 5000 = 23000 / 25000 = 92% > 90%
    # compute-6 in:  18000 + 2000 = 20000 / 25000 = 80%  (passes)
    assert reasons(ev)['compute-5'] == [
        'uplink: out 18000 + 5000 Mbit/s on 25000 Mbit/s = 92.0% > 90.0%']
    assert passing(ev) == ['compute-2', 'compute-3', 'compute-4',
                           'compute-6']
    util_up = dict(zip(ev.hosts, ev.congestion))
    assert util_up['compute-6'] == pytest.approx(0.8, rel=1e-12)


def test_uplink_ceiling_is_configurable():
    # 92% passes under a 95% ceiling, and exactly at a 92% ceiling
    assert passing(uplink_eval(18000.0, max_link_utilization=0.95)) == \
        OTHERS
    assert passing(uplink_eval(18000.0, max_link_utilization=0.92)) == \
        OTHERS
    assert 'compute-5' not in passing(
        uplink_eval(18000.0, max_link_utilization=0.919))


def test_uplink_in_over_ceiling():
    ev = uplink_eval(22000.0)
    # compute-5 out: 22000 + 5000 = 27000 / 25000 = 108%
    # compute-6 in:  22000 + 2000 = 24000 / 25000 = 96%
    assert reasons(ev)['compute-5'] == [
        'uplink: out 22000 + 5000 Mbit/s on 25000 Mbit/s = 108.0% > 90.0%']
    assert reasons(ev)['compute-6'] == [
        'uplink: in 22000 + 2000 Mbit/s on 25000 Mbit/s = 96.0% > 90.0%']
    # exactly at the ceiling passes
    assert passing(uplink_eval(22000.0, max_link_utilization=0.96)) == [
        'compute-2', 'compute-3', 'compute-4', 'compute-6']


def test_uplink_not_held_against_a_host_the_move_adds_nothing_to():
    # z (compute-3) -> w (compute-4) 24000: compute-3's uplink is at 96%
    # out, but moving vm onto p's host compute-3 keeps all of vm's
    # traffic on the host: out add = 5000 - 5000 = 0, in add = 2000 - 2000.
    flows = PEER + [('z', 'w', 24000.0)]
    pl = {'vm': 'compute-1', 'p': 'compute-3', 'z': 'compute-3',
          'w': 'compute-4'}
    ev = evaluate(ls232(), flows, pl, 'vm', OTHERS)
    r = reasons(ev)
    assert r['compute-3'] == []
    # compute-4 in: 24000 + 2000 = 26000 / 25000 = 104%
    assert r['compute-4'] == [
        'uplink: in 24000 + 2000 Mbit/s on 25000 Mbit/s = 104.0% > 90.0%']
    # and the congestion term does not count it: vm's traffic uses no
    # link at all on compute-3 (the busy uplink carries none of it)
    assert by_host(ev, 'congestion')['compute-3'] == 0.0


# -- 3. path bandwidth --------------------------------------------------------

def ls_slow_fabric():
    """leaf_spine(2, 3, 2) with 10 Gbit/s = 10000 Mbit/s fabric links."""
    return ls232(fabric_gbps=10)


def path_eval(flows, **pkw):
    pl = {'vm': 'compute-1', 'p': 'compute-5', 'a': 'compute-3',
          'b': 'compute-6'}
    return evaluate(ls_slow_fabric(), flows, pl, 'vm', OTHERS, **pkw)


def test_path_out_direction():
    # vm -> p (leaf-1 -> leaf-3) 4000; a (leaf-2) -> b (leaf-3) 12000,
    # split 6000 over leaf-2 -> spine-1/2 and spine-1/2 -> leaf-3.
    # Without vm: leaf-2 -> spine-s 6000, spine-s -> leaf-3 6000.
    # compute-3/4 (leaf-2): leaf-2 -> spine-s (6000 + 4000)/10000 = 100%.
    # compute-2 (leaf-1): spine-s -> leaf-3 would be (6000 + 4000) = 100%
    # too, but those links already carry vm's traffic (on a shortest path
    # from the source switch): not held against the host.
    ev = path_eval([('vm', 'p', 4000.0), ('a', 'b', 12000.0)])
    r = reasons(ev)
    msg = ("path: link between leaf-2 and leaf-3 at 100.0% > 90.0% with "
           "this server's traffic")
    assert r['compute-3'] == [msg]
    assert r['compute-4'] == [msg]
    assert passing(ev) == ['compute-2', 'compute-5', 'compute-6']
    cong = by_host(ev, 'congestion')
    # the congestion term does count the busy spine -> leaf-3 links
    assert cong['compute-2'] == pytest.approx(1.0, rel=1e-12)
    # compute-6 (leaf-3): its busy downlink (12000 / 25000 = 0.48) is not
    # used by vm, which only sends: its uplink 4000 / 25000 = 0.16 and
    # p's downlink 4000 / 25000 = 0.16
    assert cong['compute-6'] == pytest.approx(0.16, rel=1e-12)
    # with a 100% ceiling the leaf-2 hosts pass
    assert passing(path_eval([('vm', 'p', 4000.0), ('a', 'b', 12000.0)],
                             max_link_utilization=1.0)) == OTHERS


def test_path_in_direction():
    # p -> vm (leaf-3 -> leaf-1) 4000; b (leaf-3) -> a (leaf-2) 12000:
    # spine-s -> leaf-2 carry 6000; for compute-3/4 the traffic from p
    # arrives over spine-s -> leaf-2: (6000 + 4000)/10000 = 100%.
    ev = path_eval([('p', 'vm', 4000.0), ('b', 'a', 12000.0)])
    r = reasons(ev)
    msg = ("path: link between leaf-2 and leaf-3 at 100.0% > 90.0% with "
           "this server's traffic")
    assert r['compute-3'] == [msg]
    assert r['compute-4'] == [msg]
    assert passing(ev) == ['compute-2', 'compute-5', 'compute-6']


def test_path_direction_without_traffic_is_not_held_against_a_host():
    # vm -> p (compute-5) 1000 only, nothing comes back. b (compute-6) ->
    # a (compute-3) 19000 fills leaf-3 -> spine-s and spine-s -> leaf-2
    # with 9500 each (95%). compute-4 (leaf-2) sends to leaf-3 over
    # leaf-2 -> spine-s -> leaf-3: (0 + 1000) / 10000 = 10%. The busy
    # links point the other way and gain nothing from vm: it passes.
    # BUG found (fixed in core/engine.py): the check and the congestion
    # term took both directions of every path, also one the server sends
    # nothing on: compute-4 was refused with "95.0% > 90.0%".
    flows = [('vm', 'p', 1000.0), ('b', 'a', 19000.0)]
    pl = {'vm': 'compute-1', 'p': 'compute-5', 'a': 'compute-3',
          'b': 'compute-6'}
    ev = evaluate(ls_slow_fabric(), flows, pl, 'vm',
                  ['compute-2', 'compute-4'])
    assert reasons(ev) == {'compute-2': [], 'compute-4': []}
    # congestion: compute-2 leaf-1 -> spine-s -> leaf-3 10%, p's downlink
    # 1000 / 25000 = 4%, own uplink 4% -> 0.1; compute-4 likewise 0.1
    assert by_host(ev, 'congestion') == {
        'compute-2': pytest.approx(0.1, rel=1e-12),
        'compute-4': pytest.approx(0.1, rel=1e-12)}
    # the same background with the traffic reversed (p -> vm) does load
    # spine-s -> leaf-2: (9500 + 1000) / 10000 = 105% for compute-4
    flows = [('p', 'vm', 1000.0), ('b', 'a', 19000.0)]
    ev = evaluate(ls_slow_fabric(), flows, pl, 'vm',
                  ['compute-2', 'compute-4'])
    assert reasons(ev)['compute-4'] == [
        "path: link between leaf-2 and leaf-3 at 105.0% > 90.0% with this "
        "server's traffic"]


def test_source_uplink_direction_without_traffic_is_not_held():
    # q stays on compute-1 and only sends to vm (q -> vm 3000); c
    # (compute-2) -> d (compute-1) 20000 fills compute-1's downlink (80%).
    # Leaving puts q -> vm on compute-1's *uplink* (3000 / 25000 = 12%),
    # not on its downlink: compute-3 passes.
    # (Before the fix the downlink was taken too and 80% counted; with a
    # 0.75 ceiling compute-3 was refused on a link vm adds nothing to.)
    flows = [('q', 'vm', 3000.0), ('c', 'd', 20000.0)]
    pl = {'vm': 'compute-1', 'q': 'compute-1', 'c': 'compute-2',
          'd': 'compute-1'}
    ev = evaluate(ls_slow_fabric(), flows, pl, 'vm', ['compute-3'],
                  max_link_utilization=0.75)
    assert reasons(ev) == {'compute-3': []}
    # congestion: leaf-1 -> spine-s -> leaf-2 3000 / 10000 = 0.3
    assert by_host(ev, 'congestion')['compute-3'] == \
        pytest.approx(0.3, rel=1e-12)


def test_path_below_ceiling_passes():
    # 4000 + 4000 = 8000 / 10000 = 80% < 90%
    ev = path_eval([('vm', 'p', 4000.0), ('a', 'b', 8000.0)])
    assert passing(ev) == OTHERS


def test_path_peer_uplink_on_the_source_host():
    # q lives with vm on compute-1; vm -> q 3000 stays on the host today.
    # c (compute-2) -> d (compute-1) 20000 fills compute-1's downlink.
    # Leaving compute-1 puts vm -> q on compute-1's downlink:
    # (20000 + 3000) / 25000 = 92% > 90%.
    flows = [('vm', 'q', 3000.0), ('c', 'd', 20000.0)]
    pl = {'vm': 'compute-1', 'q': 'compute-1', 'c': 'compute-2',
          'd': 'compute-1'}
    ev = evaluate(ls_slow_fabric(), flows, pl, 'vm',
                  ['compute-1', 'compute-2', 'compute-3'])
    src_msg = ("path: link uplink of source host compute-1 (peers stay "
               "there) at 92.0% > 90.0% with this server's traffic")
    r = reasons(ev)
    # staying adds nothing
    assert r['compute-1'] == []
    # compute-3's fabric path leaf-2 -> leaf-1: 3000/10000 = 30%
    assert r['compute-3'] == [src_msg]
    # compute-2 out: 20000 + 3000 = 23000 / 25000 = 92% as well
    assert r['compute-2'] == [
        'uplink: out 20000 + 3000 Mbit/s on 25000 Mbit/s = 92.0% > 90.0%',
        src_msg]
    ev = evaluate(ls_slow_fabric(), flows, pl, 'vm',
                  ['compute-1', 'compute-2', 'compute-3'],
                  max_link_utilization=0.95)
    assert passing(ev) == ['compute-1', 'compute-2', 'compute-3']


# -- 4. distance to peers -----------------------------------------------------

DIST_FLOWS = [('vm', 'p', 100.0), ('q', 'vm', 100.0)]
DIST_PL = {'vm': 'compute-1', 'p': 'compute-3', 'q': 'compute-4'}
# Farthest peer in hops: compute-2 -> leaf-2: 4; compute-3: p on the host
# (0), q on the same leaf (2); compute-4 likewise 2; compute-5/6: 4.
FAR = ['compute-2', 'compute-5', 'compute-6']


def dist_eval(topo=None, srv=None, **pkw):
    return evaluate(topo or ls232(), DIST_FLOWS, DIST_PL,
                    srv or Server('vm'), OTHERS, **pkw)


def test_max_hops_from_server_override():
    ev = dist_eval(srv=Server('vm', max_hops=2))
    for h in FAR:
        assert reasons(ev)[h] == ['distance: 4 hops to a peer > max_hops 2']
    assert passing(ev) == ['compute-3', 'compute-4']


def test_max_hops_from_params_and_override_precedence():
    assert passing(dist_eval(max_hops=3)) == ['compute-3', 'compute-4']
    assert passing(dist_eval(max_hops=1)) == []
    assert reasons(dist_eval(max_hops=1))['compute-3'] == [
        'distance: 2 hops to a peer > max_hops 1']
    # the server's bound wins over the default, both ways
    assert passing(dist_eval(srv=Server('vm', max_hops=4),
                             max_hops=2)) == OTHERS
    assert passing(dist_eval(srv=Server('vm', max_hops=2),
                             max_hops=4)) == ['compute-3', 'compute-4']
    # 0 disables, also as an override
    assert passing(dist_eval(srv=Server('vm', max_hops=0),
                             max_hops=2)) == OTHERS
    assert passing(dist_eval()) == OTHERS


def test_single_peer_on_candidate_host_is_zero_hops():
    ev = evaluate(ls232(), [('vm', 'p', 100.0)],
                  {'vm': 'compute-1', 'p': 'compute-3'},
                  Server('vm', max_hops=1), OTHERS)
    # only compute-3 (0 hops) meets max_hops 1; compute-4 is 2 hops away
    assert passing(ev) == ['compute-3']
    assert reasons(ev)['compute-4'] == [
        'distance: 2 hops to a peer > max_hops 1']


def test_max_latency_from_server_override():
    # 2 us per link, 0 per host: leaf-1 -> leaf-2 = 4 us; same leaf 0.
    ev = dist_eval(srv=Server('vm', max_latency_us=3.5))
    for h in FAR:
        assert reasons(ev)[h] == [
            'distance: 4.0 us to a peer > max_latency_us 3.5']
    assert passing(ev) == ['compute-3', 'compute-4']
    assert passing(dist_eval(max_latency_us=3.5)) == ['compute-3',
                                                      'compute-4']
    assert passing(dist_eval(max_latency_us=4.5)) == OTHERS
    assert passing(dist_eval(srv=Server('vm', max_latency_us=5.0),
                             max_latency_us=1.0)) == OTHERS


def latency_topo():
    """ls232 with host latencies: compute-2 0.25, compute-3 1.5,
    compute-4 0.5, compute-5 1.0 us (others 0)."""
    d = leaf_spine(2, 3, 2)
    for h in d['hosts']:
        h['latency_us'] = {'compute-2': 0.25, 'compute-3': 1.5,
                           'compute-4': 0.5, 'compute-5': 1.0}.get(
                               h['name'], 0.0)
    return Topology(d)


def test_max_latency_with_host_latencies():
    # peers p on compute-3 (1.5 us), q on compute-4 (0.5 us); links 2 us.
    # compute-2: to p 0.25 + 4 + 1.5 = 5.75, to q 0.25 + 4 + 0.5 = 4.75
    # compute-4: to p 0.5 + 1.5 = 2.0, q on the host 0          -> 2.0
    # compute-5: to p 1.0 + 4 + 1.5 = 6.5                        -> 6.5
    # compute-6: to p 0 + 4 + 1.5 = 5.5                          -> 5.5
    ev = dist_eval(topo=latency_topo(), max_latency_us=5.6)
    r = reasons(ev)
    assert r['compute-2'] == [
        'distance: 5.8 us to a peer > max_latency_us 5.6']
    assert r['compute-5'] == [
        'distance: 6.5 us to a peer > max_latency_us 5.6']
    assert r['compute-4'] == [] and r['compute-6'] == []
    ev = dist_eval(topo=latency_topo(), max_latency_us=2.0)
    assert 'compute-4' in passing(ev)


def test_max_latency_candidate_hosting_the_farthest_peer():
    # compute-3 hosts p (1.5 us uplink); its only other peer q is on
    # compute-4: 1.5 + 0.5 = 2.0 us. The bound 2.5 us must pass it.
    # BUG found (fixed in core/engine.py): the engine took the largest
    # host latency of *all* peers on the candidate's switch, including the
    # peer on the candidate itself: 1.5 + 1.5 = 3.0 us > 2.5, refused.
    ev = dist_eval(topo=latency_topo(), max_latency_us=2.5)
    assert reasons(ev)['compute-3'] == []
    ev = dist_eval(topo=latency_topo(), max_latency_us=1.9)
    assert reasons(ev)['compute-3'] == [
        'distance: 2.0 us to a peer > max_latency_us 1.9']


# -- 5. migration feasibility -------------------------------------------------
#
# fabric 10 Gbit/s; b (compute-4) -> c (compute-6) 4000 puts 2000 on
# leaf-2 -> spine-s and spine-s -> leaf-3. vm has no peers; 8192 MB =
# 8192 * 8.388608 = 68719.476736 Mbit. Ceiling 0.9. Bottleneck B:
#   source uplink out: 0.9 * 25000 - 0 = 22500
#   compute-2 (same leaf): down 22500, no fabric        -> 22500
#   compute-3/4 (leaf-2): leaf-1 -> spine-s -> leaf-2 free 9000  -> 9000
#   compute-5 (leaf-3): spine-s -> leaf-3 0.9*10000 - 2000 = 7000 -> 7000
#   compute-6: down 0.9 * 25000 - 4000 = 18500; fabric 7000       -> 7000

MEM = 8192
M_MBIT = 68719.476736


def mig_eval(srv=None, hosts=OTHERS, **pkw):
    srv = srv or Server('vm', memory_mb=MEM)
    return evaluate(ls_slow_fabric(), [('b', 'c', 4000.0)],
                    {'vm': 'compute-1', 'b': 'compute-4', 'c': 'compute-6'},
                    srv, hosts, **pkw)


def test_migration_bottleneck_bandwidth():
    ev = mig_eval(srv=Server('vm', memory_mb=MEM, dirty_rate_mbps=0))
    assert list(ev.bandwidth) == [22500.0, 9000.0, 9000.0, 7000.0, 7000.0]
    # D = 0: time = M / B
    assert ev.migration_time_s == pytest.approx(
        [M_MBIT / 22500, M_MBIT / 9000, M_MBIT / 9000, M_MBIT / 7000,
         M_MBIT / 7000], rel=1e-12)
    assert passing(ev) == OTHERS


def test_migration_lambda_one_or_more_is_refused():
    # D = 9000: compute-3/4 lambda = 9000/9000 = 1; compute-5/6 9000/7000
    # = 1.29; compute-2 9000/22500 = 0.4: n >= log(0.5 * 22500 / M) /
    # log(0.4) = 1.97 -> 2 rounds, downtime M * 0.16 / 22500 = 0.489 s.
    ev = mig_eval(srv=Server('vm', memory_mb=MEM, dirty_rate_mbps=9000))
    r = reasons(ev)
    assert r['compute-3'] == [
        'migration: does not converge, lambda = D/B = 9000/9000 = 1.00']
    assert r['compute-6'] == [
        'migration: does not converge, lambda = D/B = 9000/7000 = 1.29']
    assert passing(ev) == ['compute-2']
    assert ev.lam == pytest.approx([0.4, 1.0, 1.0, 9000 / 7000,
                                    9000 / 7000], rel=1e-12)
    # V = M (1 - 0.4^3) / 0.6 = 1.56 M; time = 1.56 M / 22500 = 4.7646 s
    assert ev.migration_time_s[0] == pytest.approx(1.56 * M_MBIT / 22500,
                                                   rel=1e-12)
    # the default dirty rate of Params is used when the server has none
    ev2 = mig_eval(dirty_rate_mbps=9000)
    assert reasons(ev2) == r


def test_migration_bandwidth_cap_option():
    # capped at 1000 Mbit/s, D = 1000 -> lambda = 1 everywhere
    ev = mig_eval(srv=Server('vm', memory_mb=MEM, dirty_rate_mbps=1000),
                  max_migration_bandwidth_mbps=1000)
    assert list(ev.bandwidth) == [1000.0] * 5
    assert passing(ev) == []
    assert reasons(ev)['compute-2'] == [
        'migration: does not converge, lambda = D/B = 1000/1000 = 1.00']


def test_max_migration_time():
    # D = 0: compute-5/6 take 68719.48 / 7000 = 9.82 s > 8 s; compute-3/4
    # 7.64 s and compute-2 3.05 s pass.
    srv = Server('vm', memory_mb=MEM, dirty_rate_mbps=0)
    ev = mig_eval(srv=srv, max_migration_time_s=8)
    assert reasons(ev)['compute-5'] == [
        'migration: 10 s predicted > max_migration_time_s 8 (8192 MB over '
        '7000 Mbit/s)']
    assert passing(ev) == ['compute-2', 'compute-3', 'compute-4']
    # 0 disables the bound
    assert passing(mig_eval(srv=srv, max_migration_time_s=0)) == OTHERS
    # exactly the predicted time passes
    assert 'compute-5' in passing(mig_eval(
        srv=srv, max_migration_time_s=M_MBIT / 7000))


def test_migration_downtime_with_max_rounds():
    # D = 4500. compute-3 lambda = 0.5: n >= log(0.5 * 9000 / M) / log 0.5
    #   = log2(1 / 0.065484) = 3.93 -> 4, downtime M / 16 / 9000 = 0.477 s.
    # With at most 3 rounds: M * 0.125 / 9000 = 0.954 s > 0.5 s: refused.
    # compute-2 lambda = 0.2: n = ceil(1.12) = 2 <= 3, fine.
    # compute-5 lambda = 0.643: needs 7 rounds; after 3:
    #   M * 0.643^3 / 7000 = 2.608 s.
    srv = Server('vm', memory_mb=MEM, dirty_rate_mbps=4500)
    ev = mig_eval(srv=srv)
    assert passing(ev) == OTHERS
    # 30 rounds: V = M (1 - 0.5^5) / 0.5 = 1.9375 M; time = V / 9000
    assert ev.migration_time_s[1] == pytest.approx(1.9375 * M_MBIT / 9000,
                                                   rel=1e-12)
    ev = mig_eval(srv=srv, max_precopy_rounds=3)
    r = reasons(ev)
    assert r['compute-2'] == []
    assert r['compute-3'] == [
        'migration: does not converge, lambda = D/B = 4500/9000 = 0.50 '
        '(downtime 954 ms > 500 ms after 3 rounds)']
    assert r['compute-5'] == [
        'migration: does not converge, lambda = D/B = 4500/7000 = 0.64 '
        '(downtime 2608 ms > 500 ms after 3 rounds)']
    # a 3 s downtime allows compute-5/6 after 3 rounds; 1 s compute-3/4
    ev = mig_eval(srv=srv, max_precopy_rounds=3,
                  live_migration_downtime_ms=1000)
    assert passing(ev) == ['compute-2', 'compute-3', 'compute-4']
    ev = mig_eval(srv=srv, max_precopy_rounds=3,
                  live_migration_downtime_ms=3000)
    assert passing(ev) == OTHERS


def test_migration_to_the_source_host_is_free():
    srv = Server('vm', memory_mb=MEM, dirty_rate_mbps=1e9)
    ev = mig_eval(srv=srv, hosts=['compute-1', 'compute-2'])
    assert by_host(ev, 'passed') == {'compute-1': True, 'compute-2': False}
    assert ev.bandwidth[0] == math.inf
    assert ev.migration_time_s[0] == 0.0
    assert ev.migration[0] == 0.0


def test_no_migration_checks_for_boots_or_zero_memory():
    # a boot (not a move) or a flavor without memory: no migration model
    srv = Server('vm', memory_mb=MEM, dirty_rate_mbps=1e9, is_move=False)
    assert passing(mig_eval(srv=srv)) == OTHERS
    srv = Server('vm', memory_mb=0, dirty_rate_mbps=1e9)
    assert passing(mig_eval(srv=srv)) == OTHERS


def test_every_refusal_is_listed():
    # one host failing several constraints gets every reason, in order
    srv = Server('vm', memory_mb=MEM, vcpus=4, dirty_rate_mbps=9000,
                 max_hops=2)
    flows = [('vm', 'p', 100.0), ('b', 'c', 4000.0)]
    ev = evaluate(ls_slow_fabric(), flows,
                  {'vm': 'compute-1', 'p': 'compute-2', 'b': 'compute-4',
                   'c': 'compute-6'}, srv,
                  [Candidate('compute-5', free_ram_mb=1, free_vcpus=1)])
    assert reasons(ev)['compute-5'] == [
        'capacity: free RAM 1 MB < flavor 8192 MB',
        'capacity: free vCPUs 1.0 < flavor 4',
        'distance: 4 hops to a peer > max_hops 2',
        'migration: does not converge, lambda = D/B = 9000/7000 = 1.29']
    assert not ev.passed.any()
    assert np.isfinite(ev.mif).all()


def test_max_hops_and_latency_on_a_fat_tree():
    # fat_tree(4), 1 us per link; vm on compute-1 (pod 0), peer p on
    # compute-5 (edge-1-0). Farthest-peer hops: compute-2 (pod 0) 6,
    # compute-6 (same edge as p) 2, compute-7 (edge-1-1, same pod) 4,
    # compute-16 (pod 3) 6. Latency: 4 us cross-pod, 2 us same pod,
    # 0 same edge.
    from nova_netaware.core.topology import fat_tree
    topo = Topology(fat_tree(4))
    hosts = ['compute-2', 'compute-6', 'compute-7', 'compute-16']
    pl = {'vm': 'compute-1', 'p': 'compute-5'}
    ev = evaluate(topo, [('vm', 'p', 10.0)], pl, Server('vm', max_hops=4),
                  hosts)
    assert reasons(ev) == {
        'compute-2': ['distance: 6 hops to a peer > max_hops 4'],
        'compute-6': [], 'compute-7': [],
        'compute-16': ['distance: 6 hops to a peer > max_hops 4']}
    ev = evaluate(topo, [('vm', 'p', 10.0)], pl,
                  Server('vm', max_latency_us=1.5), hosts)
    assert reasons(ev) == {
        'compute-2': ['distance: 4.0 us to a peer > max_latency_us 1.5'],
        'compute-6': [],
        'compute-7': ['distance: 2.0 us to a peer > max_latency_us 1.5'],
        'compute-16': ['distance: 4.0 us to a peer > max_latency_us 1.5']}
