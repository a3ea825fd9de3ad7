"""Current link loads: the traffic matrix routed over the topology.

Host uplinks are full duplex: ``up[h]`` is what leaves host *h*, ``down[h]``
what reaches it. A flow between two servers on the same host uses no link.
Fabric links carry the fluid ECMP split of :meth:`Fabric.route`.
"""

import itertools

import numpy as np

from nova_netaware.core import peerpaths


class Loads(object):
    """Link loads in Mbit/s: host ``up``/``down`` and fabric ``links``."""

    def __init__(self, up, down, links):
        self.up = up
        self.down = down
        self.links = links


def route_flows(fabric, flows):
    """Loads of *flows*, an iterable of ``(src_host, dst_host, mbps)``.

    Hosts are topology host indices.
    """
    flows = list(flows)
    a = np.array([f[0] for f in flows], dtype=np.int64)
    b = np.array([f[1] for f in flows], dtype=np.int64)
    r = np.array([f[2] for f in flows], dtype=np.float64)
    return route_flow_arrays(fabric, a, b, r)


def route_flow_arrays(fabric, a, b, r):
    """:func:`route_flows` of the flows ``a[i] -> b[i]`` at ``r[i]`` Mbit/s
    (arrays; a host index < 0 leaves the flow out).

    Every sum runs in flow order (``np.bincount``), as a loop over the
    flows would add them.
    """
    topo = fabric.topo
    nh = len(topo.host_names)
    keep = (a != b) & (r > 0) & (a >= 0) & (b >= 0)
    a, b, r = a[keep], b[keep], r[keep]
    up = np.bincount(a, r, minlength=nh).astype(np.float64)
    down = np.bincount(b, r, minlength=nh).astype(np.float64)
    sa, sb = topo.host_switch[a], topo.host_switch[b]
    cross = sa != sb
    key = sa[cross] * len(topo.switch_names) + sb[cross]
    pairs, inv = np.unique(key, return_inverse=True)
    rate = np.bincount(inv.reshape(-1), r[cross], minlength=len(pairs))
    n = len(topo.switch_names)
    return Loads(up, down, peerpaths.route_demand_arrays(
        fabric, pairs // n, pairs % n, rate))


def route_placement(fabric, traffic, hosts):
    """Loads of the whole *traffic* matrix with ``traffic.server_list[i]``
    on host name ``hosts[i]`` (``None`` or a host missing from the
    topology leaves its flows out, as :func:`placement_flows` does)."""
    index = fabric.topo.host_index
    where = np.array(list(map(index.get, hosts, itertools.repeat(-1))),
                     dtype=np.int64).reshape(-1)
    src, dst, rate = traffic.flow_arrays()
    return route_flow_arrays(fabric, where[src], where[dst], rate)


def route_switch_demand(fabric, demand):
    """Fabric loads of ``{(src_switch, dst_switch): mbps}``."""
    return peerpaths.route_demand(fabric, demand)


def placement_flows(topo, traffic, placement):
    """Flows of *traffic* between the hosts of *placement*.

    Servers without a known host, or on a host missing from the topology,
    are left out (the engine reports them for the server it evaluates).
    """
    index = topo.host_index
    for (src, dst), r in traffic.rates.items():
        a = index.get(placement.get(src))
        b = index.get(placement.get(dst))
        if a is not None and b is not None:
            yield a, b, r
