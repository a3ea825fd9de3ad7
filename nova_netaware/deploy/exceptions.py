"""The errors of the deployment tools, under the project's root error.

* :class:`SettingsError`: the ``[netaware]`` settings or the host list given
  to the deployer cannot be used (also a ``ValueError``, as before);
* :class:`StackError`: the local stack cannot be brought up, checked or
  stopped; the message names the service and quotes its log.
"""

from nova_netaware.core.exceptions import DataError
from nova_netaware.core.exceptions import NetawareError


class SettingsError(DataError):
    """Deployment settings that cannot be used; the message says which."""


class StackError(NetawareError):
    """The local stack failed; the message names the service and its log."""
