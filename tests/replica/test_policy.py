"""Policy triggers: buffer depth, oldest buffered age, time quantum --
switchovers happen without a manual command and every request is still
served exactly once."""

import time

import pytest

from tests.replica.helpers import assert_exactly_once

pytestmark = pytest.mark.netns


@pytest.mark.parametrize('policy,value,counter_reason', [
    ('policy_max_buffer_packets', 150, 'buffer_depth'),
    ('policy_max_oldest_age', 0.2, 'oldest_age'),
    ('policy_time_quantum', 0.3, 'time_quantum'),
])
def test_policy_triggers(lab, policy, value, counter_reason):
    lab.start_guest('a')
    lab.start_guest('b')
    lab.start_agent('a', **{policy: value})
    lab.start_agent('b', **{policy: value})
    assert lab.wait_idle() == 'a'
    clients = [lab.start_client('a', 'a1', 1200, 1000, timeout=20),
               lab.start_client('b', 'b1', 1200, 1000, timeout=20)]
    for c in clients:
        lab.wait_sent(c, 30)
    time.sleep(0.5)
    active = lab.wait_idle()
    # the policy alone moved the copy back and forth
    sa, sb = lab.status('a'), lab.status('b')
    trig = sa['counters']['policy_triggers'] + \
        sb['counters']['policy_triggers']
    assert trig >= 2, (sa['counters'], sb['counters'])  # there and back
    assert sa['counters']['manual_triggers'] == 0
    assert sb['counters']['manual_triggers'] == 0
    assert sa['epoch'] >= 3
    reasons = {s['last_switchover']['reason'] for s in (sa, sb)
               if s['last_switchover']}
    assert any(counter_reason in (r or '') for r in reasons), reasons
    standby = 'b' if active == 'a' else 'a'
    if lab.status(standby)['buffer']['packets']:
        # a depth policy leaves a tail below its threshold: drain it
        assert lab.switchover(standby)['ok']
        active = lab.wait_idle()
    results = [lab.client_result(c, 60) for c in clients]
    assert_exactly_once(lab, results, active)
