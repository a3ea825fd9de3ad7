"""Each MIF term and the combined, normalised MIF, against hand numbers.

MIF(c) = w_comm comm(c) / (R H) + w_mig migration(c) / (M H)
       + w_cong congestion(c)
with R the server's total rate (out + in), M its memory in MB and H the
longest host-to-host distance (4 on a leaf-spine, 6 on fat_tree(4)).
"""

import numpy as np
import pytest

from nova_netaware.core import impact
from nova_netaware.core.engine import Params
from nova_netaware.core.engine import Server
from nova_netaware.core.topology import fat_tree
from nova_netaware.core.topology import Topology

from tests.unit._core import by_host
from tests.unit._core import evaluate
from tests.unit._core import ls232

ALL = ['compute-%d' % i for i in range(1, 7)]
TIGHT = dict(rel=1e-12)


def approx_map(d):
    return {k: pytest.approx(v, rel=1e-12, abs=1e-12) for k, v in d.items()}


# -- communication cost ------------------------------------------------------

def comm_eval():
    # vm on compute-1; p on compute-2 (vm->p 100, p->vm 50: r = 150),
    # q on compute-3 (vm->q 200: r = 200), s on compute-5 (s->vm 300).
    flows = [('vm', 'p', 100.0), ('p', 'vm', 50.0), ('vm', 'q', 200.0),
             ('s', 'vm', 300.0)]
    pl = {'vm': 'compute-1', 'p': 'compute-2', 'q': 'compute-3',
          's': 'compute-5'}
    return evaluate(ls232(), flows, pl, Server('vm'), ALL)


def test_communication_cost_leaf_spine():
    ev = comm_eval()
    # hops: same host 0, same leaf 2, other leaf 4
    # compute-1: 150*2 + 200*4 + 300*4 = 300 + 800 + 1200 = 2300
    # compute-2: 150*0 + 800 + 1200                       = 2000
    # compute-3: 150*4 + 200*0 + 1200 = 600 + 1200        = 1800
    # compute-4: 600 + 200*2 + 1200 = 600 + 400 + 1200    = 2200
    # compute-5: 600 + 800 + 300*0                        = 1400
    # compute-6: 600 + 800 + 300*2                        = 2000
    comm = {'compute-1': 2300, 'compute-2': 2000, 'compute-3': 1800,
            'compute-4': 2200, 'compute-5': 1400, 'compute-6': 2000}
    assert by_host(ev, 'comm') == approx_map(comm)
    # normalised by R H = 650 * 4 = 2600
    assert by_host(ev, 'comm_n') == approx_map(
        {h: v / 2600.0 for h, v in comm.items()})
    assert ev.row(4)['comm_mbps_hops'] == pytest.approx(1400.0, **TIGHT)


def test_communication_cost_fat_tree():
    topo = Topology(fat_tree(4))
    # vm on compute-1 (edge-0-0); a on compute-2 (same edge) 10,
    # b on compute-3 (same pod) 20, c on compute-5 (pod 1) 30.
    flows = [('vm', 'a', 10.0), ('b', 'vm', 20.0), ('vm', 'c', 30.0)]
    pl = {'vm': 'compute-1', 'a': 'compute-2', 'b': 'compute-3',
          'c': 'compute-5'}
    hosts = ['compute-2', 'compute-4', 'compute-6', 'compute-16']
    ev = evaluate(topo, flows, pl, 'vm', hosts)
    # compute-2:  a 0, b 20*4, c 30*6       = 0 + 80 + 180   = 260
    # compute-4 (edge-0-1): a 10*4, b 20*2, c 30*6 = 40+40+180 = 260
    # compute-6 (edge-1-0): a 10*6, b 20*6, c 30*2 = 60+120+60 = 240
    # compute-16 (pod 3): (10 + 20 + 30) * 6 = 360
    comm = {'compute-2': 260, 'compute-4': 260, 'compute-6': 240,
            'compute-16': 360}
    assert by_host(ev, 'comm') == approx_map(comm)
    # R H = 60 * 6 = 360
    assert by_host(ev, 'comm_n')['compute-16'] == pytest.approx(1.0, **TIGHT)


def test_communication_cost_function():
    # switches 0 - 1 - 2 in a line (dist 0/1/2);
    # S_1 = 10 (peers behind switch 1), S_2 = 5.
    dist = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    # candidates: on switch 0; on switch 1 hosting 4 of the 10; on switch 2
    host_switch = np.array([0, 1, 2])
    host_rate = np.array([0.0, 4.0, 0.0])
    got = impact.communication_cost({1: 10.0, 2: 5.0}, host_rate, dist,
                                    host_switch)
    # c0: 10 * (2 + 1) + 5 * (2 + 2) = 30 + 20         = 50
    # c1: 10 * 2 + 5 * 3 - 2 * 4 = 20 + 15 - 8         = 27
    #     (the 4 on the host itself cost 0, the other 6 cost 2 hops)
    # c2: 10 * 3 + 5 * 2 = 30 + 10                     = 40
    #     (the peers behind switch 2 are on other hosts: 2 hops)
    assert list(got) == [50.0, 27.0, 40.0]
    assert list(impact.communication_cost({}, host_rate, dist,
                                          host_switch)) == [0.0, 0.0, 0.0]


# -- migration cost -----------------------------------------------------------

def test_migration_cost_lambda_zero_is_memory_times_hops():
    # D = 0 -> V = M = 1024 MB; hops from compute-1: 0, 2, 4, 4, 4, 4
    ev = evaluate(ls232(), [], {'vm': 'compute-1'},
                  Server('vm', memory_mb=1024, dirty_rate_mbps=0), ALL)
    assert list(ev.migration) == [0.0, 2048.0, 4096.0, 4096.0, 4096.0,
                                  4096.0]
    # / (M H) = 1024 * 4 = 4096
    assert list(ev.migration_n) == [0.0, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert impact.migration_cost(np.array([3.0, 5.0]),
                                 np.array([2, 6])).tolist() == [6.0, 30.0]


def test_migration_cost_is_precopy_volume_times_hops():
    # fabric 10 Gbit/s, no traffic; D = 4500, M = 8192 MB.
    # B: compute-2 min(0.9*25000, 0.9*25000) = 22500; compute-3..6 the
    # fabric 0.9 * 10000 = 9000.
    # compute-2: lambda = 0.2, n = ceil(log(0.5*22500/(8192*8.388608)) /
    #   log 0.2) = ceil(1.12) = 2; V = 8192 (1 - 0.2^3) / 0.8
    #   = 8192 * 1.24 = 10158.08 MB; x 2 hops = 20316.16
    # compute-3: lambda = 0.5, n = ceil(3.93) = 4;
    #   V = 8192 (1 - 0.5^5) / 0.5 = 8192 * 1.9375 = 15872 MB; x 4 = 63488
    ev = evaluate(ls232(fabric_gbps=10), [], {'vm': 'compute-1'},
                  Server('vm', memory_mb=8192, dirty_rate_mbps=4500),
                  ['compute-1', 'compute-2', 'compute-3', 'compute-6'])
    assert ev.migration == pytest.approx([0.0, 20316.16, 63488.0, 63488.0],
                                         **TIGHT)
    # / (M H) = 8192 * 4 = 32768: 0.62 and 1.9375
    assert ev.migration_n == pytest.approx([0.0, 0.62, 1.9375, 1.9375],
                                           **TIGHT)
    # no peers: no communication or congestion; MIF = 0.5 * migration_n
    assert list(ev.comm) == [0.0] * 4
    assert list(ev.congestion) == [0.0] * 4
    assert ev.mif == pytest.approx([0.0, 0.31, 0.96875, 0.96875], **TIGHT)
    assert ev.winner == 'compute-1'


# -- congestion and the combined MIF ------------------------------------------

MIF_FLOWS = [('vm', 'q', 5000.0), ('q', 'vm', 1000.0)]
MIF_PL = {'vm': 'compute-1', 'q': 'compute-3', 'e': 'compute-5',
          'f': 'compute-4'}


def mif_eval(extra=(), **pkw):
    # fabric 10 Gbit/s; vm on compute-1 sends 5000 to q (compute-3) and
    # receives 1000; 1024 MB, D = 0 (V = M).
    return evaluate(ls232(fabric_gbps=10), MIF_FLOWS + list(extra), MIF_PL,
                    Server('vm', memory_mb=1024, dirty_rate_mbps=0), ALL,
                    **pkw)


def test_congestion_without_background():
    ev = mif_eval()
    # compute-1/2 (leaf-1): every link leaf-1 -> spine -> leaf-2 may carry
    #   the whole 5000 (per-flow ECMP): 5000 / 10000 = 0.5; uplink out
    #   5000/25000 = 0.2, in 1000/25000 = 0.04; q's uplink 0.2 -> 0.5
    # compute-3 (q's host): nothing leaves the host -> 0
    # compute-4 (leaf-2): own uplink 0.2, q's uplink 0.2, no fabric -> 0.2
    # compute-5/6 (leaf-3): fabric 0.5
    assert by_host(ev, 'congestion') == approx_map({
        'compute-1': 0.5, 'compute-2': 0.5, 'compute-3': 0.0,
        'compute-4': 0.2, 'compute-5': 0.5, 'compute-6': 0.5})


def test_congestion_is_the_busiest_link_after_the_move():
    # e (compute-5) -> f (compute-4) 6000: leaf-3 -> spine-s 3000,
    # spine-s -> leaf-2 3000, compute-5 up 6000, compute-4 down 6000.
    ev = mif_eval([('e', 'f', 6000.0)])
    # compute-1/2: spine-s -> leaf-2 (3000 + 5000) / 10000 = 0.8
    # compute-3: 0
    # compute-4: down (6000 + 1000) / 25000 = 0.28
    # compute-5: leaf-3 -> spine-s (3000 + 5000) / 10000 = 0.8
    #            (its uplink (6000 + 5000) / 25000 = 0.44 is less)
    # compute-6: 0.8
    assert by_host(ev, 'congestion') == approx_map({
        'compute-1': 0.8, 'compute-2': 0.8, 'compute-3': 0.0,
        'compute-4': 0.28, 'compute-5': 0.8, 'compute-6': 0.8})


def test_combined_mif_default_weights():
    ev = mif_eval()
    # R = 6000, H = 4, M = 1024; weights 1, 0.5, 1.
    #            comm            mig            cong   MIF
    # compute-1: 6000*4/24000=1  0              0.5    1 + 0 + 0.5     = 1.5
    # compute-2: 1               2048/4096=0.5  0.5    1 + 0.25 + 0.5  = 1.75
    # compute-3: 0               4096/4096=1    0      0 + 0.5 + 0     = 0.5
    # compute-4: 6000*2/24000    1              0.2    0.5 + 0.5 + 0.2 = 1.2
    # compute-5: 1               1              0.5    1 + 0.5 + 0.5   = 2.0
    # compute-6: 1               1              0.5                    = 2.0
    assert by_host(ev, 'comm_n') == approx_map({
        'compute-1': 1.0, 'compute-2': 1.0, 'compute-3': 0.0,
        'compute-4': 0.5, 'compute-5': 1.0, 'compute-6': 1.0})
    assert by_host(ev, 'mif') == approx_map({
        'compute-1': 1.5, 'compute-2': 1.75, 'compute-3': 0.5,
        'compute-4': 1.2, 'compute-5': 2.0, 'compute-6': 2.0})
    assert ev.winner == 'compute-3'
    # lowest first, ties in candidate order
    assert [ev.hosts[i] for i in ev.ranking()] == [
        'compute-3', 'compute-4', 'compute-1', 'compute-2', 'compute-5',
        'compute-6']
    row = ev.row(2)
    assert row == {'host': 'compute-3', 'passed': True, 'reasons': [],
                   'comm_mbps_hops': 0.0, 'migration_mb_hops': 4096.0,
                   'congestion': 0.0, 'comm_term': 0.0,
                   'migration_term': 1.0, 'mif': 0.5}


def test_combined_mif_with_background():
    ev = mif_eval([('e', 'f', 6000.0)])
    # compute-2: 1 + 0.25 + 0.8 = 2.05; compute-3: 0.5;
    # compute-4: 0.5 + 0.5 + 0.28 = 1.28; compute-5/6: 1 + 0.5 + 0.8 = 2.3
    assert by_host(ev, 'mif') == approx_map({
        'compute-1': 1.8, 'compute-2': 2.05, 'compute-3': 0.5,
        'compute-4': 1.28, 'compute-5': 2.3, 'compute-6': 2.3})


def test_mif_weights():
    # communication 2, migration 0, congestion 3:
    # compute-1: 2 + 1.5 = 3.5; compute-2: 2*1 + 3*0.5 = 3.5; compute-3: 0;
    # compute-4: 2*0.5 + 3*0.2 = 1.6; compute-5/6: 2 + 1.5 = 3.5
    ev = mif_eval(communication_weight=2, migration_weight=0,
                  congestion_weight=3)
    assert by_host(ev, 'mif') == approx_map({
        'compute-1': 3.5, 'compute-2': 3.5, 'compute-3': 0.0,
        'compute-4': 1.6, 'compute-5': 3.5, 'compute-6': 3.5})
    # migration only: staying is free, compute-2 costs 0.5, others 1
    ev = mif_eval(communication_weight=0, migration_weight=1,
                  congestion_weight=0)
    assert list(ev.mif) == [0.0, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert ev.winner == 'compute-1'
    # without the source among the candidates the nearest host wins
    ev2 = evaluate(ls232(fabric_gbps=10), MIF_FLOWS, MIF_PL,
                   Server('vm', memory_mb=1024, dirty_rate_mbps=0),
                   ALL[1:], params=Params(communication_weight=0,
                                          migration_weight=1,
                                          congestion_weight=0))
    assert ev2.winner == 'compute-2'


def test_mif_function_and_zero_scales():
    comm = np.array([0.0, 30.0])
    mig = np.array([8.0, 16.0])
    cong = np.array([0.1, 0.7])
    total, comm_n, mig_n = impact.mif(comm, mig, cong, total_rate=10.0,
                                      memory_mb=4.0, ref_hops=2,
                                      w_comm=1.0, w_mig=0.5, w_cong=2.0)
    # comm / (10 * 2): 0, 1.5; mig / (4 * 2): 1, 2
    assert list(comm_n) == [0.0, 1.5]
    assert list(mig_n) == [1.0, 2.0]
    # 0 + 0.5 + 0.2 = 0.7; 1.5 + 1.0 + 1.4 = 3.9
    assert total == pytest.approx([0.7, 3.9], **TIGHT)
    # no traffic and no memory: both cost terms are 0, not NaN
    total, comm_n, mig_n = impact.mif(comm, mig, cong, 0.0, 0, 2,
                                      1.0, 0.5, 2.0)
    assert list(comm_n) == [0.0, 0.0] and list(mig_n) == [0.0, 0.0]
    assert total == pytest.approx([0.2, 1.4], **TIGHT)


# -- volume_mb and the weighted terms ------------------------------------------

def test_volume_mb_is_the_precopy_volume_of_the_migration_term():
    # the hand case above: V = 0, 10158.08, 15872, 15872 MB over hops
    # 0, 2, 4, 4; the migration term is exactly volume_mb x hops
    ev = evaluate(ls232(fabric_gbps=10), [], {'vm': 'compute-1'},
                  Server('vm', memory_mb=8192, dirty_rate_mbps=4500),
                  ['compute-1', 'compute-2', 'compute-3', 'compute-6'])
    assert ev.volume_mb == pytest.approx([0.0, 10158.08, 15872.0, 15872.0],
                                         **TIGHT)
    assert list(ev.migration) == list(ev.volume_mb * [0, 2, 4, 4])
    # not a move: nothing is copied
    ev = evaluate(ls232(), [], {'vm': 'compute-1'},
                  Server('vm', memory_mb=8192, is_move=False), ALL)
    assert list(ev.volume_mb) == [0.0] * 6


def test_weighted_terms_add_up_to_the_mif():
    p = Params(communication_weight=0.3, migration_weight=2.0,
               congestion_weight=3.0)
    ev = evaluate(ls232(fabric_gbps=10), MIF_FLOWS, MIF_PL,
                  Server('vm', memory_mb=1024, dirty_rate_mbps=0), ALL,
                  params=p)
    comm, mig, cong = impact.weighted_terms(ev, p)
    assert list(comm) == list(0.3 * ev.comm_n)
    assert list(mig) == list(2.0 * ev.migration_n)
    assert list(cong) == list(3.0 * ev.congestion)
    assert list(comm + mig + cong) == list(ev.mif)
    # a subset of positions, in the order asked
    part = impact.weighted_terms(ev, p, [4, 1])
    assert [list(t) for t in part] == [[t[4], t[1]] for t in (comm, mig,
                                                              cong)]
