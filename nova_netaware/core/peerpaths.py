"""Shortest-path walks towards groups of twin switches (exact shortcut).

Two switches are *twins* when they have the same set of neighbours (the
edge switches of a fat-tree pod, the leaves of a leaf-spine). Every other
switch is equally far from both, and its next hops towards them are the
same except for the last hop, so the shortest-path DAGs towards the target
switches of one twin class coincide but for their last links. One walk over
that shared DAG, with the largest per-target value on the shared links,
gives the exact maximum over the class's targets; the last links and the
paths between two members of the class (``x -> neighbour -> t``) are added
explicitly. A request then walks one DAG per twin class of its peer
switches instead of one per peer switch. Topologies without twins fall back
to one DAG per target, i.e. the plain walk of :class:`routing.Dag`.

Exactness relies on ``link_value`` being non-decreasing in the rates it is
given: ``max_t f(e, r_t) = f(e, max_t r_t)`` holds bit for bit then, since
IEEE rounding is monotone.
"""

import numpy as np
from scipy.sparse import csr_matrix

from nova_netaware.core.routing import Dag
from nova_netaware.core.topology import UNREACHABLE


def group_dag(fabric, targets, groups, src=None):
    """A :class:`Dag` whose column *c* is the union of the DAGs towards the
    targets ``targets[groups[c]]`` (twins), without the links leaving one
    of those targets; with *src*, only the links on a shortest path from
    *src*. ``dag.j[entry]`` is the target position of a last link (``-1``
    on a shared link); ``dag.reps[c]`` a target of column c."""
    n, m, dist = fabric.n, fabric.m, fabric.topo.dist
    eu, ev = fabric.eu, fabric.ev
    reps = np.array([targets[g[0]] for g in groups], dtype=np.int64)
    k = len(groups)
    gcol = np.repeat(np.arange(k), [len(g) for g in groups])
    gpos = np.concatenate(groups).astype(np.int64)
    member = np.zeros((k, n), dtype=bool)
    member[gcol, targets[gpos]] = True
    dt = np.ascontiguousarray(dist[:, reps].T)          # groups x switches
    if src is None:
        du = dt[:, eu]
        on = (dt[:, ev] == du - 1) & (du < UNREACHABLE) & ~member[:, eu]
        # (group, link) order: entries sorted by cell = group * n + tail
        c, e = np.nonzero(on)
        lv = du[c, e]
        del on, du
    else:
        c, e, lv = _from_src(fabric, dt, member, src, reps)
    del member, dt
    last = lv == 1
    # one last link w -> t per target t of the group, in cell order
    gsize = np.bincount(gcol, minlength=k)
    gstart = np.r_[0, np.cumsum(gsize)[:-1]]
    lc = c[last]
    cnt = gsize[lc]
    lc = np.repeat(lc, cnt)
    off = np.arange(len(lc)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    lj = gpos[gstart[lc] + off]
    le = fabric.link(np.repeat(eu[e[last]], cnt), targets[lj])
    rest = ~last
    order = np.argsort(lv[rest].astype(np.int16), kind='stable')
    idx_t = np.int32 if n * max(k, 1) < 2 ** 31 and m < 2 ** 31 \
        else np.int64
    dag = Dag.__new__(Dag)
    dag.fabric, dag.targets, dag.k, dag.dist_t = fabric, reps, k, None
    dag.e = np.concatenate([le, e[rest][order]]).astype(idx_t)
    dag.c = np.concatenate([lc, c[rest][order]]).astype(idx_t)
    dag.j = np.concatenate([lj, np.full(len(order), -1, np.int64)])
    dag._index(np.concatenate([np.ones(len(le), np.int64),
                               lv[rest][order]]))
    dag.reps = reps
    dag.CHUNK = 1 << 16         # small temporaries in the walks
    return dag


def _from_src(fabric, dt, member, src, reps):
    """The entries ``(c, e, level)`` of :func:`group_dag` with *src*, in
    the same (column, link) order: the links leaving a switch on a shortest
    path from *src* to the column's representative, towards it. Only the
    links of those switches are looked at (the fabric's links are sorted
    by tail), not every link of every column."""
    dist, eu, ev = fabric.topo.dist, fabric.eu, fabric.ev
    dsr = dist[src, reps][:, None]
    onnode = ((dist[src][None, :] + dt) == dsr) & (dt < UNREACHABLE) & \
        (dt > 0) & ~member
    cn, u = np.nonzero(onnode)
    first = fabric._first
    cnt = first[u + 1] - first[u]
    cc = np.repeat(cn, cnt)
    e = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt) + \
        np.repeat(first[u], cnt)
    du = dt[cc, eu[e]]
    keep = dt[cc, ev[e]] == du - 1
    return cc[keep], e[keep], du[keep]


class PeerPaths(object):
    """Per switch, the largest link value on any shortest path to any
    target (``best``), and the same leaving out the links on a shortest
    path from *src* to that target (``check``; equal to ``best`` without a
    source). ``link_value(e, r_out, r_in)`` must be non-decreasing in both
    rates (``-inf`` for "no traffic"); it may have an ``all_links(r_out,
    r_in)`` attribute giving its values for every link (in link order)
    with one rate pair."""

    #: target columns walked at once: bounds the entries held in memory
    BLOCK_LINKS = 1 << 18

    def __init__(self, fabric, targets, r_out, r_in, link_value, src=None):
        self.fabric = fabric
        self.targets = targets = np.asarray(targets, dtype=np.int64)
        self.r_out = np.asarray(r_out, dtype=np.float64)
        self.r_in = np.asarray(r_in, dtype=np.float64)
        self.value = link_value
        self.src = src
        self.groups = fabric.twin_groups(targets)
        n = fabric.n
        if src is not None:
            self._src_eu = fabric.topo.dist[src, fabric.eu]
        self.w = np.full((len(self.groups), n, 2), -np.inf)
        step = max(1, self.BLOCK_LINKS // max(fabric.m, 1))
        for g0 in range(0, len(self.groups), step):
            self._block(g0, self.groups[g0:g0 + step])
        self.best = self.w[:, :, 0].max(axis=0)
        self.check = self.w[:, :, 1].max(axis=0)
        self._worst = {}

    def _used(self, e, tgt):
        """Is link e on a shortest path src -> tgt (elementwise)?"""
        if self.src is None:
            return np.zeros(len(e), dtype=bool)
        dist, fab = self.fabric.topo.dist, self.fabric
        dst = dist[self.src, tgt]
        return ((dist[self.src, fab.eu[e]] + 1 + dist[fab.ev[e], tgt])
                == dst) & (dst < UNREACHABLE)

    def _pair(self, e, ro, ri, tgt):
        val = np.asarray(self.value(e, ro, ri), dtype=np.float64)
        return val, np.where(self._used(e, tgt), -np.inf, val)

    def _block(self, g0, groups):
        fab, tg = self.fabric, self.targets
        dag = group_dag(fab, tg, groups)
        g_out = np.array([self.r_out[g].max() for g in groups])
        g_in = np.array([self.r_in[g].max() for g in groups])
        # The shared links' values depend on the link and the column only:
        # computed once per (column, link), densely, a few columns at a
        # time (bounded temporaries), then gathered.
        m = fab.m
        shared = np.empty((len(groups), m, 2))
        links = np.arange(m)
        dist = fab.topo.dist
        every = getattr(self.value, 'all_links', None)
        for c in range(len(groups)):
            if every is not None:
                val = np.array(every(g_out[c], g_in[c]), dtype=np.float64)
            else:
                val = np.asarray(self.value(links, np.full(m, g_out[c]),
                                            np.full(m, g_in[c])),
                                 dtype=np.float64)
            shared[c, :, 0] = val
            if self.src is not None:
                # :meth:`_used` for every link, with the column's
                # representative as the target (the same distances)
                dst = dist[self.src, dag.reps[c]]
                if dst < UNREACHABLE:
                    used = (self._src_eu + 1 + dist[dag.reps[c]][fab.ev]
                            == dst)
                    val[used] = -np.inf
            shared[c, :, 1] = val
        shared = shared.reshape(-1, 2)
        del links

        def values(a, b):
            e, c, j = dag.e[a:b], dag.c[a:b], dag.j[a:b]
            if not (j >= 0).any():
                return shared[c.astype(np.int64) * m + e]
            lastj = np.maximum(j, 0)
            ro = np.where(j >= 0, self.r_out[lastj], g_out[c])
            ri = np.where(j >= 0, self.r_in[lastj], g_in[c])
            tgt = np.where(j >= 0, tg[lastj], dag.reps[c])
            return np.stack(self._pair(e, ro, ri, tgt), axis=1)
        w = dag.walk_max(values, 2)
        self.w[g0:g0 + len(groups)] = w
        for c, g in enumerate(groups):
            self._members(g0 + c, g)

    def _members(self, col, g):
        """Paths x -> neighbour -> t between two targets of a twin class."""
        fab, tg = self.fabric, self.targets
        ts = tg[g]
        nb = fab.neighbours(ts[0])
        if not len(nb):
            return
        # last links w -> t, per target: (targets, 2)
        e_wt = fab.link(np.repeat(nb, len(g)), np.tile(ts, len(nb)))
        jj = np.tile(g, len(nb))
        lv = np.stack(self._pair(e_wt, self.r_out[jj], self.r_in[jj],
                                 tg[jj]), axis=1)
        last = lv.reshape(len(nb), len(g), 2).max(axis=0)
        # first links x -> w with the rates of the other targets
        ro, ri = _max_others(self.r_out[g]), _max_others(self.r_in[g])
        e_xw = fab.link(np.repeat(ts, len(nb)), np.tile(nb, len(g)))
        rep = np.repeat(np.arange(len(g)), len(nb))
        # x -> w is on a path from src to another target iff x is src
        val = np.asarray(self.value(e_xw, ro[rep], ri[rep]),
                         dtype=np.float64)
        first = np.stack([val, np.where(ts[rep] == self.src, -np.inf, val)],
                         axis=1)
        first = first.reshape(len(g), len(nb), 2).max(axis=1)
        self.w[col, ts] = np.maximum(first, _max_others_2d(last))

    def worst(self, s):
        """Position of the first target whose path from switch *s* holds
        the largest checked value (``np.argmax`` of the per-target row)."""
        if s not in self._worst:
            self._worst[s] = self._find_worst(s)
        return self._worst[s]

    def _find_worst(self, s):
        fab, dist = self.fabric, self.fabric.topo.dist
        col = 1 if self.src is not None else 0
        top = self.w[:, s, col].max()
        cand = sorted(int(j) for gi, g in enumerate(self.groups)
                      if self.w[gi, s, col] == top for j in g)
        for j in cand:
            t = int(self.targets[j])
            if t == s or dist[s, t] >= UNREACHABLE:
                continue
            on = np.flatnonzero(dist[s, fab.eu] + 1 + dist[fab.ev, t] ==
                                dist[s, t])
            k = len(on)
            pair = self._pair(on, np.full(k, self.r_out[j]),
                              np.full(k, self.r_in[j]), np.full(k, t))
            if k and pair[col].max() == top:
                return j
        return 0


def _max_others(r):
    """``out[i] = max(r[j] for j != i)`` (``-inf`` for a single value)."""
    r = np.asarray(r, dtype=np.float64)
    return _max_others_2d(r[:, None])[:, 0]


def _max_others_2d(a):
    """Column-wise :func:`_max_others` of a (k, d) array."""
    if len(a) < 2:
        return np.full(a.shape, -np.inf)
    order = np.argsort(-a, axis=0, kind='stable')
    cols = np.arange(a.shape[1])
    top1 = a[order[0], cols]
    top2 = a[order[1], cols]
    out = np.broadcast_to(top1, a.shape).copy()
    out[order[0], cols] = top2
    return out


def route_from(fabric, src, targets, rates):
    """Fluid ECMP loads (per link) of ``rates[j]`` from switch *src* to
    ``targets[j]``: one walk per twin class of the targets; on a class's
    last links the traffic splits in proportion to the targets' rates."""
    targets = np.asarray(targets, dtype=np.int64)
    rates = np.asarray(rates, dtype=np.float64)
    load = np.zeros(fabric.m)
    groups = [g for g in fabric.twin_groups(targets)
              if rates[g].sum() > 0]
    if not groups or not fabric.m:
        return load
    n = fabric.n
    step = max(1, PeerPaths.BLOCK_LINKS // max(fabric.m, 1))
    for g0 in range(0, len(groups), step):
        block = groups[g0:g0 + step]
        inner = [g for g in block if src in targets[g]]
        outer = [g for g in block if src not in targets[g]]
        for g in inner:
            _route_within(fabric, src, targets[g], rates[g], load)
        if not outer:
            continue
        dag = group_dag(fabric, targets, outer, src)
        tot = np.array([rates[g].sum() for g in outer])
        x = np.zeros(len(outer) * n)
        x[np.arange(len(outer)) * n + src] = tot

        def share(a, b, xt, nh):
            # shared links: the even ECMP split; last links: each target
            # takes its part of what reaches the neighbour
            j = dag.j[a:b]
            return np.where(j >= 0, xt * (rates[np.maximum(j, 0)] /
                                          tot[dag.c[a:b]]), xt / nh)
        load += dag.route_cells(x, share)
    return load


def _route_within(fabric, src, ts, rs, load):
    """Traffic from *src* to its twins *ts*: over every common neighbour."""
    nb = fabric.neighbours(src)
    other = ts != src
    if not len(nb) or not other.any():
        return
    ts, rs = ts[other], rs[other]
    k = len(nb)
    load[fabric.link(np.full(k, src), nb)] += rs.sum() / k
    e = fabric.link(np.repeat(nb, len(ts)), np.tile(ts, k))
    np.add.at(load, e, np.tile(rs / k, k))


def route_demand(fabric, demand):
    """Fluid ECMP loads (per link) of ``{(src_switch, dst_switch): mbps}``.

    One walk per twin class of the destinations, carrying one column per
    destination of the class: the shared links take the sum of the
    columns, each last link its own destination's column, and traffic
    between two twins takes the two-hop paths through their neighbours.
    """
    keys = list(demand)
    return route_demand_arrays(
        fabric, np.array([s for s, _ in keys], dtype=np.int64),
        np.array([t for _, t in keys], dtype=np.int64),
        np.array([demand[k] for k in keys], dtype=np.float64))


def route_demand_arrays(fabric, src, dst, rate):
    """:func:`route_demand` of ``rate[i]`` from switch ``src[i]`` to
    switch ``dst[i]`` (distinct pairs)."""
    load = np.zeros(fabric.m)
    if not len(src) or not fabric.m:
        return load
    targets, dst = np.unique(dst, return_inverse=True)
    dst = dst.reshape(-1)
    for g in fabric.twin_groups(targets):
        ts = targets[g]
        x = np.zeros((fabric.n, len(g)))
        sel = np.flatnonzero(np.isin(dst, g))
        pos = np.searchsorted(g, dst[sel])
        np.add.at(x, (src[sel], pos), rate[sel])
        inner = np.isin(np.arange(fabric.n), ts)
        si, ti = np.nonzero(x * inner[:, None])
        if len(si):                     # twins sending to twins
            nb = fabric.neighbours(ts[0])
            k = len(nb)
            r = np.repeat(x[si, ti] / k, k)
            np.add.at(load, fabric.link(np.repeat(si, k),
                                        np.tile(nb, len(si))), r)
            np.add.at(load, fabric.link(np.tile(nb, len(si)),
                                        np.repeat(ts[ti], k)), r)
        x[inner] = 0.0
        _walk_columns(group_dag(fabric, targets, [g]), x, g, load)
    return load


def _walk_columns(dag, x, g, load):
    """Route the columns *x* (switches x targets ``g``) down a one-column
    group DAG, adding the link loads to *load*.

    Per level, every tail splits its columns evenly over its next hops
    (``x / nh``, per switch), a shared link takes the sum of its tail's
    columns, and each head gathers the shares of its tails through a
    sparse (heads x tails) matrix product, in ascending tail order.
    """
    n = dag.fabric.n
    nh = np.maximum(dag.nh, 1)[:n, None].astype(np.float64)
    col = np.empty(int(g.max()) + 1, dtype=np.int64)
    col[g] = np.arange(len(g))
    ones = np.ones(0)
    for lo, hi, _ in reversed(dag.levels):
        e = dag.e[lo:hi]
        tail = dag.cell_tail[lo:hi] % n
        j = dag.j[lo:hi]
        if (j >= 0).all():                      # last links: w -> t
            load += np.bincount(e, x[tail, col[j]], minlength=len(load))
            continue
        share = x / nh
        # one entry per link in a level: a plain indexed add
        load[e] += share.sum(axis=1)[tail]
        if len(ones) < len(e):
            ones = np.ones(len(e))
        heads = csr_matrix((ones[:len(e)], (dag.cell_head[lo:hi] % n,
                                            tail)), shape=(n, n))
        x += heads @ share
