"""Routing of traffic over the switch fabric, vectorised over destinations.

Routing model: shortest paths in hops with equal-cost multi-path (ECMP). For
link *loads* a switch splits the traffic it forwards towards a destination
evenly over its next hops on shortest paths (the fluid ECMP model). For
*checks* on a flow (does every link carry it, how busy is the busiest), a flow
may take any shortest path, as per-flow ECMP hashing does, so every link on
any shortest path counts.

Both walks run level by level over the shortest-path DAG towards each
destination, for all destinations of a request at once, with numpy arrays of
shape (directed links x destinations). Nothing here knows about Nova.
"""

import numpy as np
from scipy.sparse import csr_matrix

from nova_netaware.core.topology import UNREACHABLE


class Fabric(object):
    """Index structures over a :class:`Topology`'s directed fabric links."""

    def __init__(self, topo):
        self.topo = topo
        n = len(topo.switch_names)
        order = np.argsort(topo.edge_u, kind='stable')
        self.order = order
        self.eu = topo.edge_u[order]
        self.ev = topo.edge_v[order]
        self.cap = topo.edge_cap[order]
        m = len(self.eu)
        self.n = n
        self.m = m
        pos = {(int(u), int(v)): k for k, (u, v) in enumerate(
            zip(self.eu, self.ev))}
        # index of the reverse direction of each link
        self.rev = np.array([pos[(int(v), int(u))] for u, v in zip(
            self.eu, self.ev)], dtype=np.int64)
        if m:
            self.nodes, self.starts = np.unique(self.eu, return_index=True)
        else:
            self.nodes = self.starts = np.zeros(0, dtype=np.int64)
        # scatter matrix: switch v <- link e (v = head of e)
        self.into = csr_matrix((np.ones(m), (self.ev, np.arange(m))),
                               shape=(n, m))

    def _dag(self, targets):
        """Levels of each link on the shortest-path DAG towards targets.

        Returns ``lvl`` (links x targets): the hop distance of the link's tail
        to the target when the link lies on a shortest path to it, else 0.
        """
        dist = self.topo.dist
        du = dist[self.eu][:, targets]
        dv = dist[self.ev][:, targets]
        on = (dv == du - 1) & (du < UNREACHABLE)
        return np.where(on, du, 0)

    def route(self, demand, targets):
        """Fluid ECMP loads of a demand matrix.

        :param demand: array (switches x len(targets)), Mbit/s from each
            switch to each target switch.
        :returns: load per directed link (Mbit/s), in this Fabric's order.
        """
        load = np.zeros(self.m)
        if not self.m or not len(targets):
            return load
        lvl = self._dag(targets)
        on = lvl > 0
        nh = np.add.reduceat(on.astype(np.float64), self.starts, axis=0)
        nhs = np.ones((self.n, len(targets)))
        nhs[self.nodes] = np.maximum(nh, 1.0)
        x = np.array(demand, dtype=np.float64)
        for level in range(int(lvl.max()), 0, -1):
            mask = lvl == level
            share = np.where(mask, (x / nhs)[self.eu], 0.0)
            load += share.sum(axis=1)
            x = x + self.into @ share
        return load

    def on_paths_from(self, source, targets):
        """Mask (links x targets): link on a shortest path source -> target.

        Use the same mask, indexed by :attr:`rev`-permuted values, for the
        paths target -> source.
        """
        dist = self.topo.dist
        dst = dist[source, targets][None, :]
        return ((dist[source, self.eu][:, None] + 1 +
                 dist[self.ev][:, targets]) == dst) & (dst < UNREACHABLE)

    def path_max(self, values, targets):
        """Largest link value on any shortest path from each switch.

        :param values: array (links x len(targets)) or (links,), in this
            Fabric's order.
        :returns: ``W`` (switches x len(targets)); ``W[s, j]`` is the
            largest value of a link on a shortest path from switch *s* to
            ``targets[j]``; ``-inf`` at the target itself and where no path
            exists.
        """
        k = len(targets)
        w = np.full((self.n, k), -np.inf)
        if not self.m or not k:
            return w
        vals = np.broadcast_to(np.asarray(values, dtype=np.float64).reshape(
            self.m, -1), (self.m, k))
        lvl = self._dag(targets)
        for level in range(1, int(lvl.max()) + 1):
            mask = lvl == level
            cand = np.where(mask, np.maximum(vals, w[self.ev]), -np.inf)
            red = np.maximum.reduceat(cand, self.starts, axis=0)
            w[self.nodes] = np.maximum(w[self.nodes], red)
        return w
