"""Traffic matrix between servers.

Plain data in the static traffic file format::

    flows: [{src: <server uuid>, dst: <server uuid>, mbps: 400}]

Rates are directed, in Mbit/s. Several entries for the same (src, dst) pair
add up. ``TrafficMatrix`` validates the data and indexes it by server so that
a request looks up one server's peers in O(peers).
"""

import itertools

import numpy as np

from nova_netaware.core.exceptions import TrafficError
from nova_netaware.core.readwrite import load_data_file

__all__ = ['TrafficMatrix', 'TrafficError']


_INF = float('inf')


class TrafficMatrix(object):

    def __init__(self, data, source='<data>', version=None):
        self.source = source
        self.version = version
        if not isinstance(data, dict) or not isinstance(
                data.get('flows', None), list):
            raise TrafficError('%s: traffic must be a mapping with a list '
                               '"flows"' % source)
        rates = {}
        get = rates.get
        for i, flow in enumerate(data['flows']):
            if not isinstance(flow, dict):
                raise TrafficError('%s must be a mapping: %r' % (
                    _where(source, i), flow))
            src, dst = flow.get('src'), flow.get('dst')
            if not src or not dst:
                raise TrafficError('%s needs src and dst: %r' % (
                    _where(source, i), flow))
            if src == dst:
                raise TrafficError('%s: src and dst are the same server %s'
                                   % (_where(source, i), src))
            try:
                mbps = float(flow.get('mbps'))
            except (TypeError, ValueError):
                raise TrafficError('%s.mbps must be a number, got %r' % (
                    _where(source, i), flow.get('mbps')))
            if not mbps >= 0 or mbps == _INF:
                raise TrafficError('%s.mbps must be >= 0 and finite, got %r'
                                   % (_where(source, i), flow.get('mbps')))
            key = (str(src), str(dst))
            rates[key] = get(key, 0.0) + mbps
        self._index(rates)

    def _index(self, rates):
        """Index the aggregated *rates* ``{(src, dst): mbps}``: the server
        list and the flow arrays, and per server its flows in :attr:`rates`
        order (for :meth:`peers`)."""
        self.rates = rates
        keys = list(rates)
        #: the servers in a fixed order (placement signatures use it): by
        #: their first flow, a flow's source before its destination
        self.server_list = list(dict.fromkeys(
            itertools.chain.from_iterable(keys)))
        self._pos = pos = {s: i for i, s in enumerate(self.server_list)}
        n = len(keys)
        src = np.fromiter(map(pos.__getitem__, (k[0] for k in keys)),
                          dtype=np.int64, count=n)
        dst = np.fromiter(map(pos.__getitem__, (k[1] for k in keys)),
                          dtype=np.int64, count=n)
        rate = np.fromiter(rates.values(), dtype=np.float64, count=n)
        self._arrays = (src, dst, rate)
        # flows out of / into each server, ascending (rates order)
        m = len(self.server_list)
        self._out = np.argsort(src, kind='stable')
        self._in = np.argsort(dst, kind='stable')
        self._out_ptr = np.r_[0, np.cumsum(np.bincount(src, minlength=m))]
        self._in_ptr = np.r_[0, np.cumsum(np.bincount(dst, minlength=m))]

    def flow_arrays(self):
        """``(src, dst, mbps)`` arrays of the flows, in :attr:`rates`
        order, with servers as positions in :attr:`server_list`."""
        return self._arrays

    def subset(self, pairs):
        """A matrix with only the flows of *pairs* ((src, dst) tuples)."""
        sub = TrafficMatrix.__new__(TrafficMatrix)
        sub.source, sub.version = self.source, None
        sub._index({pair: self.rates[pair] for pair in pairs})
        return sub

    @classmethod
    def from_file(cls, path, version=None):
        return cls(load_data_file(path, error=TrafficError), source=path,
                   version=version)

    @property
    def servers(self):
        """The servers with at least one flow (:attr:`server_list`)."""
        return self.server_list

    def peers(self, server):
        """``{peer: [out_mbps, in_mbps]}`` for *server* (empty if none),
        peers in the order of their first flow with it."""
        i = self._pos.get(server)
        if i is None:
            return {}
        flows = np.sort(np.concatenate([
            self._out[self._out_ptr[i]:self._out_ptr[i + 1]],
            self._in[self._in_ptr[i]:self._in_ptr[i + 1]]]))
        src, dst, rate = self._arrays
        names = self.server_list
        out = {}
        for s, d, r in zip(src[flows].tolist(), dst[flows].tolist(),
                           rate[flows].tolist()):
            if s == i:
                out.setdefault(names[d], [0.0, 0.0])[0] += r
            else:
                out.setdefault(names[s], [0.0, 0.0])[1] += r
        return out

    def incoming(self, server):
        """Total rate *to* ``server`` in Mbit/s (the VM selection key)."""
        return sum(v[1] for v in self.peers(server).values())

    def __len__(self):
        return len(self.rates)


def _where(source, i):
    return '%s: flows[%d]' % (source, i)
