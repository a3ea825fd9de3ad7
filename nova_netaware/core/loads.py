"""Current link loads: the traffic matrix routed over the topology.

Host uplinks are full duplex: ``up[h]`` is what leaves host *h*, ``down[h]``
what reaches it. A flow between two servers on the same host uses no link.
Fabric links carry the fluid ECMP split of :meth:`Fabric.route`.
"""

import collections

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
    topo = fabric.topo
    nh = len(topo.host_names)
    up = np.zeros(nh)
    down = np.zeros(nh)
    demand = collections.defaultdict(float)
    for a, b, r in flows:
        if a == b or r <= 0:
            continue
        up[a] += r
        down[b] += r
        sa, sb = topo.host_switch[a], topo.host_switch[b]
        if sa != sb:
            demand[(int(sa), int(sb))] += r
    return Loads(up, down, route_switch_demand(fabric, demand))


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
