"""The one root error of nova-netaware, and its data errors.

Every error the project raises on bad input derives from
:class:`NetawareError` (as every tooz error derives from ``ToozError``), so
an adapter catches one class. The data errors are also ``ValueError``s, as
they were before this module existed: callers that caught ``ValueError``
keep working.
"""


class NetawareError(Exception):
    """Root of every nova-netaware error."""


class DataError(NetawareError, ValueError):
    """Data the plugin was given cannot be used; the message says why."""


class TopologyError(DataError):
    """The topology data is malformed; the message names the bad entry."""


class TrafficError(DataError):
    """The traffic data is malformed; the message names the bad entry."""


class SnapshotError(DataError):
    """A placement snapshot is malformed; the message names the entry."""
