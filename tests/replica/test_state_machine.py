"""The switchover state machine: only the listed transitions are allowed."""

import pytest

from nova_netaware.replica import errors
from nova_netaware.replica import states


def _bare(state):
    return states.StateMachine(state, epoch=3)


def test_switchover_paths_allowed():
    out = [states.FENCING, states.HANDING_OFF, states.STANDBY]
    a = _bare(states.ACTIVE)
    for s in out:
        a.to(s)
    for s in (states.ACTIVATING, states.ACTIVE):
        a.to(s)
    # failed handoff: recover to either role, by the epoch
    a = _bare(states.HANDING_OFF)
    a.to(states.RECOVERING)
    a.to(states.STANDBY)
    assert [h[2] for h in a.history] == [states.RECOVERING,
                                         states.STANDBY]


@pytest.mark.parametrize('src,dst', [
    (states.STANDBY, states.ACTIVE),        # never skip activation
    (states.ACTIVE, states.STANDBY),        # never skip the fence
    (states.HANDING_OFF, states.ACTIVE),    # only via RECOVERING
    (states.FAILED, states.ACTIVE),
    (states.ACTIVATING, states.FENCING),
])
def test_forbidden_transitions(src, dst):
    a = _bare(src)
    with pytest.raises(errors.InvalidTransition, match='not allowed'):
        a.to(dst)
    assert a.state == src


def test_every_state_has_a_role_and_a_way_out():
    for s, nxt in states.TRANSITIONS.items():
        assert s in states.ROLE
        assert nxt, s
