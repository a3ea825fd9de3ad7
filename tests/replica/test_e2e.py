"""End to end on the real kernel: clients in both clouds send numbered
requests while switchovers repeat; the final state accounts for every
request exactly once, every reply arrives, per-client order is kept."""

import time

import pytest

from tests.replica.helpers import StateSampler, assert_exactly_once

pytestmark = pytest.mark.netns


def test_repeated_manual_switchovers(pair):
    lab = pair
    clients = [lab.start_client('a', 'a1', 1500, 800, timeout=30),
               lab.start_client('a', 'a2', 1000, 500, timeout=30),
               lab.start_client('b', 'b1', 1500, 800, timeout=30),
               lab.start_client('b', 'b2', 1000, 500, timeout=30)]
    pids = [lab.guest_pid('a'), lab.guest_pid('b')]
    done = 0
    with StateSampler(pids) as sampler:
        time.sleep(0.4)
        for i in range(10):
            # alternate: command the active side, then the standby side
            side = 'ab'[i % 2] if i % 4 < 2 else 'ba'[i % 2]
            before = lab.active_side()
            r = lab.switchover(side)
            assert r['ok'], r
            assert lab.wait_idle() != before
            done += 1
            time.sleep(0.15)
        for c in clients:
            lab.wait_sent(c, 30)  # replies of the standby side are held
        # one last switchover drains the standby side's buffer
        time.sleep(0.2)
        r = lab.switchover(lab.active_side())
        assert r['ok'], r
        active = lab.wait_idle()
        results = [lab.client_result(c) for c in clients]
    assert done == 10
    assert sampler.samples > 100
    assert sampler.both_running == []
    st = assert_exactly_once(lab, results, active)
    assert st['total'] == 5000
    sa, sb = lab.status('a'), lab.status('b')
    assert sa['buffer']['packets'] == 0 and sb['buffer']['packets'] == 0
    assert sa['epoch'] == sb['epoch'] == 12
    assert sa['counters']['switchovers_out'] + \
        sb['counters']['switchovers_out'] == 11
    # the standby's data plane really buffered and replayed traffic
    assert sa['dataplane'].get('replayed', 0) > 0
    assert sb['dataplane'].get('replayed', 0) > 0
    last = lab.status(active)['last_switchover']
    assert last['direction'] == 'in' and last['ok']
