"""Monotonic epoch in tooz: compare-and-set, stale epochs refused, both on
the embedded file:// backend and on Redis (127.0.0.1:6379)."""

import multiprocessing
import socket
import uuid

import pytest

from nova_netaware.replica import fencing


def _redis_up():
    try:
        socket.create_connection(('127.0.0.1', 6379), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(params=['file', 'redis'])
def url(request, tmp_path):
    if request.param == 'file':
        return 'file://' + str(tmp_path / 'coord')
    if not _redis_up():
        pytest.skip('Redis is not running on 127.0.0.1:6379 (start: '
                    'redis-server --daemonize yes --port 6379)')
    return 'redis://127.0.0.1:6379'


@pytest.fixture
def svc():
    return 'test-' + uuid.uuid4().hex[:10]


def _fence(url, svc, member):
    return fencing.EpochFence(url, svc, member, lock_timeout=10)


def test_claim_cas_and_stale_refused(url, svc):
    a, b = _fence(url, svc, 'a'), _fence(url, svc, 'b')
    try:
        assert a.current() == (0, None)
        assert a.claim(0) == 1
        with pytest.raises(fencing.StaleEpoch):
            b.claim(0)
        assert b.current() == (1, 'a')
        assert a.run_if_current(1, lambda: 'unpaused') == 'unpaused'
        with pytest.raises(fencing.StaleEpoch):
            b.run_if_current(1, lambda: 'unpaused')  # not the holder
        assert b.claim(1) == 2
        with pytest.raises(fencing.StaleEpoch):
            a.run_if_current(1, lambda: 'unpaused')  # stale epoch
        # hand an epoch to another holder
        assert b.claim(2, holder='a') == 3
        assert a.run_if_current(3, lambda: 'ok') == 'ok'
        for e in range(3, 20):
            a.claim(e)
        assert a.current() == (20, 'a')  # old groups are collected
    finally:
        a.destroy_all()
        a.close()
        b.close()


def _racer(url, svc, member, start, q):
    f = fencing.EpochFence(url, svc, member)
    won = []
    start.wait()
    for _ in range(40):
        cur = f.current()[0]
        try:
            won.append(f.claim(cur))
        except fencing.StaleEpoch:
            pass
    f.close()
    q.put(won)


def test_concurrent_claims_each_epoch_won_once(url, svc):
    ctx = multiprocessing.get_context('fork')
    start, q = ctx.Event(), ctx.Queue()
    ps = [ctx.Process(target=_racer, args=(url, svc, m, start, q))
          for m in ('p1', 'p2', 'p3')]
    for p in ps:
        p.start()
    start.set()
    wins = [q.get(timeout=60) for _ in ps]
    for p in ps:
        p.join(30)
    all_wins = sorted(w for ws in wins for w in ws)
    assert all_wins == list(range(1, len(all_wins) + 1))  # no epoch twice
    f = _fence(url, svc, 'x')
    assert f.current()[0] == len(all_wins)
    f.destroy_all()
    f.close()


@pytest.mark.parametrize('kw', [{'service': 'bad name'}, {'member': ''},
                                {'url': 'nowhere'}])
def test_bad_input(kw, tmp_path):
    args = dict(url='file://' + str(tmp_path), service='s', member='m')
    args.update(kw)
    with pytest.raises(fencing.FenceError):
        fencing.EpochFence(**args)
