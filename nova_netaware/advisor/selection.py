"""Selection: the servers involved in the hot spots, and their order.

The servers involved are those on overloaded hosts, those on a host whose
uplink is congested (with a peer elsewhere), and those with a flow on a
shortest path that crosses a congested fabric link. They are taken in
descending order of **incoming traffic** (sum of rates to the server).
"""

import numpy as np

from nova_netaware.advisor.hotspots import link_name


def _on_hot_fabric(eng, traffic, placement, hot_fab, why):
    """Give a reason to both ends of every flow whose shortest paths cross
    a congested fabric link."""
    topo, fab = eng.topo, eng.fabric
    hot = np.zeros(fab.m, dtype=bool)
    hot[hot_fab] = True
    names = {k: link_name(eng, k) for k in hot_fab}
    # group flows by (src switch, dst switch); one mask per target
    pairs = {}
    for (a, b), r in traffic.rates.items():
        ia = topo.host_index.get(placement.get(a))
        ib = topo.host_index.get(placement.get(b))
        if ia is None or ib is None:
            continue
        sa, sb = int(topo.host_switch[ia]), int(topo.host_switch[ib])
        if sa != sb:
            pairs.setdefault((sa, sb), []).append((a, b))
    for (sa, sb), flows in pairs.items():
        on = fab.on_paths_from(sa, np.array([sb]))[:, 0] & hot
        if on.any():
            link = names[int(np.flatnonzero(on)[0])]
            for a, b in flows:
                why.setdefault(a, 'link %s congested' % link)
                why.setdefault(b, 'link %s congested' % link)


def select(eng, traffic, placement, over, hot_up, hot_fab):
    """Servers involved in the hot spots, highest incoming traffic first.

    Returns ``[(server, incoming Mbit/s, why)]``.
    """
    why = {}
    over, hot_up = set(over), set(hot_up)
    for s, h in placement.items():
        if h in over:
            why.setdefault(s, 'host %s overloaded' % h)
    for s, h in placement.items():
        if h in hot_up and any(placement.get(p) != h
                               for p in traffic.peers(s)):
            why.setdefault(s, 'uplink of %s congested' % h)
    if hot_fab:
        _on_hot_fabric(eng, traffic, placement, hot_fab, why)
    ranked = sorted(why, key=lambda s: (-traffic.incoming(s), s))
    return [(s, traffic.incoming(s), why[s]) for s in ranked]
