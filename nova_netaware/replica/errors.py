"""The errors of the replica agent, under one root.

Every error the replica agent raises derives from :class:`ReplicaError`,
itself a :class:`nova_netaware.core.exceptions.NetawareError` (as every tooz
error derives from ``ToozError``), so a caller catches one class. Each class
is also importable from the module that raises it (``fencing.StaleEpoch``,
``peer.AuthError``, ...).
"""

from nova_netaware.core.exceptions import NetawareError


class ReplicaError(NetawareError):
    """Root of every replica agent error."""


class AgentError(ReplicaError):
    """The agent cannot start or be reached (message says why)."""


class InvalidTransition(AgentError):
    """A state change the switchover state machine does not allow."""


class DriverError(ReplicaError):
    """A driver could not do what was asked (message says why)."""


class ChecksumMismatch(DriverError):
    """State bytes do not match their SHA-256."""


class PeerError(ReplicaError):
    """Transport problem talking to the peer."""


class AuthError(PeerError):
    """A message failed authentication (reason in ``.reason``)."""

    def __init__(self, reason, detail=''):
        super().__init__('%s%s' % (reason, (': ' + detail) if detail else ''))
        self.reason = reason


class FenceError(ReplicaError):
    """The coordination backend cannot be used."""


class StaleEpoch(ReplicaError):
    """The caller's epoch is not the current one."""

    def __init__(self, expected, current):
        super().__init__('stale epoch: expected %s, current epoch is %s '
                         '(holder %s)' % (expected, current[0], current[1]))
        self.expected = expected
        self.current = current


class BufferError_(ReplicaError):
    """Raised for an unusable buffer configuration or file."""


class DataPlaneError(ReplicaError):
    """The data plane cannot intercept, buffer or replay (message says
    why)."""


class LabError(ReplicaError):
    """The test bed could not be built or driven (message says why)."""
