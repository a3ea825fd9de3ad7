"""Data plane plugin interface (stevedore namespace
``nova_netaware.replica.dataplanes``).

A data plane sits on the hypervisor side in front of one copy. In ``buffer``
mode every packet toward the copy is copied into the durable buffer and the
original dropped; :meth:`DataPlane.activate` re-injects the buffered packets
in their original order and then lets traffic pass (``pass`` mode).
"""

import abc

# raised by the plugins, importable here
from nova_netaware.replica.errors import DataPlaneError  # noqa: F401

BUFFER = 'buffer'
PASS = 'pass'
MODES = (BUFFER, PASS)


class DataPlane(abc.ABC):

    def __init__(self, conf, buffer):
        self.conf = conf
        self.buffer = buffer

    @abc.abstractmethod
    def start(self, mode):
        """Intercept traffic toward the copy, starting in ``mode``."""

    @abc.abstractmethod
    def fence(self):
        """Switch to buffer mode; when this returns, no further packet is
        delivered to the copy."""

    @abc.abstractmethod
    def activate(self):
        """Replay the buffer in order, then pass traffic. Returns a dict
        with at least ``replayed`` and ``replay_seconds``."""

    @abc.abstractmethod
    def stats(self):
        """Counters (dict of numbers)."""

    @abc.abstractmethod
    def stop(self):
        """Stop intercepting in this process (rules may stay, fail-closed
        in buffer mode)."""
