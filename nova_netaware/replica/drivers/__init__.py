"""Plugin interfaces of the replica agent (stevedore).

* ``nova_netaware.replica.cloud_drivers``: :class:`CloudDriver` -- pause,
  unpause, export_state and import_state of a copy (``local`` now, an
  ``openstack`` driver through openstacksdk's pause_server/unpause_server
  later).
* ``nova_netaware.replica.state_drivers``: :class:`StateDriver` -- carries
  the service state out of and into a copy, with a checksum.
* ``nova_netaware.replica.dataplanes``: see :mod:`..dataplane`.
"""

import abc
import hashlib

from stevedore import driver as sv_driver

from nova_netaware.replica.errors import ChecksumMismatch
from nova_netaware.replica.errors import DriverError


class StateBlob:
    """Exported state: opaque bytes, their SHA-256, and metadata."""

    def __init__(self, data, sha256=None, meta=None, verify=True):
        self.data = data
        self.sha256 = sha256 or hashlib.sha256(data).hexdigest()
        self.meta = dict(meta or {})
        if verify and hashlib.sha256(data).hexdigest() != self.sha256:
            raise ChecksumMismatch('state does not match its checksum')

    def __len__(self):
        return len(self.data)


class StateDriver(abc.ABC):

    def __init__(self, conf):
        self.conf = conf

    @abc.abstractmethod
    def export_state(self, copy):
        """Return a :class:`StateBlob` of ``copy`` (a consistent cut)."""

    @abc.abstractmethod
    def import_state(self, copy, blob, epoch):
        """Load ``blob`` into ``copy``; return the SHA-256 the copy computed
        over the state it actually restored."""


class CloudDriver(abc.ABC):
    """What the agent needs from a cloud to move one copy.

    ``requires_running_for_import`` tells the agent whether
    :meth:`import_state` needs the copy unpaused (the ``local`` driver's
    guest endpoint does; a driver that writes a paused server's memory or
    disk would not). The agent only unpauses under the current epoch and
    only while the copy's traffic is still being buffered.
    """

    requires_running_for_import = True

    def __init__(self, conf, state_driver):
        self.conf = conf
        self.state_driver = state_driver

    @abc.abstractmethod
    def pause(self, copy):
        """Freeze the copy; return only once it is frozen."""

    @abc.abstractmethod
    def unpause(self, copy):
        """Resume the copy; return only once it runs."""

    @abc.abstractmethod
    def is_running(self, copy):
        """True if the copy runs, False if paused; raise if it is gone."""

    def export_state(self, copy):
        return self.state_driver.export_state(copy)

    def import_state(self, copy, blob, epoch):
        return self.state_driver.import_state(copy, blob, epoch)


def load(namespace, name, *args):
    try:
        mgr = sv_driver.DriverManager(namespace, name,
                                      invoke_on_load=True,
                                      invoke_args=args)
    except Exception as e:  # stevedore raises NoMatches / RuntimeError
        raise DriverError('cannot load plugin %r from %s: %s (is the '
                          'package installed so its entry points exist?)'
                          % (name, namespace, e))
    return mgr.driver
