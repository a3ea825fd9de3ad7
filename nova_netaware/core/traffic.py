"""Traffic matrix between servers.

Plain data in the static traffic file format::

    flows: [{src: <server uuid>, dst: <server uuid>, mbps: 400}]

Rates are directed, in Mbit/s. Several entries for the same (src, dst) pair
add up. ``TrafficMatrix`` validates the data and indexes it by server so that
a request looks up one server's peers in O(peers).
"""

import collections

import numpy as np

from nova_netaware.core.exceptions import TrafficError
from nova_netaware.core.readwrite import load_data_file

__all__ = ['TrafficMatrix', 'TrafficError']


class TrafficMatrix(object):

    def __init__(self, data, source='<data>', version=None):
        self.source = source
        self.version = version
        if not isinstance(data, dict) or not isinstance(
                data.get('flows', None), list):
            raise TrafficError('%s: traffic must be a mapping with a list '
                               '"flows"' % source)
        rates = collections.defaultdict(float)
        for i, flow in enumerate(data['flows']):
            where = '%s: flows[%d]' % (source, i)
            if not isinstance(flow, dict):
                raise TrafficError('%s must be a mapping: %r' % (where, flow))
            src, dst = flow.get('src'), flow.get('dst')
            if not src or not dst:
                raise TrafficError('%s needs src and dst: %r' % (where, flow))
            if src == dst:
                raise TrafficError('%s: src and dst are the same server %s'
                                   % (where, src))
            try:
                mbps = float(flow.get('mbps'))
            except (TypeError, ValueError):
                raise TrafficError('%s.mbps must be a number, got %r' % (
                    where, flow.get('mbps')))
            if not mbps >= 0 or mbps == float('inf'):
                raise TrafficError('%s.mbps must be >= 0 and finite, got %r'
                                   % (where, flow.get('mbps')))
            rates[(str(src), str(dst))] += mbps
        self.rates = dict(rates)
        # server -> {peer: [out_mbps, in_mbps]}
        peers = collections.defaultdict(dict)
        for (src, dst), r in self.rates.items():
            peers[src].setdefault(dst, [0.0, 0.0])[0] += r
            peers[dst].setdefault(src, [0.0, 0.0])[1] += r
        self._peers = dict(peers)
        #: the servers in a fixed order (placement signatures use it)
        self.server_list = list(self._peers)
        self._arrays = None

    def flow_arrays(self):
        """``(src, dst, mbps)`` arrays of the flows, in :attr:`rates`
        order, with servers as positions in :attr:`server_list`
        (computed once)."""
        if self._arrays is None:
            pos = {s: i for i, s in enumerate(self.server_list)}
            keys = list(self.rates)
            self._arrays = (
                np.array([pos[s] for s, _ in keys], dtype=np.int64),
                np.array([pos[d] for _, d in keys], dtype=np.int64),
                np.array(list(self.rates.values()), dtype=np.float64))
        return self._arrays

    def subset(self, pairs):
        """A matrix with only the flows of *pairs* ((src, dst) tuples)."""
        sub = TrafficMatrix({'flows': []}, source=self.source)
        sub.rates = {pair: self.rates[pair] for pair in pairs}
        sub.server_list = list(dict.fromkeys(
            s for pair in sub.rates for s in pair))
        return sub

    @classmethod
    def from_file(cls, path, version=None):
        return cls(load_data_file(path, error=TrafficError), source=path,
                   version=version)

    @property
    def servers(self):
        return self._peers.keys()

    def peers(self, server):
        """``{peer: (out_mbps, in_mbps)}`` for *server* (empty if none)."""
        return self._peers.get(server, {})

    def incoming(self, server):
        """Total rate *to* ``server`` in Mbit/s (the VM selection key)."""
        return sum(v[1] for v in self.peers(server).values())

    def __len__(self):
        return len(self.rates)
