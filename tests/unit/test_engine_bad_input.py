"""Missing and inconsistent data in Engine.evaluate: notes, fail-open and
fail-closed (Params.fail_closed), and no exception.

leaf_spine(2, 3, 2) with 10 Gbit/s fabric; vm on compute-1 sends 5000 to q
(compute-3) and receives 1000; 1024 MB, D = 0. Hand-computed MIF of that
case (see test_impact.py): compute-3 0.5, compute-5 2.0.
"""

import pytest

from nova_netaware.core.engine import Server

from tests.unit._core import by_host
from tests.unit._core import evaluate
from tests.unit._core import ls232

FLOWS = [('vm', 'q', 5000.0), ('q', 'vm', 1000.0)]
PL = {'vm': 'compute-1', 'q': 'compute-3'}


def run(flows=FLOWS, placement=PL, hosts=('compute-3', 'compute-5'),
        srv=None, **pkw):
    srv = srv or Server('vm', memory_mb=1024, dirty_rate_mbps=0)
    return evaluate(ls232(fabric_gbps=10), flows, placement, srv,
                    list(hosts), **pkw)


def test_reference_case():
    ev = run()
    assert ev.notes == []
    assert list(ev.mif) == pytest.approx([0.5, 2.0], rel=1e-12)


def test_unknown_candidate_host_fail_open():
    ev = run(hosts=['compute-3', 'ghost', 'compute-5'])
    assert ev.notes == ['host ghost is not in the topology']
    assert by_host(ev, 'passed') == {'compute-3': True, 'ghost': True,
                                     'compute-5': True}
    assert ev.reasons == {}
    # neutral: the worst MIF of the known hosts, and no terms
    assert list(ev.mif) == pytest.approx([0.5, 2.0, 2.0], rel=1e-12)
    for arr in ('comm', 'comm_n', 'migration', 'migration_n', 'congestion'):
        assert getattr(ev, arr)[1] == 0.0
    assert ev.winner == 'compute-3'


def test_unknown_candidate_host_fail_closed():
    ev = run(hosts=['compute-3', 'ghost', 'compute-5'], fail_closed=True)
    assert ev.notes == ['host ghost is not in the topology']
    assert by_host(ev, 'passed') == {'compute-3': True, 'ghost': False,
                                     'compute-5': True}
    assert ev.reasons == {
        'ghost': ['data: host ghost is not in the topology']}


def test_unknown_host_is_not_judged_on_another_hosts_data():
    # The engine looks an unknown host up as index 0 (compute-1) internally;
    # compute-1's numbers must not refuse it. Make compute-1 fail
    # everything: its uplink is full and it is the source.
    flows = FLOWS + [('x', 'y', 30000.0)]
    pl = dict(PL, x='compute-1', y='compute-2')
    ev = run(flows=flows, placement=pl, hosts=['ghost'],
             srv=Server('vm', memory_mb=1024, dirty_rate_mbps=0,
                        max_hops=1))
    assert list(ev.passed) == [True]
    assert ev.reasons == {}
    # no known host: neutral MIF 0
    assert list(ev.mif) == [0.0]


def test_all_candidates_unknown_fail_closed():
    ev = run(hosts=['ghost-1', 'ghost-2'], fail_closed=True)
    assert list(ev.passed) == [False, False]
    assert ev.winner is None
    assert ev.ranking() == []


def test_peer_without_host():
    flows = FLOWS + [('vm', 'gone', 700.0), ('gone', 'vm', 300.0)]
    ev = run(flows=flows)
    assert ev.notes == ['peer gone of server vm has no host (deleted?)']
    # the deleted peer counts for nothing: same numbers as without it
    assert list(ev.mif) == pytest.approx([0.5, 2.0], rel=1e-12)
    # compute-5: 6000 * 4 = 24000 Mbit/s x hop, R H = 6000 * 4
    assert list(ev.comm) == pytest.approx([0.0, 24000.0], rel=1e-12)
    assert list(ev.passed) == [True, True]
    # not a reason to refuse hosts, even fail-closed (the documented
    # fail-closed cases are files, sources and the source host)
    assert list(run(flows=flows, fail_closed=True).passed) == [True, True]


def test_peer_on_a_host_outside_the_topology():
    flows = FLOWS + [('vm', 'q2', 700.0)]
    ev = run(flows=flows, placement=dict(PL, q2='old-host'))
    assert ev.notes == ['host old-host of peer q2 is not in the topology']
    assert list(ev.mif) == pytest.approx([0.5, 2.0], rel=1e-12)


def test_server_without_host_fail_open():
    pl = {'q': 'compute-3'}
    ev = run(placement=pl)
    assert ev.notes == ['server vm has no current host']
    assert list(ev.passed) == [True, True]
    # no source: no migration term; communication still counts
    assert list(ev.migration) == [0.0, 0.0]
    assert list(ev.comm) == pytest.approx([0.0, 24000.0], rel=1e-12)
    # compute-3 0 + 0 + 0; compute-5 1 + 0 + 0.5
    assert list(ev.mif) == pytest.approx([0.0, 1.5], rel=1e-12)


def test_server_without_host_fail_closed():
    ev = run(placement={'q': 'compute-3'}, fail_closed=True)
    assert list(ev.passed) == [False, False]
    assert ev.reasons == {
        'compute-3': ['data: server vm has no current host'],
        'compute-5': ['data: server vm has no current host']}


def test_source_host_outside_the_topology():
    pl = dict(PL, vm='retired-host')
    ev = run(placement=pl)
    assert ev.notes == ['source host retired-host is not in the topology']
    assert list(ev.passed) == [True, True]
    ev = run(placement=pl, fail_closed=True)
    assert ev.reasons == {
        'compute-3': ['data: source host retired-host is not in the '
                      'topology'],
        'compute-5': ['data: source host retired-host is not in the '
                      'topology']}


def test_fail_closed_source_reason_with_an_unknown_candidate_too():
    # BUG found (fixed in core/engine.py): the fail-closed reason for a
    # missing source quoted notes[0], which is the unknown-candidate note
    # when one comes first: every host was refused with "data: host ghost
    # is not in the topology".
    ev = run(placement={'q': 'compute-3'}, hosts=['ghost', 'compute-3'],
             fail_closed=True)
    assert ev.notes == ['host ghost is not in the topology',
                        'server vm has no current host']
    assert ev.reasons == {
        'ghost': ['data: server vm has no current host',
                  'data: host ghost is not in the topology'],
        'compute-3': ['data: server vm has no current host']}


def test_boot_without_host_is_not_a_data_problem():
    srv = Server('vm', memory_mb=1024, dirty_rate_mbps=0, is_move=False)
    ev = run(placement={'q': 'compute-3'}, srv=srv, fail_closed=True)
    assert ev.notes == []
    assert list(ev.passed) == [True, True]
    assert list(ev.mif) == pytest.approx([0.0, 1.5], rel=1e-12)


def test_server_without_traffic():
    ev = run(flows=[('a', 'b', 10.0)], placement={'vm': 'compute-1'},
             hosts=['compute-1', 'compute-2', 'compute-3'])
    assert ev.notes == []
    assert list(ev.comm) == [0.0, 0.0, 0.0]
    assert list(ev.congestion) == [0.0, 0.0, 0.0]
    # migration only: 1024 MB x 0, 2, 4 hops / (1024 * 4), weight 0.5
    assert list(ev.mif) == pytest.approx([0.0, 0.25, 0.5], rel=1e-12)


def test_no_candidates():
    ev = run(hosts=[])
    assert ev.winner is None
    assert len(ev.mif) == 0


def test_reused_engine_sees_each_new_traffic_matrix():
    # BUG found (fixed in core/engine.py, Engine.base_loads): the cache of
    # base loads was keyed on id(traffic) and traffic.version (None for an
    # in-memory matrix). A new matrix allocated where a freed one was had
    # the same key and got the old loads.
    from nova_netaware.core.engine import Candidate
    from nova_netaware.core.engine import Engine
    from nova_netaware.core.engine import Params
    from nova_netaware.core.traffic import TrafficMatrix
    eng = Engine(ls232(fabric_gbps=10))
    pl = {'vm': 'compute-1', 'q': 'compute-3', 'a': 'compute-5',
          'b': 'compute-6'}
    for k in range(20):
        bg = 1000.0 + 500.0 * k
        tm = TrafficMatrix({'flows': [
            {'src': 'vm', 'dst': 'q', 'mbps': 100.0},
            {'src': 'a', 'dst': 'b', 'mbps': bg}]})
        ev = eng.evaluate(tm, pl, Server('vm'), [Candidate('compute-5')],
                          Params())
        # compute-5 out: (bg + 100) / 25000 is its busiest link
        assert ev.congestion[0] == pytest.approx((bg + 100.0) / 25000.0,
                                                 rel=1e-12)
        del tm, ev


def test_reused_engine_sees_placement_changes():
    from nova_netaware.core.engine import Candidate
    from nova_netaware.core.engine import Engine
    from nova_netaware.core.engine import Params
    from tests.unit._core import traffic
    eng = Engine(ls232(fabric_gbps=10))
    tm = traffic(('vm', 'q', 100.0), ('a', 'b', 5000.0))
    pl = {'vm': 'compute-1', 'q': 'compute-3', 'a': 'compute-5',
          'b': 'compute-6'}
    c5 = [Candidate('compute-5')]
    ev = eng.evaluate(tm, pl, Server('vm'), c5, Params())
    # compute-5 out: (5000 + 100) / 25000
    assert ev.congestion[0] == pytest.approx(0.204, rel=1e-12)
    ev = eng.evaluate(tm, dict(pl, a='compute-2'), Server('vm'), c5,
                      Params())
    # a moved away: compute-5 out 100 / 25000 = 0.004; fabric for the
    # path leaf-3 -> leaf-2: 100 / 10000 = 0.01
    assert ev.congestion[0] == pytest.approx(0.01, rel=1e-12)
