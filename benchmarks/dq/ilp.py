"""Exact optimum of the placement of a given set of servers, by ILP.

Problem: the servers ``M`` (those the advisor moved) must each leave their
current host and go to one other host; every other server stays. Minimise
the network cost ``sum over flows of rate x hops(host(src), host(dst))``
(the quantity :func:`nova_netaware.core.cost.network_cost` measures)
subject to every host's vCPUs and RAM (the engine's capacity constraint).

Variables and linearisation (solved with :func:`scipy.optimize.milp`,
HiGHS branch and bound, relative gap 0):

* ``x[v,h]`` binary: server ``v`` on host ``h``; ``sum_h x[v,h] = 1``,
  ``x[v, source(v)] = 0``.
* A flow between ``v`` in ``M`` and a fixed server on host ``g`` costs
  ``r * sum_h hops(h, g) x[v,h]``, linear
  (:func:`nova_netaware.core.cost.mover_terms`).
* A flow between two servers ``v, w`` of ``M`` costs ``r * hops(s, t)``,
  the hops between two different hosts on their switches ``s, t``, minus
  what sharing a host saves (:func:`nova_netaware.core.cost.switch_hops`;
  ``2 + dist(s, t)`` and ``2``: the two uplinks).
  With ``X[v,s] = sum_{h on switch s} x[v,h]``, continuous
  ``z[v,w,s,t] >= 0`` with ``sum_t z[v,w,s,t] = X[v,s]`` and
  ``sum_s z[v,w,s,t] = X[w,t]`` (a transportation linearisation, exact
  for binary ``x``) gives the switch term ``sum r hops(s,t) z``, and
  ``0 <= y[v,w,h] <= x[v,h], x[w,h]`` with cost ``-r saving(h) y`` the
  same-host term.
* Capacity, with the advisor's rule that a host receiving servers stays
  within the overload thresholds (``cpu_threshold`` and ``ram_threshold``
  of :class:`nova_netaware.advisor.AdvisorParams`, 90%): ``sum_v vcpus_v
  x[v,h] <= min(free vCPUs, 0.9 x vCPUs - used vCPUs)`` of ``h`` without
  ``M``, and the same for RAM (the engine's own capacity check is the
  looser ``<= free``).

Not modelled (so the optimum is a lower bound for any method that also
honours them, like the advisor): link bandwidth ceilings, distance bounds
and migration feasibility. The benchmark reports the link utilisation the
optimum leads to.
"""

import time

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds
from scipy.optimize import LinearConstraint
from scipy.optimize import milp

from nova_netaware.advisor import AdvisorParams
from nova_netaware.core import cost


def solve(sc, movers, time_limit=60.0, knobs=None):
    """Return ``(placement, objective, status message, seconds, optimal)``.

    ``objective`` is the network cost of the flows with at least one end in
    *movers* (the part of the total that depends on the decision).
    *knobs*: the advisor's thresholds (default :class:`AdvisorParams`).
    """
    knobs = knobs or AdvisorParams()
    t0 = time.perf_counter()
    topo, traffic, placement = sc.topo, sc.traffic, sc.placement
    movers = list(movers)
    mset = set(movers)
    H = len(topo.host_names)
    hs = topo.host_switch
    hops = cost.hop_matrix(topo)
    sws, swd, same_host = cost.switch_hops(topo, hops)
    S = len(sws)
    nv = len(movers)
    # rates: mover-fixed linear terms, mover-mover pairs
    lin, pair = cost.mover_terms(topo, traffic, placement, movers, hops)
    pairs = sorted(pair)
    nx = nv * H
    nz = len(pairs) * S * S
    ny = len(pairs) * H
    n = nx + nz + ny
    c = np.zeros(n)
    c[:nx] = lin.ravel()
    for k, (v, w) in enumerate(pairs):
        r = pair[(v, w)]
        c[nx + k * S * S: nx + (k + 1) * S * S] = r * swd.ravel()
        c[nx + nz + k * H: nx + nz + (k + 1) * H] = -r * same_host

    rows, cols, vals, lo, hi = [], [], [], [], []
    row = 0

    def add(entries, lb, ub):
        nonlocal row
        for j, a in entries:
            rows.append(row)
            cols.append(j)
            vals.append(a)
        lo.append(lb)
        hi.append(ub)
        row += 1

    def X(v, h):
        return v * H + h

    # assignment
    for v in range(nv):
        add([(X(v, h), 1.0) for h in range(H)], 1.0, 1.0)
    # capacity
    cpu_free = {h: sc.usage[h].vcpus - sc.usage[h].vcpus_used
                for h in topo.host_names}
    ram_free = {h: sc.usage[h].memory_mb - sc.usage[h].memory_mb_used
                for h in topo.host_names}
    for v in movers:
        srv = sc.servers[v]
        cpu_free[placement[v]] += srv.vcpus
        ram_free[placement[v]] += srv.memory_mb
    closed = set()
    for h, name in enumerate(topo.host_names):
        u = sc.usage[name]
        # the advisor's rule: a host that receives servers stays within
        # the thresholds; one still above them without M receives none
        cpu_room = min(cpu_free[name], knobs.cpu_threshold * u.vcpus -
                       (u.vcpus - cpu_free[name]))
        ram_room = min(ram_free[name], knobs.ram_threshold * u.memory_mb -
                       (u.memory_mb - ram_free[name]))
        if cpu_room < 0 or ram_room < 0:
            closed.add(h)
        add([(X(v, h), float(sc.servers[m].vcpus))
             for v, m in enumerate(movers)], -np.inf, max(cpu_room, 0.0))
        add([(X(v, h), float(sc.servers[m].memory_mb))
             for v, m in enumerate(movers)], -np.inf, max(ram_room, 0.0))
    # pair linearisation
    hosts_on = {s: [h for h in range(H) if int(hs[h]) == s] for s in sws}
    for k, (v, w) in enumerate(pairs):
        base = nx + k * S * S
        for i, s in enumerate(sws):
            add([(base + i * S + j, 1.0) for j in range(S)] +
                [(X(v, h), -1.0) for h in hosts_on[s]], 0.0, 0.0)
        for j, t in enumerate(sws):
            add([(base + i * S + j, 1.0) for i in range(S)] +
                [(X(w, h), -1.0) for h in hosts_on[t]], 0.0, 0.0)
        ybase = nx + nz + k * H
        for h in range(H):
            add([(ybase + h, 1.0), (X(v, h), -1.0)], -np.inf, 0.0)
            add([(ybase + h, 1.0), (X(w, h), -1.0)], -np.inf, 0.0)
    A = sparse.csr_matrix((vals, (rows, cols)), shape=(row, n))
    ub = np.ones(n)
    ub[nx:] = np.inf
    ub[nx + nz:] = 1.0
    for v, m in enumerate(movers):
        ub[X(v, topo.host_index[placement[m]])] = 0.0
    integrality = np.zeros(n)
    integrality[:nx] = 1
    res = milp(c, integrality=integrality, bounds=Bounds(np.zeros(n), ub),
               constraints=LinearConstraint(A, lo, hi),
               options={'time_limit': time_limit, 'mip_rel_gap': 0.0,
                        'disp': False})
    dt = time.perf_counter() - t0
    if res.x is None:
        return None, None, res.message, dt, False
    x = res.x[:nx].reshape(nv, H)
    new = dict(placement)
    for v, m in enumerate(movers):
        new[m] = topo.host_names[int(np.argmax(x[v]))]
    # objective recomputed from the placement (not the LP value)
    obj = flows_cost(sc, new, mset)
    return new, obj, res.message, dt, res.status == 0


def flows_cost(sc, placement, servers):
    """``sum rate x hops`` over the flows of *sc* with an end in
    *servers* (:func:`nova_netaware.core.cost.flows_cost`)."""
    return cost.flows_cost(sc.topo, sc.traffic, placement, servers)
