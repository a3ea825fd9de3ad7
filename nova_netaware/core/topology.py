"""Datacenter topology: validation and precomputed distances.

A topology is plain data (a ``dict``, as read from YAML or JSON)::

    switches: [{name: spine-1}, {name: leaf-a}]
    links:    [{a: leaf-a, b: spine-1, gbps: 100, latency_us: 2}]
    hosts:    [{name: compute-1, switch: leaf-a, uplink_gbps: 25}]

``Topology`` turns it into arrays that the scheduler can use without walking
the graph on every request:

* ``dist`` – switch-to-switch hop counts (all pairs, from one search per
  node of the twin classes' quotient graph, :func:`_twin_quotient`, in C
  through :func:`scipy.sparse.csgraph.shortest_path`);
* ``lat`` – switch-to-switch path latency in microseconds (Dijkstra, or
  from the hops when every link has the same latency; :meth:`lat_to`
  reads columns of it without building the whole matrix);
* the directed fabric link arrays ``edge_u``, ``edge_v``, ``edge_cap``;
* per host: switch index, uplink capacity and uplink latency.

Host-to-host hops are defined here only: :func:`remote_host_hops` (two
different hosts, by their switches) and :meth:`Topology.hops_from` /
:meth:`Topology.host_hops` (by host). The MIF and the distance constraint
call them. The graph itself is available as a :class:`networkx.Graph`
through :meth:`Topology.graph` for tools that want it.

Generators live in :mod:`.generators` and file reading in :mod:`.readwrite`;
``leaf_spine``, ``fat_tree`` and ``load_data_file`` are re-exported here.
"""

import os

import networkx as nx
import numpy as np
from scipy.sparse import csgraph
from scipy.sparse import csr_matrix

from nova_netaware.core.exceptions import TopologyError
from nova_netaware.core.generators import fat_tree  # noqa: F401
from nova_netaware.core.generators import leaf_spine  # noqa: F401
from nova_netaware.core.readwrite import load_data_file

__all__ = ['Topology', 'TopologyError', 'UNREACHABLE', 'UPLINK_HOPS',
           'remote_host_hops', 'fat_tree', 'leaf_spine', 'load_data_file']

UNREACHABLE = np.iinfo(np.int32).max // 4
#: Hops the two host uplinks add between different hosts: the distance
#: between hosts a != b is ``UPLINK_HOPS + dist(switch(a), switch(b))``.
UPLINK_HOPS = 2


def remote_host_hops(dist, switch_a, switch_b):
    """Hops between two *different* hosts behind ``switch_a`` and ``switch_b``.

    ``UPLINK_HOPS + dist[switch_a, switch_b]``: the two host uplinks plus the
    shortest switch path. The switch arguments index the hop matrix *dist*
    as numpy does (indices, index arrays or ``slice(None)`` for every
    switch). Two servers on the same host are 0 hops apart.
    """
    return UPLINK_HOPS + dist[switch_a, switch_b]


def _twin_quotient(n, eu, ev):
    """The twin classes of the *n* switches and the hops between them.

    Twins are switches with the same non-empty set of neighbours (the edge
    switches of a fat-tree pod, the leaves of a leaf-spine, a fat-tree's
    core switches of one group); twins are never linked. Between the
    classes of two linked switches every member of one is linked to every
    member of the other, so a path of classes lifts to a path of switches
    of the same length: the hops between two switches of different classes
    are the hops between their classes in the *quotient graph* (one node
    per class, linked where their members are), and two twins are two hops
    apart (through a common neighbour).

    :returns: ``(row, qd)``: the class of each switch (``0..classes-1``)
        and the hops between classes (int32, :data:`UNREACHABLE` where
        there is no path), with 2 on the diagonal of a class of several
        twins and 0 for a class of one switch.
    """
    eu = np.asarray(eu, dtype=np.int64)
    ev = np.asarray(ev, dtype=np.int64)
    adj = csr_matrix((np.ones(len(eu)), (eu, ev)), shape=(n, n))
    adj.sort_indices()
    cls = np.arange(n)
    seen = {}
    ind, ptr = adj.indices, adj.indptr
    for s in range(n):
        if ptr[s + 1] > ptr[s]:
            cls[s] = seen.setdefault(ind[ptr[s]:ptr[s + 1]].tobytes(), s)
    reps, row = np.unique(cls, return_inverse=True)
    row = row.reshape(-1)
    q = len(reps)
    quot = csr_matrix((np.ones(len(eu)), (row[eu], row[ev])), shape=(q, q))
    qd = csgraph.shortest_path(quot, method='D', unweighted=True)
    qd = np.where(np.isinf(qd), UNREACHABLE, qd).astype(np.int32)
    size = np.bincount(row, minlength=q)
    qd[np.arange(q), np.arange(q)] = np.where(size > 1, 2, 0)
    return row, qd


def _expand(qa, row):
    """The (switches x switches) matrix of a (classes x classes) one."""
    return qa.take(row, axis=0).take(row, axis=1)


def _latencies(row, qd, weight, eu, ev):
    """Lightest path latency between switches (Dijkstra over the link
    *weight*, ``inf`` where unreachable), as ``(row, table)``: the latency
    between switches ``a != b`` is ``table[row[a], row[b]]``.

    When every link weighs the same, the lightest paths are the paths with
    fewest hops, and Dijkstra's sum along one, ``w + w + ...`` from the
    source, depends only on the hop count: the table is read from the sums
    by hops between twin classes (*row*, *qd* of :func:`_twin_quotient`):
    the same floats, without the searches and without a (switches x
    switches) matrix. Otherwise it is Dijkstra's matrix, one row per
    switch.
    """
    n = len(row)
    if (weight == weight[0]).all():
        reach = qd < UNREACHABLE
        top = int(qd[reach].max()) if reach.any() else 0
        table = np.zeros(top + 2)
        acc = 0.0
        for h in range(1, top + 1):
            acc = acc + float(weight[0])
            table[h] = acc
        table[top + 1] = np.inf
        return row, table[np.where(reach, qd, top + 1)]
    latm = csr_matrix((weight, (eu, ev)), shape=(n, n))
    return np.arange(n), csgraph.shortest_path(latm, method='D')


def _positive(value, what):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TopologyError('%s must be a number, got %r' % (what, value))
    if not v > 0:
        raise TopologyError('%s must be > 0, got %r' % (what, value))
    return v


def _latency(value, fmt, *args):
    """A latency in microseconds: a number >= 0 (NaN refused); else a
    :class:`TopologyError` with the message ``fmt % args``."""
    try:
        v = float(value)
        if not v >= 0:                      # also refuses NaN
            raise ValueError()
    except (TypeError, ValueError):
        raise TopologyError(fmt % args)
    return v


def _links_fast(links, switch_index, default_latency):
    """The link arrays of :meth:`Topology._read_links` (one directed edge
    each way per link, in file order), or ``None`` if any link fails a
    check: then the link-by-link reading names the first bad one. The same
    numbers: ``float`` of each value, capacities ``gbps * 1000.0``."""
    try:
        if not all(type(x) is dict for x in links):
            return None
        ia = np.fromiter([switch_index[x['a']] for x in links], np.int64,
                         len(links))
        ib = np.fromiter([switch_index[x['b']] for x in links], np.int64,
                         len(links))
        gbps = np.fromiter([float(x['gbps']) for x in links], np.float64,
                           len(links))
        lat = np.fromiter([float(x.get('latency_us', default_latency))
                           for x in links], np.float64, len(links))
    except (KeyError, TypeError, ValueError):
        return None
    n = len(switch_index)
    pair = np.minimum(ia, ib) * n + np.maximum(ia, ib)
    if ((ia == ib).any() or len(np.unique(pair)) != len(pair)
            or not (gbps > 0).all() or not (lat >= 0).all()):
        return None
    eu = np.empty(2 * len(links), dtype=np.int64)
    ev = np.empty(2 * len(links), dtype=np.int64)
    eu[0::2], eu[1::2] = ia, ib
    ev[0::2], ev[1::2] = ib, ia
    return eu, ev, np.repeat(gbps * 1000.0, 2), np.repeat(lat, 2)


def _hosts_fast(hosts, switch_index):
    """``(names, switch, capacity, latency)`` of :meth:`Topology.
    _read_hosts`, or ``None`` if any host fails a check (then the
    host-by-host reading names the first bad one)."""
    try:
        if not all(type(x) is dict and x.get('name') for x in hosts):
            return None
        names = [str(x['name']) for x in hosts]
        sw = np.fromiter([switch_index[x['switch']] for x in hosts],
                         np.int64, len(hosts))
        cap = np.fromiter([float(x['uplink_gbps']) for x in hosts],
                          np.float64, len(hosts))
        lat = np.fromiter([float(x.get('latency_us', 0.0)) for x in hosts],
                          np.float64, len(hosts))
    except (KeyError, TypeError, ValueError):
        return None
    unique = set(names)
    if (len(unique) != len(names) or not unique.isdisjoint(switch_index)
            or not (cap > 0).all() or not (lat >= 0).all()):
        return None
    return names, sw, cap * 1000.0, lat


def _sections(data, source):
    """The switches, links and hosts lists of *data*, checked."""
    if not isinstance(data, dict):
        raise TopologyError('%s: the topology must be a mapping with '
                            'switches, links and hosts' % source)
    unknown = set(data) - {'switches', 'links', 'hosts'}
    if unknown:
        raise TopologyError('%s: unknown top-level keys %s' % (
            source, ', '.join(sorted(unknown))))
    switches = data.get('switches') or []
    links = data.get('links') or []
    hosts = data.get('hosts') or []
    for key, val in (('switches', switches), ('links', links),
                     ('hosts', hosts)):
        if not isinstance(val, list):
            raise TopologyError('%s: "%s" must be a list' % (source, key))
    if not hosts:
        raise TopologyError('%s: no hosts' % source)
    return switches, links, hosts


class Topology(object):
    """Validated topology with precomputed distance matrices."""

    def __init__(self, data, default_link_latency_us=1.0, source='<data>'):
        self.source = source
        switches, links, hosts = _sections(data, source)
        self._read_switches(switches)
        eu, ev = self._read_links(links, default_link_latency_us)
        self._read_hosts(hosts)
        self._distances(eu, ev)

    def _read_switches(self, switches):
        self.switch_names = []
        self.switch_index = {}
        for i, sw in enumerate(switches):
            if not isinstance(sw, dict) or not sw.get('name'):
                raise TopologyError('%s: switches[%d] needs a name: %r' % (
                    self.source, i, sw))
            name = str(sw['name'])
            if name in self.switch_index:
                raise TopologyError('%s: switches[%d]: duplicate switch %r'
                                    % (self.source, i, name))
            self.switch_index[name] = len(self.switch_names)
            self.switch_names.append(name)

    def _read_links(self, links, default_link_latency_us):
        fast = _links_fast(links, self.switch_index, default_link_latency_us)
        if fast is None:
            # something is wrong: the checks link by link name it
            return self._read_links_checked(links, default_link_latency_us)
        self.edge_u, self.edge_v, self.edge_cap, self.edge_lat = fast
        return self.edge_u, self.edge_v

    def _read_links_checked(self, links, default_link_latency_us):
        eu, ev, cap, lat = [], [], [], []
        seen = set()
        for i, link in enumerate(links):
            where = '%s: links[%d]' % (self.source, i)
            if not isinstance(link, dict):
                raise TopologyError('%s must be a mapping: %r' % (where, link))
            for key in ('a', 'b'):
                if link.get(key) is None:
                    raise TopologyError('%s: missing key %r (the switch at '
                                        'that end): %r' % (where, key, link))
            a, b = link.get('a'), link.get('b')
            for end in (a, b):
                if end not in self.switch_index:
                    raise TopologyError('%s: unknown switch %r' % (where, end))
            if a == b:
                raise TopologyError('%s: link from %r to itself' % (where, a))
            ia, ib = self.switch_index[a], self.switch_index[b]
            if (min(ia, ib), max(ia, ib)) in seen:
                raise TopologyError('%s: duplicate link %s-%s' % (where, a, b))
            seen.add((min(ia, ib), max(ia, ib)))
            gbps = _positive(link.get('gbps'), where + '.gbps')
            latency = _latency(
                link.get('latency_us', default_link_latency_us),
                '%s.latency_us must be a number >= 0, got %r',
                where, link.get('latency_us'))
            # Full duplex: one directed edge each way, same capacity.
            eu += [ia, ib]
            ev += [ib, ia]
            cap += [gbps * 1000.0, gbps * 1000.0]
            lat += [latency, latency]
        self.edge_u = np.array(eu, dtype=np.int64)
        self.edge_v = np.array(ev, dtype=np.int64)
        self.edge_cap = np.array(cap, dtype=np.float64)     # Mbit/s
        self.edge_lat = np.array(lat, dtype=np.float64)
        return eu, ev

    def _read_hosts(self, hosts):
        fast = _hosts_fast(hosts, self.switch_index)
        if fast is None:
            # something is wrong: the checks host by host name it
            return self._read_hosts_checked(hosts)
        (self.host_names, self.host_switch, self.host_cap,
         self.host_lat) = fast
        self.host_index = dict(zip(self.host_names,
                                   range(len(self.host_names))))

    def _read_hosts_checked(self, hosts):
        self.host_names = []
        self.host_index = {}
        hsw, hcap, hlat = [], [], []
        for i, host in enumerate(hosts):
            where = '%s: hosts[%d]' % (self.source, i)
            if not isinstance(host, dict):
                raise TopologyError('%s must be a mapping: %r' % (where, host))
            if not host.get('name'):
                raise TopologyError("%s needs a name (missing key 'name'): "
                                    '%r' % (where, host))
            name = str(host['name'])
            if name in self.host_index:
                raise TopologyError('%s: duplicate host %r' % (where, name))
            if name in self.switch_index:
                raise TopologyError('%s: host %r has the name of a switch' % (
                    where, name))
            sw = host.get('switch')
            if sw is None:
                raise TopologyError('%s (%s): missing key \'switch\' (the '
                                    'switch the host is cabled to)' % (
                                        where, name))
            if sw not in self.switch_index:
                raise TopologyError('%s (%s): unknown switch %r' % (
                    where, name, sw))
            hcap.append(_positive(host.get('uplink_gbps'),
                                  '%s (%s).uplink_gbps' % (where, name))
                        * 1000.0)
            hlat.append(_latency(
                host.get('latency_us', 0.0),
                '%s (%s).latency_us must be a number >= 0, got %r',
                where, name, host.get('latency_us')))
            hsw.append(self.switch_index[sw])
            self.host_index[name] = len(self.host_names)
            self.host_names.append(name)
        self.host_switch = np.array(hsw, dtype=np.int64)
        self.host_cap = np.array(hcap, dtype=np.float64)    # Mbit/s, per dir
        self.host_lat = np.array(hlat, dtype=np.float64)

    def _distances(self, eu, ev):
        row, qd = _twin_quotient(len(self.switch_names), eu, ev)
        self._finish(row, qd)

    #: what :meth:`state` gives and :meth:`from_state` takes: the data as
    #: read, and the twin classes' hops it was computed from
    STATE = ('switch_names', 'host_names', 'edge_u', 'edge_v', 'edge_cap',
             'edge_lat', 'host_switch', 'host_cap', 'host_lat', 'twin_row',
             'twin_hops')

    def state(self):
        """The topology as plain arrays and lists (:attr:`STATE`), from
        which :meth:`from_state` rebuilds it without reading or searching
        (:mod:`.topocache` keeps it on disk)."""
        return {k: getattr(self, k) for k in self.STATE}

    @classmethod
    def from_state(cls, state, source='<data>'):
        """The topology of :meth:`state`: the same numbers."""
        t = cls.__new__(cls)
        t.source = source
        for k in cls.STATE:
            setattr(t, k, state[k])
        t.switch_index = dict(zip(t.switch_names,
                                  range(len(t.switch_names))))
        t.host_index = dict(zip(t.host_names, range(len(t.host_names))))
        t._finish(t.twin_row, t.twin_hops)
        return t

    def _finish(self, row, qd):
        """Distances and latencies from the twin classes' hops."""
        self.twin_row, self.twin_hops = row, qd
        n = len(self.switch_names)
        eu, ev = self.edge_u, self.edge_v
        self.dist = _expand(qd, row)
        np.fill_diagonal(self.dist, 0)
        if len(eu):
            self._lat_row, self._lat_table = _latencies(
                row, qd, self.edge_lat + 1e-9, eu, ev)
        else:
            self._lat_row, self._lat_table = np.zeros(n, np.int64), \
                np.full((1, 1), np.inf)
        self._lat = None
        # A host is only useful if its switch reaches the other hosts'.
        # The hops between the hosts' switches are those between their
        # classes; a class's own entry is 2 if it holds two of them, else 0.
        used = np.unique(self.host_switch)
        ucls, per = np.unique(row[used], return_counts=True)
        sub = qd[np.ix_(ucls, ucls)].copy()
        sub[np.arange(len(ucls)), np.arange(len(ucls))] = np.where(
            per > 1, 2, 0)
        if (sub >= UNREACHABLE).any():
            sub = self.dist[np.ix_(used, used)]
            i, j = np.argwhere(sub >= UNREACHABLE)[0]
            raise TopologyError('%s: switch %s cannot reach switch %s' % (
                self.source, self.switch_names[used[i]],
                self.switch_names[used[j]]))
        # the same set of values as the whole matrix
        finite = np.concatenate([qd[qd < UNREACHABLE], [0]])
        self.diameter = int(finite.max())
        # Longest host-to-host distance, the reference distance of the MIF.
        self.max_host_hops = int(remote_host_hops(sub, slice(None),
                                                  slice(None)).max())

    @classmethod
    def from_file(cls, path, default_link_latency_us=1.0):
        return cls(load_data_file(path), default_link_latency_us,
                   source=os.path.basename(path))

    # -- distances ---------------------------------------------------------
    def host_hops(self, a, b):
        """Hops between hosts *a* and *b* (indices).

        ``0`` when ``a == b``; otherwise the two host uplinks plus the
        shortest switch path: ``1 + dist(sw(a), sw(b)) + 1``.
        """
        return int(self.hops_from(a, np.array([b]))[0])

    def hops_from(self, a, others):
        """Vectorised :meth:`host_hops` from host *a* to host indices."""
        others = np.asarray(others)
        d = remote_host_hops(self.dist, self.host_switch[a],
                             self.host_switch[others])
        return np.where(others == a, 0, d)

    def host_latency(self, a, b):
        """Path latency in microseconds between hosts *a* and *b*."""
        if a == b:
            return 0.0
        sa, sb = self.host_switch[a], self.host_switch[b]
        return float(self.host_lat[a] + self.host_lat[b] +
                     self.lat_to(np.array([sb]))[sa, 0])

    # -- switch latencies ----------------------------------------------------
    def lat_to(self, targets):
        """Path latency (us) from every switch to each switch of
        *targets*: ``lat[:, targets]``, without building :attr:`lat`."""
        targets = np.asarray(targets, dtype=np.int64)
        row, table = self._lat_row, self._lat_table
        out = table[:, row[targets]][row]
        out[targets, np.arange(len(targets))] = 0.0
        return out

    @property
    def lat(self):
        """Switch-to-switch path latency in microseconds (switches x
        switches; built on first use, :meth:`lat_to` reads columns)."""
        if self._lat is None:
            row, table = self._lat_row, self._lat_table
            lat = table.take(row, axis=0).take(row, axis=1)
            np.fill_diagonal(lat, 0.0)
            self._lat = lat
        return self._lat

    def graph(self):
        """The topology as a :class:`networkx.Graph` (hosts and switches)."""
        g = nx.Graph()
        for name in self.switch_names:
            g.add_node(name, kind='switch')
        for k in range(0, len(self.edge_u), 2):
            g.add_edge(self.switch_names[self.edge_u[k]],
                       self.switch_names[self.edge_v[k]],
                       mbps=float(self.edge_cap[k]),
                       latency_us=float(self.edge_lat[k]))
        for i, name in enumerate(self.host_names):
            g.add_node(name, kind='host')
            g.add_edge(name, self.switch_names[self.host_switch[i]],
                       mbps=float(self.host_cap[i]),
                       latency_us=float(self.host_lat[i]))
        return g
