"""Cut the inter-cloud link (veth down) in the middle of a switchover:
at no sampled instant do both copies run, and the system recovers once
the link returns."""

import threading
import time

import pytest

from nova_netaware.replica.lab.netns import CTL_PORT
from tests.replica.helpers import StateSampler, assert_exactly_once

pytestmark = pytest.mark.netns


def _wait_state(lab, x, states, timeout=10):
    end = time.monotonic() + timeout
    while True:
        s = lab.status(x)['state']
        if s in states:
            return s
        assert time.monotonic() < end, s
        time.sleep(0.002)


def _switch_in_thread(lab, x):
    box = {}
    t = threading.Thread(target=lambda: box.update(r=lab.switchover(x)))
    t.start()
    return t, box


def _drain_to_b(lab, ca, cb):
    """Both clients have sent everything; A hands off to B, which replays
    what it held. Returns the clients' results."""
    lab.wait_sent(ca, 30)
    lab.wait_sent(cb, 30)
    time.sleep(0.2)
    assert lab.switchover('a')['ok']
    assert lab.wait_idle() == 'b'
    return [lab.client_result(ca), lab.client_result(cb)]


def _run(lab, hold_env, cut_when, expect_active):
    lab.start_guest('a')
    lab.start_guest('b')
    lab.start_agent('a', env=hold_env.get('a'), handoff_timeout=1.0)
    lab.start_agent('b', env=hold_env.get('b'))
    assert lab.wait_idle() == 'a'
    ca = lab.start_client('a', 'a1', 1500, 500, timeout=40)
    cb = lab.start_client('b', 'b1', 1500, 500, timeout=40)
    pids = [lab.guest_pid('a'), lab.guest_pid('b')]
    with StateSampler(pids) as sampler:
        time.sleep(0.5)
        t, box = _switch_in_thread(lab, 'a')
        _wait_state(lab, cut_when[0], cut_when[1])
        lab.set_link(False)
        t.join(20)
        assert not box['r']['ok'], box['r']
        assert lab.wait_idle() == expect_active
        # while the link is down, no switchover is possible
        assert not lab.switchover('a' if expect_active == 'b' else 'b')['ok']
        time.sleep(0.3)
        lab.set_link(True)
        time.sleep(0.2)
        # recovered: switchovers work again, both directions
        for _ in range(2):
            before = lab.active_side()
            r = lab.switchover(before)
            assert r['ok'], r
            assert lab.wait_idle() != before
        lab.wait_sent(ca, 30)
        lab.wait_sent(cb, 30)
        time.sleep(0.2)
        assert lab.switchover(lab.active_side())['ok']
        active = lab.wait_idle()
        results = [lab.client_result(ca), lab.client_result(cb)]
    assert sampler.samples > 200
    assert sampler.both_running == [], sampler.both_running[:5]
    assert_exactly_once(lab, results, active)
    return sampler


def test_cut_before_the_pause_is_confirmed(lab):
    """A sent its state and paused its copy; B claimed the next epoch and
    waits for A's "paused". The link goes down before it arrives. B never
    runs: it hands the epoch back when its wait ends, and A resumes."""
    sampler = _run(lab, {'a': {'NNR_TEST_HOLD_HANDOFF': '0.6'}},
                   ('a', ('HANDING_OFF',)), expect_active='a')
    assert (False, False) in sampler.seen  # both paused during the cut
    a = lab.status('a')['counters']
    assert a['recoveries'] == 1 and a['handbacks'] == 1, a
    # B claimed, was not told A paused, gave the epoch back
    assert lab.status('b')['counters']['switchovers_failed'] == 1


def test_pause_fails_after_the_state_was_sent(lab):
    """A's hypervisor refuses the pause after A sent its state (here: the
    copy's pid file is unreadable, as libvirtd restarting would be for the
    libvirt path). A withdraws ("abort"); B, which had claimed the next
    epoch, hands it back without ever running; A keeps trying to resume
    under it until the hypervisor answers again. Never both running,
    every request answered once."""
    lab.start_guest('a')
    lab.start_guest('b')
    lab.start_agent('a')
    lab.start_agent('b')
    assert lab.wait_idle() == 'a'
    ca = lab.start_client('a', 'a1', 1200, 500, timeout=40)
    cb = lab.start_client('b', 'b1', 1200, 500, timeout=40)
    pidfile = lab.guest_pid_file('a')
    pid = open(pidfile).read()
    with StateSampler([lab.guest_pid('a'), lab.guest_pid('b')]) as sampler:
        time.sleep(0.5)
        with open(pidfile, 'w') as f:
            f.write('not a pid\n')
        try:
            r = lab.switchover('a')
            assert not r['ok'] and 'pause' in r['error'], r
            # A keeps its copy running; it cannot resume it officially
            # until the driver works again
            time.sleep(1.5)
            assert lab.status('a')['state'] in ('FAILED', 'RECOVERING')
            assert lab.status('b')['state'] == 'STANDBY'
        finally:
            with open(pidfile, 'w') as f:
                f.write(pid)
        assert lab.wait_idle() == 'a'
        a = lab.status('a')['counters']
        assert a['handbacks'] == 1 and a['recoveries'] == 1, a
        assert lab.status('b')['counters']['switchovers_in'] == 0
        results = _drain_to_b(lab, ca, cb)
    assert sampler.both_running == [], sampler.both_running[:5]
    assert_exactly_once(lab, results, 'b')


def test_cut_after_peer_took_over(lab):
    """B claimed the epoch and runs, the link goes down before A hears the
    acknowledgement. A's claim fails, so A stays paused."""
    _run(lab, {'b': {'NNR_TEST_HOLD_ACK': '1.5'}},
         ('b', ('ACTIVE',)), expect_active='b')
    assert lab.status('a')['counters']['switchovers_failed'] == 1


def test_epoch_handed_back_after_the_sender_gave_up(lab):
    """B claims the epoch but its import hangs (the guest's state endpoint
    is unreachable from B's hypervisor: packets to it dropped); A's
    handoff times out first, A reads B's claim and goes standby; then B's
    import times out and B hands the epoch back. A must resume: without
    it no copy would run (seen on the two-cloud stack)."""
    from nova_netaware.replica.lab.netns import sh
    lab.start_guest('a')
    lab.start_guest('b')
    lab.start_agent('a', handoff_timeout=1.0)
    lab.start_agent('b', state_timeout=3.0)
    assert lab.wait_idle() == 'a'
    rule = ['-p', 'tcp', '--dport', str(CTL_PORT), '-j', 'DROP']
    sh('ip', 'netns', 'exec', lab.ns('hv', 'b'), 'iptables', '-I', 'OUTPUT',
       *rule)
    try:
        r = lab.switchover('a')
        assert not r['ok'], r
        # B's import is still hanging; A gave up and is standby
        assert lab.status('a')['state'] == 'STANDBY'
        # B's import times out, B hands the epoch back, A resumes
        assert lab.wait_idle(timeout=15) == 'a'
        assert lab.status('a')['counters']['handbacks'] >= 1
        assert lab.status('b')['state'] == 'STANDBY'
    finally:
        sh('ip', 'netns', 'exec', lab.ns('hv', 'b'), 'iptables', '-D',
           'OUTPUT', *rule)
    # and switchovers work again
    r = lab.switchover('a')
    assert r['ok'], r
    assert lab.wait_idle() == 'b'


def test_export_fails_and_the_handoff_is_withdrawn(lab):
    """B has claimed the next epoch when A's export fails (A's guest
    endpoint does not answer: packets to it dropped). A withdraws
    ("abort"), B hands the epoch back without ever running its copy, A
    serves on under it and the buffered requests are replayed once."""
    from nova_netaware.replica.lab.netns import sh
    lab.start_guest('a')
    lab.start_guest('b')
    lab.start_agent('a', state_timeout=1.0)
    lab.start_agent('b')
    assert lab.wait_idle() == 'a'
    ca = lab.start_client('a', 'a1', 1200, 500, timeout=40)
    cb = lab.start_client('b', 'b1', 1200, 500, timeout=40)
    rule = ['-p', 'tcp', '--dport', str(CTL_PORT), '-j', 'DROP']
    with StateSampler([lab.guest_pid('a'), lab.guest_pid('b')]) as sampler:
        time.sleep(0.5)
        sh('ip', 'netns', 'exec', lab.ns('hv', 'a'), 'iptables', '-I',
           'OUTPUT', *rule)
        try:
            r = lab.switchover('a')
        finally:
            sh('ip', 'netns', 'exec', lab.ns('hv', 'a'), 'iptables', '-D',
               'OUTPUT', *rule)
        assert not r['ok'] and 'export' in r['error'], r
        assert lab.wait_idle() == 'a'
        a, b = lab.status('a')['counters'], lab.status('b')['counters']
        assert a['handbacks'] == 1 and b['switchovers_in'] == 0, (a, b)
        assert b['switchovers_failed'] == 1, b
        results = _drain_to_b(lab, ca, cb)
    assert (True, False) in sampler.seen
    assert sampler.both_running == [], sampler.both_running[:5]
    assert_exactly_once(lab, results, 'b')
