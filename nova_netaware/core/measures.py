"""Per-candidate measures of one request, as arrays in candidate order.

The busiest links on the server's paths to its peers, the busiest peer
uplinks, the distance to the farthest peer and the free bandwidth from the
source. :func:`.state.request_state` calls these and keeps the results in
the typed :class:`.state.RequestState`. *host* and *switch* are the
candidates' host and switch indices; *peers* a :class:`.state.PeerTraffic`.
"""

import collections

import numpy as np

from nova_netaware.core import peerpaths
from nova_netaware.core.topology import remote_host_hops
from nova_netaware.core.topology import UPLINK_HOPS


def peer_uplinks(topo, loads, host, source, peers):
    """Peer uplinks with this server's traffic back on them.

    Only the directions the server's traffic uses count: a peer's downlink
    when the server sends to it, its uplink when it sends. A candidate that
    is the peer's own host takes that traffic off the peer's uplink.

    :returns: ``(peer_util, source_util)``: per candidate, the busiest peer
        uplink (congestion term), and the source host's uplink where it
        grows (path check): only a peer uplink whose load grows counts for
        the check, the source host's, when the server leaves peers behind.
    """
    n = len(host)
    if not peers.hosts:
        return np.zeros(n), np.zeros(n)
    p = np.array(peers.hosts, dtype=np.int64)
    out_rate = peers.out_per_host[p]
    in_rate = peers.in_per_host[p]
    cap = topo.host_cap[p]
    util = np.maximum(
        np.where(out_rate > 0, (loads.down[p] + out_rate) / cap, -np.inf),
        np.where(in_rate > 0, (loads.up[p] + in_rate) / cap, -np.inf))
    # the busiest peer uplink, and the next one for a candidate that is the
    # busiest peer's own host
    top = int(np.argmax(util))
    second = np.delete(util, top).max() if len(util) > 1 else -np.inf
    peer_util = np.maximum(np.where(host == p[top], second, util[top]), 0.0)
    source_up = 0.0
    if source is not None:
        k = int(np.searchsorted(p, source))
        if k < len(p) and p[k] == source:
            source_up = max(util[k], 0.0)
        return peer_util, np.where(host == source, 0.0, source_up)
    return peer_util, np.zeros(n)


def fabric_paths(fabric, loads, peers, source_switch, switch):
    """Busiest fabric link on any shortest path to each peer switch.

    Per peer switch, the busiest link on any shortest path between the
    candidate's switch and it, with this server's traffic to that switch
    added. The check leaves out links that already carry this traffic today
    (on a shortest path from the source switch): moving does not add to
    them. The congestion term counts every link used. The paths are walked
    once per twin class of the peer switches
    (:class:`.peerpaths.PeerPaths`, exact).

    :returns: ``(fabric_util, fabric_check, peer_paths)``: per candidate,
        the busiest link used and the busiest link whose load grows; and
        the :class:`.peerpaths.PeerPaths` (to name the worst link).
    """
    targets = peers.switches
    r_out = np.array([peers.out_by_switch[t] for t in targets])
    r_in = np.array([peers.in_by_switch[t] for t in targets])
    util_now = loads.links / fabric.cap
    inv_cap = 1.0 / fabric.cap
    # a direction without traffic to / from that peer switch uses no link:
    # -inf (times a positive 1/capacity) leaves it out of the maxima
    r_out_v = np.where(r_out > 0, r_out, -np.inf)
    r_in_v = np.where(r_in > 0, r_in, -np.inf)

    def busier(util, inv, util_rev, inv_rev, rate_out, rate_in):
        # the busier direction of the link for this peer switch
        # (non-decreasing in the rates, as PeerPaths requires)
        return np.maximum(util + rate_out * inv, util_rev + rate_in * inv_rev)

    def values(e, rate_out, rate_in):
        re = fabric.rev[e]
        return busier(util_now[e], inv_cap[e], util_now[re], inv_cap[re],
                      rate_out, rate_in)
    # every link at once with one rate pair (the same floats as values()
    # of every link, without gathering by link)
    util_rev, inv_rev = util_now[fabric.rev], inv_cap[fabric.rev]
    values.all_links = lambda rate_out, rate_in: busier(
        util_now, inv_cap, util_rev, inv_rev, rate_out, rate_in)
    peer_paths = peerpaths.PeerPaths(fabric, targets, r_out_v, r_in_v,
                                     values, source_switch)
    return (np.maximum(peer_paths.best, 0.0)[switch],
            np.maximum(peer_paths.check, 0.0)[switch], peer_paths)


def farthest_peer(topo, host, switch, peers):
    """Hops and path latency (us) from each candidate to its farthest peer.

    A peer on the candidate itself is 0 hops and 0 us away; one on another
    host behind the candidate's switch :data:`UPLINK_HOPS` hops and its
    uplink latency.
    """
    targets = peers.switches
    n_sw = topo.dist.shape[0]
    count = collections.defaultdict(int)
    lat = collections.defaultdict(float)
    # per switch: peer host with the largest host latency, and the second
    # largest latency (for a candidate that is that host)
    lat_host = {}
    lat2 = collections.defaultdict(lambda: -np.inf)
    for p in peers.hosts:
        t = int(topo.host_switch[p])
        count[t] += 1
        hl = float(topo.host_lat[p])
        if t not in lat_host or hl > lat[t]:
            if t in lat_host:
                lat2[t] = lat[t]
            lat[t], lat_host[t] = hl, p
        else:
            lat2[t] = max(lat2[t], hl)
    d = remote_host_hops(topo.dist, slice(None), targets)
    own = targets[None, :] == np.arange(n_sw)[:, None]
    far = np.where(own, -1, d).max(axis=1)[switch]
    lt = topo.lat_to(targets) + np.array([lat[t] for t in targets])
    lat_far = np.where(own, -np.inf, lt).max(axis=1)[switch]
    count_sw = np.zeros(n_sw)
    count_sw[targets] = [count[t] for t in targets]
    lat_sw = np.zeros(n_sw)
    lat_sw[targets] = [lat[t] for t in targets]
    lat_host_sw = np.full(n_sw, -1, dtype=np.int64)
    lat_host_sw[targets] = [lat_host[t] for t in targets]
    lat2_sw = np.full(n_sw, -np.inf)
    lat2_sw[targets] = [lat2[t] for t in targets]
    # the farthest other peer on the candidate's own switch; a peer on the
    # candidate itself is 0 us away, not its uplink latency
    near_lat = np.where(host == lat_host_sw[switch], lat2_sw[switch],
                        lat_sw[switch])
    on_candidate = (((peers.out_per_host + peers.in_per_host) > 0)[host] |
                    np.isin(host, peers.hosts))
    near = (count_sw[switch] - on_candidate) > 0
    hops = np.maximum(far, np.where(near, UPLINK_HOPS, 0))
    latency = np.maximum(
        np.maximum(lat_far, np.where(near, near_lat, -np.inf))
        + topo.host_lat[host], 0.0)
    return hops, latency


def free_bandwidth(topo, fabric, source_dag, loads, host, switch, source,
                   ceiling):
    """Bottleneck free bandwidth (Mbit/s) from the source to each candidate.

    The least headroom ``ceiling x capacity - load`` over the source's
    uplink, the candidate's downlink and every fabric link on any shortest
    path between their switches.
    """
    head = ceiling * fabric.cap - loads.links
    if source_dag is not None:
        w = source_dag.path_max(lambda e, c: -head[fabric.rev[e]])[:, 0]
    else:
        w = np.full(fabric.n, -np.inf)
    fabric_free = np.where(np.isneginf(w), np.inf, -w)[switch]
    return np.minimum.reduce([
        np.full(len(host), ceiling * topo.host_cap[source]
                - loads.up[source]),
        ceiling * topo.host_cap[host] - loads.down[host], fabric_free])
