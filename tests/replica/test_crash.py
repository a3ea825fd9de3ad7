"""kill -9 of the agent that holds buffered traffic: after a restart and a
switchover every buffered packet is replayed exactly once, in order."""

import os
import signal
import threading
import time

import pytest

from tests.replica.helpers import StateSampler, assert_exactly_once

pytestmark = pytest.mark.netns


def _wait_buffered(lab, x, n, timeout=15):
    end = time.monotonic() + timeout
    while lab.status(x)['buffer']['packets'] < n:
        assert time.monotonic() < end, lab.status(x)['buffer']
        time.sleep(0.02)


def test_kill9_standby_with_buffered_traffic(pair):
    lab = pair
    ca = lab.start_client('a', 'a1', 300, 1000, timeout=30)
    cb = lab.start_client('b', 'b1', 800, 2000, timeout=30)
    lab.wait_sent(cb, 20)
    _wait_buffered(lab, 'b', 800)
    assert lab.status('b')['buffer']['packets'] == 800
    lab.kill('agent-b', signal.SIGKILL)
    # the copy stays paused while its agent is dead
    from nova_netaware.replica.drivers.local import proc_state
    assert proc_state(lab.guest_pid('b')) in 'Tt'
    lab.start_agent('b')
    st = lab.status('b')
    assert st['state'] == 'STANDBY'
    assert st['buffer']['packets'] == 800, st['buffer']
    lab.wait_sent(ca, 20)
    r = lab.switchover('b')
    assert r['ok'], r
    assert lab.wait_idle() == 'b'
    assert lab.status('b')['last_switchover']['replayed'] == 800
    results = [lab.client_result(ca), lab.client_result(cb)]
    assert_exactly_once(lab, results, 'b')
    assert lab.status('b')['buffer']['packets'] == 0


def test_kill9_active_agent_keeps_serving_and_resumes(pair):
    lab = pair
    lab.kill('agent-a', signal.SIGKILL)
    # the active rule has --queue-bypass: the copy stays reachable
    c = lab.start_client('a', 'a1', 200, 1000, timeout=20)
    res = lab.client_result(c)
    assert res['missing_count'] == 0
    lab.start_agent('a')
    assert lab.status('a')['state'] == 'ACTIVE'
    assert lab.status('a')['epoch'] == 1
    cb = lab.start_client('b', 'b1', 200, 1000, timeout=20)
    lab.wait_sent(cb, 20)
    time.sleep(0.2)
    assert lab.switchover('a')['ok']
    assert lab.wait_idle() == 'b'
    assert_exactly_once(lab, [res, lab.client_result(cb)], 'b')


def test_restart_with_paused_copy_resolves_by_epoch(pair, tmp_path):
    """An agent killed mid-handoff (copy paused, epoch still its own)
    claims a fresh epoch before it unpauses, so a late claim by the peer
    with the old epoch fails."""
    lab = pair
    from nova_netaware.replica import fencing
    lab.kill('agent-a', signal.SIGKILL)
    os.kill(lab.guest_pid('a'), signal.SIGSTOP)  # as if paused for handoff
    lab.start_agent('a')
    st = lab.status('a')
    assert st['state'] == 'ACTIVE' and st['epoch'] == 2
    assert st['copy_running'] is True
    f = fencing.EpochFence(lab.coordination_url, lab.service, 'agent-b')
    try:
        with pytest.raises(fencing.StaleEpoch):
            f.claim(1)  # the peer's late claim with the old epoch
    finally:
        f.close()


def test_kill9_after_the_claim_before_the_import(lab):
    """B claimed the next epoch and A paused its copy; B is killed before
    its copy imported A's state. Restarted, B must not resume its copy
    (its state lacks A's latest requests): it hands the epoch back, A
    resumes, and every request counts exactly once."""
    lab.start_guest('a')
    lab.start_guest('b')
    lab.start_agent('a')
    lab.start_agent('b', env={'NNR_TEST_HOLD_TAKEOVER': '30'})
    assert lab.wait_idle() == 'a'
    ca = lab.start_client('a', 'a1', 1200, 500, timeout=40)
    # B's clients are done (and held) before B dies: what reaches a
    # standby hypervisor while its agent is dead is dropped by design
    cb = lab.start_client('b', 'b1', 300, 1000, timeout=40)
    lab.wait_sent(cb, 20)
    _wait_buffered(lab, 'b', 300)
    with StateSampler([lab.guest_pid('a'), lab.guest_pid('b')]) as sampler:
        time.sleep(0.2)
        box = {}
        t = threading.Thread(
            target=lambda: box.update(r=lab.switchover('a')))
        t.start()
        end = time.monotonic() + 10
        while 'NNR_TEST_HOLD_TAKEOVER' not in _log(lab, 'b'):
            assert time.monotonic() < end, 'B never reached its hold'
            time.sleep(0.02)
        lab.kill('agent-b', signal.SIGKILL)
        t.join(20)
        assert not box['r']['ok'], box['r']
        lab.start_agent('b')
        assert lab.wait_idle() == 'a'
        b = lab.status('b')
        assert b['counters']['takeovers_abandoned'] == 1, b['counters']
        assert lab.status('a')['counters']['handbacks'] == 1
        assert lab.status('b')['buffer']['packets'] == 300
        lab.wait_sent(ca, 30)
        time.sleep(0.2)
        assert lab.switchover('a')['ok']
        assert lab.wait_idle() == 'b'
        assert lab.status('b')['last_switchover']['replayed'] == 300
        results = [lab.client_result(ca), lab.client_result(cb)]
    assert sampler.both_running == [], sampler.both_running[:5]
    assert_exactly_once(lab, results, 'b')


def _log(lab, x):
    try:
        with open(os.path.join(lab.dir, 'agent-%s.log' % x)) as f:
            return f.read()
    except FileNotFoundError:
        return ''
