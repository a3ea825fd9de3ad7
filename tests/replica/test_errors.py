"""Every replica error has one root, under the project's root error, and
keeps the name it had in the module that raises it."""

import pytest

from nova_netaware.core.exceptions import NetawareError
from nova_netaware.replica import agent
from nova_netaware.replica import buffer
from nova_netaware.replica import dataplane
from nova_netaware.replica import drivers
from nova_netaware.replica import errors
from nova_netaware.replica import fencing
from nova_netaware.replica import lab
from nova_netaware.replica import peer


@pytest.mark.parametrize('module,name', [
    (agent, 'AgentError'), (agent, 'InvalidTransition'),
    (drivers, 'DriverError'), (drivers, 'ChecksumMismatch'),
    (peer, 'PeerError'), (peer, 'AuthError'),
    (fencing, 'FenceError'), (fencing, 'StaleEpoch'),
    (buffer, 'BufferError_'), (dataplane, 'DataPlaneError'),
    (lab, 'LabError'),
])
def test_one_root(module, name):
    cls = getattr(module, name)
    assert cls is getattr(errors, name)
    assert issubclass(cls, errors.ReplicaError)
    assert issubclass(errors.ReplicaError, NetawareError)


def test_subclasses_kept():
    assert issubclass(errors.InvalidTransition, errors.AgentError)
    assert issubclass(errors.ChecksumMismatch, errors.DriverError)
    assert issubclass(errors.AuthError, errors.PeerError)
    e = errors.StaleEpoch(3, (4, 'agent-b'))
    assert (e.expected, e.current) == (3, (4, 'agent-b'))
    assert str(e) == 'stale epoch: expected 3, current epoch is 4 ' \
                     '(holder agent-b)'
