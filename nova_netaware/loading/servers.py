"""The server model and the weight multiplier, from plain values.

The scheduler plugin reads them from Nova's RequestSpec and HostState, the
OSC plugin from the compute API; both call these functions, so the two
decide on the same server and the same multiplier.
"""

from oslo_log import log as logging

from nova_netaware.core import engine as core_engine
from nova_netaware.utils.log import LogOnce

LOG = logging.getLogger(__name__)

#: Per-server overrides of ``[netaware]`` options: Server field ->
#: (flavor extra spec / server metadata key, type).
EXTRA_KEYS = {
    'max_hops': ('netaware:max_hops', int),
    'max_latency_us': ('netaware:max_latency_us', float),
    'dirty_rate_mbps': ('netaware:dirty_rate_mbps', float),
}
#: Host aggregate metadata key that overrides ``[netaware]
#: weight_multiplier``.
MULTIPLIER_KEY = 'netaware_weight_multiplier'

_log_once = LogOnce(LOG)


def _override(value, cast, key, where, log_once):
    try:
        return cast(value)
    except (TypeError, ValueError):
        log_once(logging.WARNING, 'nova-netaware: ignoring %s %s=%r: not a '
                 'number', where, key, value)
        return None


def server_model(uuid, memory_mb, vcpus, extra_specs=None, metadata=None,
                 is_move=True, log_once=None):
    """A core :class:`~nova_netaware.core.engine.Server`.

    The :data:`EXTRA_KEYS` come from the flavor's extra specs, and server
    metadata wins over them. A value that is not a number is ignored (the
    option applies) and logged once through *log_once* (a
    :class:`~nova_netaware.utils.log.LogOnce`; this module's by default).
    """
    log_once = log_once or _log_once
    extra = extra_specs or {}
    kw = {}
    for field, (key, cast) in EXTRA_KEYS.items():
        val = None
        if key in extra:
            val = _override(extra[key], cast, key, 'flavor extra spec',
                            log_once)
        if metadata and key in metadata:
            v2 = _override(metadata[key], cast, key, 'server metadata',
                           log_once)
            val = v2 if v2 is not None else val
        kw[field] = val
    return core_engine.Server(
        uuid=uuid, memory_mb=int(memory_mb or 0), vcpus=int(vcpus or 0),
        is_move=is_move, **kw)


def weight_multiplier(aggregate_values, default):
    """The weigher's multiplier on a host, by Nova's rule.

    Follows ``nova.scheduler.utils.get_weight_multiplier`` (with
    ``filters.utils.validate_num_values``): *aggregate_values* are the
    distinct values of :data:`MULTIPLIER_KEY` in the metadata of the host's
    aggregates; none gives *default* (``[netaware] weight_multiplier``),
    else their minimum as a float, and a value that is not a number makes it
    *default*. The weigher calls Nova's own function; the OSC plugin,
    which has no HostState, calls this one.
    """
    vals = set(aggregate_values)
    if not vals:
        return default
    try:
        return min(float(v) for v in vals)
    except ValueError:
        return default
