"""One scheduling decision: constraints and MIF for every candidate host.

This is the single entry point that the Nova filter, the Nova weigher, the
``nova-netaware`` command and the rebalance advisor share. Inputs are plain
data (:mod:`.request`): a :class:`Topology`, a :class:`TrafficMatrix`, a
placement ``{server uuid: host}`` and the candidates. The engine only
orchestrates and caches: the per-request numbers are the typed
:class:`~.state.RequestState`, the verdicts come from :mod:`.constraints`
and the MIF from :mod:`.impact`. A request costs
O(hosts + peers + links x twin classes of the peer switches): the paths to
the peers are walked once per class of switches with the same neighbours
(:mod:`.peerpaths`), i.e. at most once per pod on a fat-tree and once on a
leaf-spine, and once per peer switch only on fabrics without twins. The
loads of the whole traffic matrix are computed once per (traffic,
placement) and cached.
"""

import numpy as np

from nova_netaware.core import constraints
from nova_netaware.core import impact
from nova_netaware.core import loads as loads_mod
from nova_netaware.core.request import Candidate  # noqa: F401
from nova_netaware.core.request import Evaluation
from nova_netaware.core.request import Params  # noqa: F401
from nova_netaware.core.request import Server  # noqa: F401
from nova_netaware.core.routing import Fabric
from nova_netaware.core.state import request_state

__all__ = ['Engine', 'Evaluation', 'Params', 'Server', 'Candidate']


class Engine(object):
    """Holds a topology's routing structures and a cache of base loads;
    evaluates requests."""

    def __init__(self, topology):
        self.topo = topology
        self.fabric = Fabric(topology)
        self._base_traffic = None
        self._base_key = None
        self._base_hosts = None
        self._base = None

    # -- base loads, cached per (traffic, placement) ---------------------
    #: a placement that differs in at most this share of the servers is
    #: updated incrementally (re-routing only their flows)
    INCREMENTAL_SHARE = 0.01

    def invalidate(self):
        """Forget the cached loads (the next request recomputes them)."""
        self._base_traffic = self._base_hosts = self._base = None

    def base_loads(self, traffic, placement):
        """Loads of the whole traffic matrix for *placement*.

        Cached for the traffic matrix (the cache holds the matrix itself:
        an ``id()`` alone can be reused by a new matrix once the old one is
        freed) and placement. When only a few servers moved since the
        cached placement — the usual case after a migration — only their
        flows are re-routed.
        """
        servers = traffic.server_list
        hosts = tuple(map(placement.get, servers))
        same_traffic = (traffic is self._base_traffic and
                        traffic.version == self._base_key)
        if same_traffic and hosts == self._base_hosts:
            return self._base
        if same_traffic:
            changed = [s for s, a, b in zip(servers, self._base_hosts, hosts)
                       if a != b]
            if len(changed) <= max(16, len(servers) *
                                   self.INCREMENTAL_SHARE):
                pairs = set()
                for s in changed:
                    for p in traffic.peers(s):
                        for pair in ((s, p), (p, s)):
                            if pair in traffic.rates:
                                pairs.add(pair)
                old_pl = dict(zip(servers, self._base_hosts))
                sub = traffic.subset(pairs)
                old = loads_mod.route_flows(self.fabric, loads_mod.
                                            placement_flows(self.topo, sub,
                                                            old_pl))
                new = loads_mod.route_flows(self.fabric, loads_mod.
                                            placement_flows(self.topo, sub,
                                                            placement))
                b = self._base
                self._base = loads_mod.Loads(
                    np.maximum(b.up - old.up + new.up, 0.0),
                    np.maximum(b.down - old.down + new.down, 0.0),
                    np.maximum(b.links - old.links + new.links, 0.0))
                self._base_hosts = hosts
                return self._base
        self._base = loads_mod.route_placement(self.fabric, traffic, hosts)
        self._base_traffic = traffic
        self._base_key = traffic.version
        self._base_hosts = hosts
        return self._base

    # -- one request -------------------------------------------------------
    def also_loads(self, traffic, placement, also_at, exclude=None):
        """Loads of the flows of the servers of *also_at*
        (``{uuid: host}``) as if each were also at that host.

        A live migration in flight loads its source and its destination
        (:mod:`.moves`): *placement* has it at the destination, these are
        its flows from the source, added on top. Flows with *exclude* (the
        server being scheduled, whose own flows the request state moves)
        are left out.
        """
        pairs = set()
        for s in also_at:
            for p in traffic.peers(s):
                if p == exclude:
                    continue
                for pair in ((s, p), (p, s)):
                    if pair in traffic.rates:
                        pairs.add(pair)
        pl = dict(placement)
        pl.update(also_at)
        return loads_mod.route_flows(self.fabric, loads_mod.placement_flows(
            self.topo, traffic.subset(pairs), pl))

    def evaluate(self, traffic, placement, server, candidates, params,
                 also_at=None):
        """Verdicts and MIF of moving (or booting) *server* to each of
        *candidates*: an :class:`Evaluation`.

        *also_at* (``{uuid: host}``): servers whose flows also load that
        host, on top of *placement* (live migrations in flight,
        :meth:`also_loads`).
        """
        base = self.base_loads(traffic, placement)
        if also_at:
            x = self.also_loads(traffic, placement, also_at, server.uuid)
            base = loads_mod.Loads(base.up + x.up, base.down + x.down,
                                   base.links + x.links)
        state = request_state(self.topo, self.fabric, base, traffic,
                              placement, server, candidates, params)
        ev = Evaluation(state.hosts)
        ev.notes = state.notes
        ev.passed, ev.reasons = constraints.check(state)
        mig = state.migration
        if mig.precopy is not None:
            ev.bandwidth, ev.lam = mig.bandwidth, mig.precopy['lam']
            ev.migration_time_s = mig.precopy['time_s']
        t = impact.terms(state)
        ev.comm, ev.comm_n = t.comm, t.comm_n
        ev.migration, ev.migration_n = t.migration, t.migration_n
        ev.congestion, ev.mif, ev.volume_mb = t.congestion, t.mif, t.volume_mb
        return ev
