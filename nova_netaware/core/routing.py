"""Routing of traffic over the switch fabric, vectorised over destinations.

Routing model: shortest paths in hops with equal-cost multi-path (ECMP). For
link *loads* a switch splits the traffic it forwards towards a destination
evenly over its next hops on shortest paths (the fluid ECMP model). For
*checks* on a flow (does every link carry it, how busy is the busiest), a flow
may take any shortest path, as per-flow ECMP hashing does, so every link on
any shortest path counts.

Both walks run level by level over the shortest-path DAG towards each
destination, for all destinations of a request at once, on sparse (link,
destination) entries (:class:`Dag`). Nothing here knows about Nova.
"""

import numpy as np
from nova_netaware.core.topology import UNREACHABLE


class Fabric(object):
    """Index structures over a :class:`Topology`'s directed fabric links."""

    def __init__(self, topo):
        self.topo = topo
        n = len(topo.switch_names)
        order = np.argsort(topo.edge_u, kind='stable')
        self.eu = topo.edge_u[order]
        self.ev = topo.edge_v[order]
        self.cap = topo.edge_cap[order]
        m = len(self.eu)
        self.n = n
        self.m = m
        # links by (tail, head), for :meth:`link`; tails' first links
        key = self.eu * n + self.ev
        self._key_order = np.argsort(key, kind='stable')
        self._keys = key[self._key_order]
        self._first = np.searchsorted(self.eu, np.arange(n + 1))
        # index of the reverse direction of each link
        self.rev = self.link(self.ev, self.eu)
        self.twin = self._twin_classes()

    def neighbours(self, s):
        """Switches linked to switch *s*."""
        return self.ev[self._first[s]:self._first[s + 1]]

    def link(self, u, v):
        """Positions of the directed links u -> v (arrays; must exist)."""
        key = np.asarray(u, dtype=np.int64) * self.n + np.asarray(v)
        return self._key_order[np.searchsorted(self._keys, key)]

    def _twin_classes(self):
        """Class per switch: switches with the same non-empty set of
        neighbours share one (they are twins: every other switch is
        equally far from each of them)."""
        cls = np.arange(self.n)
        seen = {}
        for s in range(self.n):
            nb = self.neighbours(s)
            if len(nb):
                cls[s] = seen.setdefault(tuple(np.sort(nb).tolist()), s)
        return cls

    def twin_groups(self, targets):
        """Positions in *targets* grouped by twin class, each group in
        ascending order, groups by their first position."""
        targets = np.asarray(targets, dtype=np.int64)
        cls = self.twin[targets]
        _, first, inv = np.unique(cls, return_index=True, return_inverse=True)
        order = np.argsort(inv, kind='stable')
        bounds = np.cumsum(np.bincount(inv))[:-1]
        groups = np.split(order, bounds)
        return [groups[i] for i in np.argsort(first, kind='stable')]

    def dag(self, targets):
        """The shortest-path DAG towards *targets* (see :class:`Dag`)."""
        return Dag(self, np.asarray(targets, dtype=np.int64))

    def route(self, demand, targets):
        """Fluid ECMP loads of a demand matrix.

        :param demand: array (switches x len(targets)), Mbit/s from each
            switch to each target switch.
        :returns: load per directed link (Mbit/s), in this Fabric's order.
        """
        if not self.m or not len(targets):
            return np.zeros(self.m)
        return self.dag(targets).route(demand)

    def on_paths_from(self, source, targets):
        """Mask (links x targets): link on a shortest path source -> target.

        Use the same mask, indexed by :attr:`rev`-permuted values, for the
        paths target -> source.
        """
        dist = self.topo.dist
        targets = np.asarray(targets, dtype=np.int64)
        dst = dist[source, targets][None, :]
        return ((dist[source, self.eu][:, None] + 1 +
                 dist[:, targets][self.ev]) == dst) & (dst < UNREACHABLE)


class Dag(object):
    """Links on shortest paths towards each target, as sparse entries.

    An entry ``(e, c)`` says that link *e* lies on a shortest path towards
    ``targets[c]``; entries are grouped by the distance of the link's tail
    to the target (its level), so that walks need no (links x targets)
    dense arrays beyond construction. Build one per request and reuse it.
    """

    #: entries handled at once: bounds the temporaries of a walk
    CHUNK = 1 << 20

    def __init__(self, fabric, targets):
        self.fabric = fabric
        self.targets = targets
        self.k = k = len(targets)
        n, m = fabric.n, fabric.m
        dist_t = fabric.topo.dist[:, targets]          # switches x targets
        self.dist_t = dist_t
        dt = np.ascontiguousarray(dist_t.T)            # targets x switches
        idx_t = np.int32 if n * max(k, 1) < 2 ** 31 else np.int64
        # Entries, target block by target block (bounded temporaries).
        # nonzero walks (target, link) in order and links are sorted by
        # tail switch, so entries come sorted by cell = target * n + tail.
        es, cs, lvs = [], [], []
        step = max(1, (4 << 20) // max(m, 1))
        for b0 in range(0, k, step):
            du = dt[b0:b0 + step][:, fabric.eu]
            on = (dt[b0:b0 + step][:, fabric.ev] == du - 1) & \
                (du < UNREACHABLE)
            cb, eb = np.nonzero(on)
            lvs.append(du[cb, eb].astype(np.int16))
            es.append(eb.astype(idx_t))
            cs.append((cb + b0).astype(idx_t))
        lv = np.concatenate(lvs) if lvs else np.zeros(0, np.int16)
        # Group by level (stable: cells stay sorted within a level).
        order = np.argsort(lv, kind='stable')
        lv = lv[order]
        self.e = np.concatenate(es)[order] if es else np.zeros(0, idx_t)
        self.c = np.concatenate(cs)[order] if cs else np.zeros(0, idx_t)
        del es, cs, lvs, order
        self._index(lv)

    def _index(self, lv):
        """Cells of the entries and their level bounds."""
        fabric, n, k = self.fabric, self.fabric.n, self.k
        idx_t = self.e.dtype
        self.cell_tail = (self.c * n + fabric.eu[self.e]).astype(idx_t)
        self.cell_head = (self.c * n + fabric.ev[self.e]).astype(idx_t)
        top = int(lv[-1]) if len(lv) else 0
        bounds = np.searchsorted(lv, np.arange(1, top + 2))
        # per level: [lo, hi) and the first entry of each cell (relative)
        self.levels = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            cells = self.cell_tail[lo:hi]
            first = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
            self.levels.append((int(lo), int(hi), first))
        self.nh = np.bincount(self.cell_tail, minlength=n * k)

    def _chunks(self, lo, hi, first):
        """Split [lo, hi) into pieces of about CHUNK entries, on cell
        boundaries: yields (lo, hi, first entries relative to lo)."""
        g = 0
        while g < len(first):
            start = first[g]
            g_end = int(np.searchsorted(first, start + self.CHUNK,
                                        side='left'))
            g_end = max(g_end, g + 1)
            end = first[g_end] if g_end < len(first) else hi - lo
            yield lo + start, lo + end, first[g:g_end] - start
            g = g_end

    def route(self, demand):
        """Fluid ECMP loads (per link) of ``demand`` (switches x targets)."""
        k, n = self.k, self.fabric.n
        x = np.ascontiguousarray(
            np.asarray(demand, dtype=np.float64).reshape(n, k).T).reshape(-1)
        return self.route_cells(x)

    def route_cells(self, x, share=None):
        """:meth:`route` of ``x`` (flat, cell = column * switches + switch;
        updated in place). ``share(lo, hi, x_tail, next_hops)`` may replace
        the even split ``x_tail / next_hops`` of entries [lo, hi)."""
        fab, k, n = self.fabric, self.k, self.fabric.n
        load = np.zeros(fab.m)
        nh = np.maximum(self.nh, 1)
        for lo, hi, _ in reversed(self.levels):
            for a in range(lo, hi, self.CHUNK):
                b = min(hi, a + self.CHUNK)
                tail = self.cell_tail[a:b]
                if share is None:
                    sh = x[tail] / nh[tail]
                else:
                    sh = share(a, b, x[tail], nh[tail])
                load += np.bincount(self.e[a:b], sh, minlength=fab.m)
                x += np.bincount(self.cell_head[a:b], sh, minlength=n * k)
        return load

    def path_max(self, values):
        """Largest value of a link on any shortest path towards each target.

        :param values: ``values(e, c)`` gives the value of link ``e`` for
            target column ``c`` (arrays of entries); it may return an array
            of shape (entries, K) to walk K value sets at once.
        :returns: array (switches x targets[, K]), ``-inf`` at the target
            itself and where no path exists.
        """
        probe = np.asarray(values(np.zeros(0, dtype=np.int64),
                                  np.zeros(0, dtype=np.int64)))
        w = self.walk_max(lambda a, b: values(self.e[a:b], self.c[a:b]),
                          probe.shape[1:])
        return np.swapaxes(w, 0, 1)

    def walk_max(self, values, shape=()):
        """:meth:`path_max` with ``values(lo, hi)`` giving the values of
        entries [lo, hi) (shape (hi - lo,) + shape); returns an array
        (targets x switches) + shape."""
        k, n = self.k, self.fabric.n
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        w = np.full((k * n,) + shape, -np.inf)
        for lo, hi, first in self.levels:
            for a, b, rel in self._chunks(lo, hi, first):
                val = np.asarray(values(a, b), dtype=np.float64)
                cand = np.maximum(val, w[self.cell_head[a:b]])
                red = np.maximum.reduceat(cand, rel, axis=0)
                cells = self.cell_tail[a:b][rel]
                w[cells] = np.maximum(w[cells], red)
        return w.reshape((k, n) + shape)
