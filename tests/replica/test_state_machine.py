"""The switchover state machine: only the listed transitions are allowed."""

import pytest

from nova_netaware.replica import agent as agent_mod


def _bare(state):
    a = object.__new__(agent_mod.Agent)  # no drivers needed for _to()
    a.state, a.epoch, a.history, a.since = state, 3, [], 0.0
    return a


def test_switchover_paths_allowed():
    out = [agent_mod.FENCING, agent_mod.HANDING_OFF, agent_mod.STANDBY]
    a = _bare(agent_mod.ACTIVE)
    for s in out:
        a._to(s)
    for s in (agent_mod.ACTIVATING, agent_mod.ACTIVE):
        a._to(s)
    # failed handoff: recover to either role, by the epoch
    a = _bare(agent_mod.HANDING_OFF)
    a._to(agent_mod.RECOVERING)
    a._to(agent_mod.STANDBY)
    assert [h[2] for h in a.history] == [agent_mod.RECOVERING,
                                         agent_mod.STANDBY]


@pytest.mark.parametrize('src,dst', [
    (agent_mod.STANDBY, agent_mod.ACTIVE),        # never skip activation
    (agent_mod.ACTIVE, agent_mod.STANDBY),        # never skip the fence
    (agent_mod.HANDING_OFF, agent_mod.ACTIVE),    # only via RECOVERING
    (agent_mod.FAILED, agent_mod.ACTIVE),
    (agent_mod.ACTIVATING, agent_mod.FENCING),
])
def test_forbidden_transitions(src, dst):
    a = _bare(src)
    with pytest.raises(agent_mod.InvalidTransition, match='not allowed'):
        a._to(dst)
    assert a.state == src


def test_every_state_has_a_role_and_a_way_out():
    for s, nxt in agent_mod.TRANSITIONS.items():
        assert s in agent_mod.ROLE
        assert nxt, s
