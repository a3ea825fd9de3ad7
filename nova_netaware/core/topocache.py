"""A binary cache of a checked topology, next to its file.

Reading a large fabric's file (JSON or YAML), checking it and searching the
hops between its twin classes takes most of a scheduler restart at tens of
thousands of hosts. :func:`load` keeps what that produced
(:meth:`.topology.Topology.state`: the names, the link and host arrays and
the twin classes' hops) in ``<topology file>.netaware-cache.npz`` and
rebuilds the :class:`.topology.Topology` from it with
:meth:`~.topology.Topology.from_state`, which gives the same numbers.

Safety, in this order:

* the cache is keyed by the SHA-256 of the topology file's bytes, the
  default link latency and :data:`VERSION` (bumped whenever the reading or
  the state changes): any edit of the file makes the cache stale, and a
  stale cache is never used;
* a SHA-256 of every stored array is checked before use, so that a
  truncated or damaged cache is detected;
* anything wrong with the cache (missing, stale, unreadable, damaged) makes
  :func:`load` read the topology file as if there were no cache, and write a
  new cache; a topology file with errors raises its
  :class:`~.exceptions.TopologyError` whatever the cache holds;
* the cache is written to a temporary file in the same directory and
  renamed over the old one (atomic: concurrent scheduler workers never see
  half a file); a directory the process cannot write to leaves no cache,
  and the status says so.

The file holds plain arrays only (``allow_pickle=False``).
"""

import hashlib
import json
import os
import tempfile

import numpy as np

from nova_netaware.core.readwrite import load_data_file
from nova_netaware.core.topology import Topology

#: bumped whenever the topology reading or :attr:`Topology.STATE` changes
VERSION = 1
SUFFIX = '.netaware-cache.npz'
_NAMES = ('switch_names', 'host_names')


def cache_path(path):
    """Where the cache of the topology file *path* lives."""
    return path + SUFFIX


def _key(raw, default_link_latency_us):
    h = hashlib.sha256()
    h.update(b'nova-netaware topology cache %d\0' % VERSION)
    h.update(repr(float(default_link_latency_us)).encode() + b'\0')
    h.update(raw)
    return h.hexdigest()


def _digest(arrays):
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + b'\0' + a.dtype.str.encode() + b'\0' +
                 repr(a.shape).encode() + b'\0')
        h.update(a.view(np.uint8).reshape(-1) if a.size else b'')
    return h.hexdigest()


def _read(cpath, key):
    """The state stored in *cpath* for *key*, or ``(None, why)``."""
    try:
        with np.load(cpath, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(bytes(arrays.pop('meta')).decode())
    except FileNotFoundError:
        return None, 'no cache'
    except Exception as e:  # noqa - any unreadable cache is rebuilt
        return None, 'unreadable cache (%s: %s)' % (type(e).__name__, e)
    if meta.get('version') != VERSION or meta.get('key') != key:
        return None, 'stale cache'
    if _digest(arrays) != meta.get('digest') or \
            set(arrays) != set(Topology.STATE):
        return None, 'damaged cache (checksum)'
    state = dict(arrays)
    for k in _NAMES:
        state[k] = arrays[k].tolist()
    return state, 'cache'


def _write(cpath, key, topo):
    """Write *topo*'s state to *cpath* atomically; a status string."""
    state = topo.state()
    arrays = {k: (np.array(v, dtype=np.str_) if k in _NAMES else
                  np.asarray(v)) for k, v in state.items()}
    meta = {'version': VERSION, 'key': key, 'digest': _digest(arrays)}
    arrays['meta'] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    d = os.path.dirname(os.path.abspath(cpath))
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix='.netaware-cache-')
    except OSError as e:
        return 'cache not written (%s)' % (e.strerror or e)
    try:
        with os.fdopen(fd, 'wb') as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, cpath)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return 'cache not written (%s)' % (e.strerror or e)
    return 'cache written'


def load(path, default_link_latency_us=1.0, use_cache=True):
    """The :class:`Topology` of the file *path*, through its cache.

    :returns: ``(topology, status)``; *status* says whether the cache was
        used (``'cache'``) or why not, and whether a new one was written.
    """
    if not use_cache:
        return Topology.from_file(path, default_link_latency_us), 'no cache'
    source = os.path.basename(path)
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError:
        # the plain reading gives the error message
        return Topology.from_file(path, default_link_latency_us), 'no cache'
    key = _key(raw, default_link_latency_us)
    cpath = cache_path(path)
    state, why = _read(cpath, key)
    if state is not None:
        try:
            return Topology.from_state(state, source), why
        except Exception as e:  # noqa - a cache that does not build
            why = 'unusable cache (%s: %s)' % (type(e).__name__, e)
    topo = Topology(load_data_file(path, raw=raw), default_link_latency_us,
                    source=source)
    return topo, '%s; %s' % (why, _write(cpath, key, topo))
