"""Network cost of a placement: traffic x distance.

The one formula of this module, in its forms::

    cost = sum over flows (a, b) of rate(a, b) x hops(host(a), host(b))

in Mbit/s x hop (Meng et al., "Improving the scalability of data center
networks with traffic-aware virtual machine placement", INFOCOM'10: the
communication cost of a placement is traffic x distance). Hops are
:meth:`nova_netaware.core.topology.Topology.host_hops` (vectorised as
:meth:`~nova_netaware.core.topology.Topology.hops_from`); nothing here
defines a distance of its own.

* :func:`flows_cost` and :func:`network_cost`: the sum over all flows or
  over the flows with an end on given servers (a flow with an unplaced end
  is skipped);
* :func:`server_cost`: one server's share, ``sum over its peers of
  (out + in) x hops``;
* :func:`hop_matrix`, :func:`switch_hops` and :func:`mover_terms`: the same
  cost split into the linear and pairwise terms of an exact placement
  program (the benchmark's ILP);

The engine's per-candidate ``comm(c)`` (:mod:`nova_netaware.core.impact`)
is the same traffic x distance, computed per switch for speed.
"""

import numpy as np


def flows_cost(topo, traffic, placement, servers=None):
    """``sum rate x hops`` over the flows with an end in *servers* (every
    flow when ``None``); flows with an end not placed on a host of *topo*
    are skipped."""
    total = 0.0
    for (a, b), r in traffic.rates.items():
        if servers is not None and a not in servers and b not in servers:
            continue
        ia = topo.host_index.get(placement.get(a))
        ib = topo.host_index.get(placement.get(b))
        if ia is not None and ib is not None:
            total += r * topo.host_hops(ia, ib)
    return total


def network_cost(topo, traffic, placement):
    """``sum over flows of rate x hops(host(src), host(dst))``, Mbit/s x
    hop, for the whole placement."""
    return flows_cost(topo, traffic, placement)


def server_cost(topo, traffic, placement, uuid):
    """``sum over the peers p of uuid of (out_p + in_p) x hops`` (its share
    of :func:`network_cost`; each flow counts in both of its ends' shares,
    so the shares of all servers add up to twice the network cost)."""
    ia = topo.host_index.get(placement.get(uuid))
    if ia is None:
        return 0.0
    total = 0.0
    for p, (out_mbps, in_mbps) in traffic.peers(uuid).items():
        ib = topo.host_index.get(placement.get(p))
        if ib is not None:
            total += (out_mbps + in_mbps) * topo.host_hops(ia, ib)
    return total


def hop_matrix(topo):
    """``hops[a, b]`` for all host indices, as floats."""
    n = len(topo.host_names)
    everyone = np.arange(n)
    return np.array([topo.hops_from(a, everyone) for a in range(n)],
                    dtype=np.float64).reshape(n, n)


def switch_hops(topo, hops):
    """The hops of :func:`hop_matrix` split by switch, for a linear program.

    Returns ``(switches, pair_hops, same_host)``: the sorted indices of the
    switches with hosts; ``pair_hops[i, j]``, the hops between two
    *different* hosts on ``switches[i]`` and ``switches[j]``; and
    ``same_host[h]``, what two servers on the same host *h* save against
    two different hosts of its switch. So ``hops(a, b) = pair_hops[sw(a),
    sw(b)] - (same_host[a] if a == b else 0)``. A switch with one host has
    no pair of different hosts: its diagonal entry and saving are 0.
    """
    hs = topo.host_switch
    switches = sorted(set(int(s) for s in hs))
    on = {s: [h for h in range(len(hs)) if int(hs[h]) == s]
          for s in switches}
    first = [on[s][0] for s in switches]
    pair = hops[np.ix_(first, first)].copy()
    for i, s in enumerate(switches):
        pair[i, i] = hops[on[s][0], on[s][1]] if len(on[s]) > 1 else 0.0
    diag = {s: pair[i, i] for i, s in enumerate(switches)}
    same_host = np.array([diag[int(s)] for s in hs], dtype=np.float64)
    return switches, pair, same_host


def mover_terms(topo, traffic, placement, movers, hops):
    """The network cost of the flows of *movers* as a function of where the
    movers go, every other server staying in *placement*.

    Returns ``(linear, pair)``: ``linear[v, h]``, the cost of the flows
    between ``movers[v]`` and servers that stay, were it on host *h*
    (``sum rate x hops[h, host(peer)]``); and ``pair[(v, w)]`` (``v < w``),
    the rate between two movers, whose cost is ``rate x hops`` of wherever
    both end up (:func:`switch_hops`).
    """
    vpos = {v: i for i, v in enumerate(movers)}
    linear = np.zeros((len(movers), len(topo.host_names)))
    pair = {}
    for (a, b), r in traffic.rates.items():
        ia, ib = a in vpos, b in vpos
        if ia and ib:
            key = tuple(sorted((vpos[a], vpos[b])))
            pair[key] = pair.get(key, 0.0) + r
        elif ia:
            linear[vpos[a]] += r * hops[:, topo.host_index[placement[b]]]
        elif ib:
            linear[vpos[b]] += r * hops[:, topo.host_index[placement[a]]]
    return linear, pair
