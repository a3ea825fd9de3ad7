"""The topology and the traffic, loaded the same way by every caller.

* :func:`load_engine` – a core :class:`~nova_netaware.core.engine.Engine`
  on the topology file;
* :func:`get_traffic_source` – the one factory of traffic sources: the
  stevedore plugin *name* in :data:`TRAFFIC_SOURCE_NAMESPACE`, as tooz's
  ``get_coordinator`` loads its drivers;
* :func:`read_traffic` – the source's current traffic matrix, its failures
  as :class:`~nova_netaware.core.exceptions.DataError`;
* :class:`FileCache` – re-reads a file only when it changes.

The scheduler keeps one engine and one source per process; the OSC plugin
and the CLI load them once per command.
"""

import os

from stevedore import driver

from nova_netaware.core import engine as core_engine
from nova_netaware.core.exceptions import DataError
from nova_netaware.core.exceptions import TopologyError
from nova_netaware.core.exceptions import TrafficError
from nova_netaware.core import topocache

TRAFFIC_SOURCE_NAMESPACE = 'nova_netaware.traffic_sources'


def load_engine(path, default_link_latency_us, use_cache=False):
    """A core Engine on the topology file *path* (a bad file raises the
    core's TopologyError); with *use_cache*, through the topology's binary
    cache (:mod:`nova_netaware.core.topocache`). The engine's
    ``cache_status`` says whether the cache was used, or why not."""
    topo, status = topocache.load(path, default_link_latency_us,
                                  use_cache=use_cache)
    eng = core_engine.Engine(topo)
    eng.cache_status = status
    return eng


def get_traffic_source(name, conf):
    """The traffic source *name*, built with *conf* (an oslo.config
    ConfigOpts with the ``[netaware]`` options)."""
    try:
        return driver.DriverManager(
            TRAFFIC_SOURCE_NAMESPACE, name, invoke_on_load=True,
            invoke_args=(conf,)).driver
    except Exception as e:
        raise DataError('traffic source %r cannot be loaded from namespace '
                        '%s: %s' % (name, TRAFFIC_SOURCE_NAMESPACE, e))


def read_traffic(source, name, name_source=False):
    """``source.get()``; any other failure than a DataError becomes a
    DataError that names the source.

    A DataError passes unchanged (the scheduler logs the data's own words),
    or, with *name_source* (the commands), prefixed with the source's name:
    ``traffic source 'x': <problem of the traffic data>``, else ``traffic
    source 'x' failed: <problem>``.
    """
    try:
        return source.get()
    except DataError as e:
        if not name_source:
            raise
        data_problem = isinstance(e, (TrafficError, TopologyError))
        raise DataError(('traffic source %r: %s' if data_problem else
                         'traffic source %r failed: %s') % (name, e))
    except Exception as e:
        raise DataError('traffic source %r failed: %s' % (name, e))


class FileCache(object):
    """Re-reads a file only when its (mtime, size, inode) changes.

    ``loader(path, key)`` gives the value; any failure of it is a
    DataError with the failure's message, raised again (without re-reading)
    until the file changes.
    """

    def __init__(self, loader):
        self._loader = loader
        self._key = None
        self._value = None
        self._error = None

    def get(self, path):
        try:
            st = os.stat(path)
        except OSError as e:
            raise DataError('cannot read %s: %s' % (path, e.strerror))
        key = (path, st.st_mtime_ns, st.st_size, st.st_ino)
        if key != self._key:
            self._key = key
            try:
                self._value, self._error = self._loader(path, key), None
            except Exception as e:  # noqa - any loader failure is data error
                self._value, self._error = None, str(e)
        if self._error:
            raise DataError(self._error)
        return self._value
