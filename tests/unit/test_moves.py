"""Moves in flight (core.moves) and their loads in the engine."""

import time

import numpy as np

from nova_netaware.core import moves
from nova_netaware.core.engine import Candidate
from nova_netaware.core.engine import Engine
from nova_netaware.core.engine import Params
from nova_netaware.core.engine import Server
from nova_netaware.core.traffic import TrafficMatrix
from nova_netaware.scheduler.ledger import Ledger
from tests.unit._core import ls232

T0 = 1000.0


def mig(u, status, src='h1', dest='h2', typ='migration', created=1,
        updated=T0, id_=1):
    return {'instance_uuid': u, 'status': status, 'migration_type': typ,
            'source_compute': src, 'dest_compute': dest, 'created_at': created,
            'id': id_, 'updated_ts': updated}


def test_every_nova_status_is_classified():
    # Nova 34 statuses (nova/compute/manager.py, resource_tracker.py,
    # conductor): none falls through to "unknown".
    for s in ('accepted', 'pre-migrating', 'migrating', 'post-migrating',
              'queued', 'preparing', 'running', 'finished', 'confirming',
              'reverting', 'done', 'confirmed', 'reverted', 'failed',
              'error', 'cancelled', 'completed'):
        assert (s in moves.DONE_STATUSES) != (s in moves.UNFINISHED_STATUSES)
        r = moves.apply({'a': 'h1'}, [mig('a', s)])
        assert r.notes == []


def test_unfinished_move_counts_at_destination_done_does_not():
    pl = {'a': 'h1', 'b': 'h3'}
    for s in ('pre-migrating', 'migrating', 'post-migrating', 'finished',
              'confirming'):
        r = moves.apply(pl, [mig('a', s)])
        assert r.placement == {'a': 'h2', 'b': 'h3'}
        assert r.also_at == {}
    for s in moves.DONE_STATUSES:
        assert moves.apply(pl, [mig('a', s)]).placement == pl
    assert pl == {'a': 'h1', 'b': 'h3'}         # not changed


def test_no_destination_yet_counts_nothing():
    r = moves.apply({'a': 'h1'}, [mig('a', 'pre-migrating', dest=None)])
    assert r.placement == {'a': 'h1'} and not r.counted


def test_live_migration_counts_at_both_until_it_ends():
    for s in ('accepted', 'queued', 'preparing', 'running',
              'post-migrating'):
        r = moves.apply({'a': 'h1'}, [mig('a', s, typ='live-migration')])
        assert r.placement == {'a': 'h2'} and r.also_at == {'a': 'h1'}
    for s in ('completed', 'failed', 'cancelled', 'error'):
        r = moves.apply({'a': 'h1'}, [mig('a', s, typ='live-migration')])
        assert r.placement == {'a': 'h1'} and r.also_at == {}


def test_reverting_counts_at_source_only():
    # after finish_resize the instance's host is the destination
    r = moves.apply({'a': 'h2'}, [mig('a', 'reverting')])
    assert r.placement == {'a': 'h1'} and r.also_at == {}
    r = moves.apply({'a': 'h1'}, [mig('a', 'reverted')])
    assert r.placement == {'a': 'h1'}


def test_server_being_scheduled_never_counts_through_its_own_move():
    r = moves.apply({'a': 'h1'}, [mig('a', 'running', typ='live-migration')],
                    {'a': ('h4', None, T0)}, exclude='a')
    assert r.placement == {'a': 'h1'} and not r.also_at and not r.settled


def test_latest_row_of_a_server_wins():
    rows = [mig('a', 'error', dest='h5', created=1, id_=1),
            mig('a', 'migrating', dest='h2', created=2, id_=2)]
    assert moves.apply({'a': 'h1'}, rows).placement == {'a': 'h2'}
    assert moves.apply({'a': 'h1'}, rows[::-1]).placement == {'a': 'h2'}


def test_unknown_status_counts_and_is_reported():
    r = moves.apply({'a': 'h1'}, [mig('a', 'teleporting')])
    assert r.placement == {'a': 'h2'}
    assert 'teleporting' in r.notes[0]


def test_ledger_counts_until_nova_records_show_the_move():
    led = {'a': ('h4', 'h4', T0)}
    # no record yet (the row of the move exists, without destination)
    r = moves.apply({'a': 'h1'}, [mig('a', 'pre-migrating', dest=None)], led)
    assert r.placement == {'a': 'h4'} and not r.settled
    # a live migration without destination yet: also at its source
    r = moves.apply({'a': 'h1'}, [mig('a', 'accepted', dest=None,
                                      typ='live-migration')], led)
    assert r.placement == {'a': 'h4'} and r.also_at == {'a': 'h1'}
    # the row names a destination: the row counts, the entry is settled
    r = moves.apply({'a': 'h1'}, [mig('a', 'migrating', dest='h6')], led)
    assert r.placement == {'a': 'h6'} and r.settled == {'a'}
    # the move failed after the decision: nothing counts any more
    r = moves.apply({'a': 'h1'}, [mig('a', 'failed', dest=None,
                                      updated=T0 + 3)], led)
    assert r.placement == {'a': 'h1'} and r.settled == {'a'}
    # an older move's row that ended long before the decision: keep
    r = moves.apply({'a': None}, [mig('a', 'done', updated=T0 - 3600)], led)
    assert r.placement == {'a': 'h4'} and not r.settled
    # unshelve: no row; the instance's host becomes the ledger's host
    r = moves.apply({'a': None}, [], led)
    assert r.placement == {'a': 'h4'}
    r = moves.apply({'a': 'h4'}, [], led)
    assert r.settled == {'a'}


def test_memory_ledger_latest_wins_forget_and_ttl():
    now = [T0]
    led = Ledger(ttl=60, clock=lambda: now[0])
    led.record('a', 'h2', 'n2')
    led.record('b', 'h3')
    now[0] += 1
    led.record('a', 'h5')                       # latest decision wins
    assert led.entries() == {'a': ('h5', None, T0 + 1),
                             'b': ('h3', None, T0)}
    led.forget(['b', 'zz'])
    assert set(led.entries()) == {'a'}
    now[0] += 60.5
    assert led.entries() == {}


def _engine_case():
    topo = ls232(uplink_gbps=1)
    names = topo.host_names
    traffic = TrafficMatrix({'flows': [
        {'src': 'm', 'dst': 'p', 'mbps': 400},
        {'src': 'p', 'dst': 'm', 'mbps': 400},
        {'src': 's', 'dst': 'q', 'mbps': 400},
        {'src': 'q', 'dst': 's', 'mbps': 400}]}, version='1')
    return Engine(topo), names, traffic


def test_also_at_loads_the_source_as_well():
    eng, h, traffic = _engine_case()
    placement = {'m': h[4], 'p': h[0], 's': h[5], 'q': h[0]}
    # s is moving from h[5] to h[2]: at h[2] by the placement, also at h[5]
    pl = dict(placement, s=h[2])
    x = eng.also_loads(traffic, pl, {'s': h[5]})
    i5 = eng.topo.host_index[h[5]]
    assert x.up[i5] == 400 and x.down[i5] == 400
    # the base loads cached for pl are not changed by evaluate
    base = eng.base_loads(traffic, pl).up.copy()
    srv = Server('m', memory_mb=512, vcpus=1)
    cands = [Candidate(n) for n in h if n != h[4]]
    ev_one = eng.evaluate(traffic, pl, srv, cands, Params())
    ev_both = eng.evaluate(traffic, pl, srv, cands, Params(),
                           also_at={'s': h[5]})
    np.testing.assert_array_equal(base, eng.base_loads(traffic, pl).up)
    # h[5]'s uplink carries s's 400 Mbit/s: m's 400 on top fits 900,
    # a third 400 would not; the congestion term sees it
    j = ev_both.hosts.index(h[5])
    assert ev_both.congestion[j] > ev_one.congestion[j]


def test_ledger_and_rows_through_engine_refuse_the_full_uplink():
    # two moves in flight towards h[1] (1 Gbit/s, ceiling 0.9): a third
    # mover that would send 400 Mbit/s more is refused there
    eng, h, _ = _engine_case()
    flows = []
    for i in range(3):
        flows += [{'src': 'm%d' % i, 'dst': 'p%d' % i, 'mbps': 400},
                  {'src': 'p%d' % i, 'dst': 'm%d' % i, 'mbps': 400}]
    traffic = TrafficMatrix({'flows': flows}, version='2')
    pl = {'m0': h[4], 'm1': h[5], 'm2': h[3],
          'p0': h[2], 'p1': h[2], 'p2': h[2]}
    r = moves.apply(pl, [mig('m0', 'migrating', src=h[4], dest=h[1])],
                    {'m1': (h[1], None, time.time())}, exclude='m2')
    srv = Server('m2', memory_mb=512, vcpus=1, dirty_rate_mbps=50)
    cands = [Candidate(n) for n in h if n != h[3]]
    ev = eng.evaluate(traffic, r.placement, srv, cands, Params(),
                      also_at=r.also_at)
    assert not ev.passed[ev.hosts.index(h[1])]
    assert 'uplink' in ev.reasons[h[1]][0]
    ev0 = eng.evaluate(traffic, pl, srv, cands, Params())
    assert ev0.passed[ev0.hosts.index(h[1])]


class _Dest(dict):
    pass


class _Spec(object):
    """A move's RequestSpec as the runtime reads it (instance_uuid and a
    requested_destination with a cell)."""

    def __init__(self, uuid):
        self.instance_uuid = uuid
        self.requested_destination = _Dest(cell='cell1')


def test_one_move_decision_at_a_time_until_nova_consumes():
    import threading

    from oslo_config import cfg

    from nova_netaware.scheduler import runtime
    cfg.CONF.set_override('decision_wait', 5.0, 'netaware')
    try:
        rt = runtime.NovaRuntime()
        rt._ledger = Ledger(ttl=60)
        a, b = _Spec('a'), _Spec('b')
        rt.begin(a)
        rt.begin(a)                     # the weigher after the filter
        done = []
        th = threading.Thread(target=lambda: (rt.begin(b),
                                              done.append(time.time())))
        th.start()
        time.sleep(0.3)
        assert done == []               # b waits for a's choice
        t = time.time()
        rt.decided(a, 'h2', 'n2')       # Nova consumed h2 for a
        th.join(5)
        assert done and done[0] - t < 1.0
        assert rt.ledger().entries()['a'][:2] == ('h2', 'n2')
        # Nova weighs again for alternates after consuming: no wait
        rt.decided(b, 'h3', None)
        t = time.time()
        rt.begin(b)
        assert time.time() - t < 0.1
    finally:
        cfg.CONF.clear_override('decision_wait', 'netaware')


def test_a_decision_never_consumed_holds_the_next_at_most_decision_wait():
    from oslo_config import cfg

    from nova_netaware.scheduler import runtime
    cfg.CONF.set_override('decision_wait', 0.5, 'netaware')
    try:
        rt = runtime.NovaRuntime()
        rt.begin(_Spec('a'))            # every claim fails: no consume
        t = time.time()
        rt.begin(_Spec('b'))
        assert 0.4 < time.time() - t < 1.5
        rt.end('b')                     # no host passed for b
        t = time.time()
        rt.begin(_Spec('c'))
        assert time.time() - t < 0.1
    finally:
        cfg.CONF.clear_override('decision_wait', 'netaware')
