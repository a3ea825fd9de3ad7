"""The typed per-request state that the constraints and the MIF read.

Computed once per request by :func:`request_state`, in the manner of the
``PreFilterState`` of kubernetes-sigs NetworkOverhead: the server's peers
aggregated per host and per switch, the link loads without the server's own
traffic, and for every candidate the uplink, path, distance and migration
numbers. :mod:`.constraints` and :mod:`.impact` only read it. Where a new
constraint or MIF term needs a new number, it is computed here, in its group.

The per-candidate measures (busiest links on the paths to the peers,
farthest peer, free bandwidth from the source) are computed in
:mod:`.measures`. The paths to the peers, for those measures and for taking
the server's own traffic off the loads, are walked once per twin class of
the peer switches (:mod:`.peerpaths`; one class per fat-tree pod, one for
all the leaves of a leaf-spine), not once per peer switch: a request costs
O(hosts + peers + links x twin classes). Nothing here knows about Nova.
"""

import collections
import dataclasses
import itertools
from typing import Optional

import numpy as np

from nova_netaware.core import loads as loads_mod
from nova_netaware.core import measures
from nova_netaware.core import peerpaths
from nova_netaware.core.migration import MBIT_PER_MIB
from nova_netaware.core.migration import precopy
from nova_netaware.core.request import Candidates
from nova_netaware.core.request import Params
from nova_netaware.core.request import Server
from nova_netaware.core.topology import Topology


@dataclasses.dataclass
class PeerTraffic:
    """The server's traffic to its placed peers, in Mbit/s.

    ``out`` is server -> peer, ``in`` peer -> server. Peers without a host,
    or on a host missing from the topology, are left out (with a note).
    """
    #: ``{peer host index: rate}``, in the order the peers were met
    out_by_host: dict
    in_by_host: dict
    #: the peer host indices, sorted
    hosts: list
    #: ``{peer switch index: rate}`` (same keys in both)
    out_by_switch: dict
    in_by_switch: dict
    #: the peer switches, sorted (the routing targets)
    switches: np.ndarray
    #: the rates per topology host (0 where no peer)
    out_per_host: np.ndarray
    in_per_host: np.ndarray
    out_total: float
    in_total: float


@dataclasses.dataclass
class Uplinks:
    """Each candidate's own uplink after the move, per direction.

    ``up`` leaves the host, ``down`` reaches it; ``*_base`` is the load
    without the server's traffic, ``*_added`` what the move adds (its
    traffic to peers on other hosts).
    """
    capacity: np.ndarray
    up_base: np.ndarray
    down_base: np.ndarray
    up_added: np.ndarray
    down_added: np.ndarray
    util_up: np.ndarray
    util_down: np.ndarray
    #: the uplink check applies only where the move adds traffic
    up_grows: np.ndarray
    down_grows: np.ndarray


@dataclasses.dataclass
class PathLoads:
    """Busiest links on the server's paths to its peers, per candidate."""
    #: busiest fabric link used, with this traffic (congestion term)
    fabric_util: np.ndarray
    #: busiest fabric link whose load the move increases (path check)
    fabric_check: np.ndarray
    #: the walks behind ``fabric_util`` / ``fabric_check``
    #: (:class:`.peerpaths.PeerPaths`), to name the worst link; ``None``
    #: without fabric paths
    peer_paths: Optional[peerpaths.PeerPaths]
    #: busiest peer uplink with this traffic on it (congestion term)
    peer_uplink_util: np.ndarray
    #: the source host's uplink where it grows (path check)
    source_uplink_util: np.ndarray
    #: ``max(fabric_check, source_uplink_util)``: the path check's value
    check_util: np.ndarray


@dataclasses.dataclass
class Distances:
    """Distance from each candidate to its farthest peer, and the bounds."""
    peer_hops: np.ndarray
    peer_latency_us: np.ndarray
    #: the bounds that apply (server override, else the option; 0 = none)
    max_hops: int
    max_latency_us: float


@dataclasses.dataclass
class Migration:
    """The pre-copy live migration from the source to each candidate."""
    dirty_rate_mbps: float
    #: bottleneck free bandwidth, Mbit/s; ``None`` when not a move with
    #: memory (``inf`` everywhere when the source is unknown)
    bandwidth: Optional[np.ndarray]
    #: :func:`~.migration.precopy` result; ``None`` without a known source
    precopy: Optional[dict]
    #: ``V(c)``, MiB copied (0 on the source itself and without precopy)
    volume_mb: np.ndarray
    hops_from_source: np.ndarray


@dataclasses.dataclass
class RequestState:
    """Everything one request's constraints and MIF read."""
    topology: Topology
    server: Server
    params: Params
    #: candidate host names, in candidate order
    hosts: list
    #: candidate is in the topology
    known: np.ndarray
    #: candidate host index (0 where unknown) and its switch
    host: np.ndarray
    switch: np.ndarray
    free_ram_mb: Optional[np.ndarray]
    free_vcpus: Optional[np.ndarray]
    source_name: Optional[str]
    #: source host index and switch; ``None`` when unknown
    source: Optional[int]
    source_switch: Optional[int]
    #: why the source is unusable for a move, else ``None``
    source_note: Optional[str]
    #: notes on missing or inconsistent data, in the order found
    notes: list
    peers: PeerTraffic
    #: link loads without this server's own traffic
    loads: loads_mod.Loads
    #: there are fabric paths to the peer switches (fabric links and at
    #: least one peer switch): they are walked per twin class
    #: (:mod:`.peerpaths`)
    has_peer_paths: bool
    #: shortest-path DAG (:meth:`.routing.Fabric.dag`) towards the source
    #: switch; ``None`` without a source or without fabric links
    source_dag: Optional[object]
    uplinks: Uplinks
    paths: PathLoads
    distances: Distances
    migration: Migration


def request_state(topo, fabric, base, traffic, placement, server,
                  candidates, params):
    """Compute the :class:`RequestState` of one request.

    :param base: the loads of the whole traffic matrix for *placement*
        (:meth:`.engine.Engine.base_loads`).
    """
    notes = []
    cands = Candidates.of(candidates)
    index = topo.host_index
    idx = np.fromiter(map(index.get, cands.hosts,
                          itertools.repeat(-1, len(cands))),
                      dtype=np.int64, count=len(cands))
    known = idx >= 0
    host = np.where(known, idx, 0)
    for i in np.flatnonzero(~known):
        notes.append('host %s is not in the topology' % cands.hosts[i])
    source_name = placement.get(server.uuid)
    source = topo.host_index.get(source_name) if source_name else None
    source_note = None
    if server.is_move and source_name is None:
        source_note = 'server %s has no current host' % server.uuid
    elif server.is_move and source is None:
        source_note = 'source host %s is not in the topology' % source_name
    if source_note:
        notes.append(source_note)
    peers = _peer_traffic(topo, traffic, placement, server, notes)
    has_peer_paths = bool(len(peers.switches) and fabric.m)
    source_switch = (int(topo.host_switch[source]) if source is not None
                     else None)
    source_dag = (fabric.dag(np.array([source_switch]))
                  if source is not None and fabric.m else None)
    work = _without_server(fabric, base, source, source_switch, peers,
                           has_peer_paths, source_dag)
    switch = topo.host_switch[host]
    uplinks = _uplinks(topo, work, host, peers)
    return RequestState(
        topology=topo, server=server, params=params,
        hosts=cands.hosts, known=known, host=host,
        switch=switch,
        free_ram_mb=cands.free_ram_mb, free_vcpus=cands.free_vcpus,
        source_name=source_name, source=source, source_switch=source_switch,
        source_note=source_note, notes=notes, peers=peers, loads=work,
        has_peer_paths=has_peer_paths, source_dag=source_dag,
        uplinks=uplinks,
        paths=_path_loads(topo, fabric, work, host, switch, source,
                          source_switch, peers, has_peer_paths),
        distances=_distances(topo, host, switch, peers, server, params),
        migration=_migration(topo, fabric, work, host, switch, source,
                             source_dag, server, params))


def _peer_traffic(topo, traffic, placement, server, notes):
    """Aggregate the server's traffic per peer host and per peer switch."""
    out_by_host = collections.defaultdict(float)
    in_by_host = collections.defaultdict(float)
    for peer, (out_rate, in_rate) in traffic.peers(server.uuid).items():
        peer_host = placement.get(peer)
        if peer_host is None:
            notes.append('peer %s of server %s has no host (deleted?)'
                         % (peer, server.uuid))
            continue
        p = topo.host_index.get(peer_host)
        if p is None:
            notes.append('host %s of peer %s is not in the topology'
                         % (peer_host, peer))
            continue
        out_by_host[p] += out_rate
        in_by_host[p] += in_rate
    hosts = sorted(set(out_by_host) | set(in_by_host))
    out_by_switch = collections.defaultdict(float)
    in_by_switch = collections.defaultdict(float)
    for p in hosts:
        t = int(topo.host_switch[p])
        out_by_switch[t] += out_by_host.get(p, 0.0)
        in_by_switch[t] += in_by_host.get(p, 0.0)
    n_hosts = len(topo.host_names)
    out_per_host = np.zeros(n_hosts)
    in_per_host = np.zeros(n_hosts)
    if out_by_host:
        out_per_host[list(out_by_host)] = list(out_by_host.values())
    if in_by_host:
        in_per_host[list(in_by_host)] = list(in_by_host.values())
    return PeerTraffic(
        out_by_host=out_by_host, in_by_host=in_by_host, hosts=hosts,
        out_by_switch=out_by_switch, in_by_switch=in_by_switch,
        switches=np.array(sorted(out_by_switch), dtype=np.int64),
        out_per_host=out_per_host, in_per_host=in_per_host,
        out_total=sum(out_by_host.values()),
        in_total=sum(in_by_host.values()))


def _without_server(fabric, base, source, source_switch, peers,
                    has_peer_paths, source_dag):
    """The loads *base* without this server's own traffic (from its
    source host to its peers' hosts and back)."""
    if source is None or not (peers.out_by_host or peers.in_by_host):
        return base
    up, down = base.up.copy(), base.down.copy()
    for p, rate in peers.out_by_host.items():
        if p != source:
            up[source] -= rate
            down[p] -= rate
    for p, rate in peers.in_by_host.items():
        if p != source:
            up[p] -= rate
            down[source] -= rate
    links = base.links.copy()
    if has_peer_paths:
        targets = peers.switches
        # out: source switch -> each peer switch, one walk per twin class
        # of the peer switches; in: every peer switch -> the source switch
        rate_out = np.zeros(len(targets))
        d_in = np.zeros((fabric.n, 1))
        for j, t in enumerate(targets):
            if t != source_switch:
                rate_out[j] = peers.out_by_switch[t]
                d_in[t, 0] = peers.in_by_switch[t]
        links -= (peerpaths.route_from(fabric, source_switch, targets,
                                       rate_out)
                  + source_dag.route(d_in))
    return loads_mod.Loads(np.maximum(up, 0.0), np.maximum(down, 0.0),
                           np.maximum(links, 0.0))


def _uplinks(topo, work, host, peers):
    """Each candidate's uplink with the server's off-host traffic added."""
    capacity = topo.host_cap[host]
    up_base, down_base = work.up[host], work.down[host]
    up_added = peers.out_total - peers.out_per_host[host]
    down_added = peers.in_total - peers.in_per_host[host]
    return Uplinks(
        capacity=capacity, up_base=up_base, down_base=down_base,
        up_added=up_added, down_added=down_added,
        util_up=(up_base + up_added) / capacity,
        util_down=(down_base + down_added) / capacity,
        up_grows=up_added > 0, down_grows=down_added > 0)


def _distances(topo, host, switch, peers, server, params):
    """Hops and latency from each candidate to its farthest peer."""
    if len(peers.switches):
        hops, latency = measures.farthest_peer(topo, host, switch, peers)
    else:
        hops = np.zeros(len(host), dtype=np.int64)
        latency = np.zeros(len(host))
    return Distances(
        peer_hops=hops, peer_latency_us=latency,
        max_hops=(params.max_hops if server.max_hops is None
                  else server.max_hops),
        max_latency_us=(params.max_latency_us
                        if server.max_latency_us is None
                        else server.max_latency_us))


def _path_loads(topo, fabric, work, host, switch, source, source_switch,
                peers, has_peer_paths):
    """Busiest links on the server's paths to its peers (fabric links and
    peer uplinks), for the path check and the congestion term."""
    peer_util, source_util = measures.peer_uplinks(topo, work, host, source,
                                                   peers)
    if has_peer_paths:
        fabric_util, fabric_check, peer_paths = measures.fabric_paths(
            fabric, work, peers, source_switch, switch)
    else:
        peer_paths = None
        fabric_util = fabric_check = np.zeros(len(host))
    return PathLoads(
        fabric_util=fabric_util, fabric_check=fabric_check,
        peer_paths=peer_paths, peer_uplink_util=peer_util,
        source_uplink_util=source_util,
        check_util=np.maximum(fabric_check, source_util))


def _migration(topo, fabric, work, host, switch, source, source_dag,
               server, params):
    """The pre-copy model over the bottleneck bandwidth source -> each
    candidate; a candidate that is the source costs nothing."""
    n = len(host)
    mig = Migration(
        dirty_rate_mbps=(params.dirty_rate_mbps
                         if server.dirty_rate_mbps is None
                         else server.dirty_rate_mbps),
        bandwidth=None, precopy=None, volume_mb=np.zeros(n),
        hops_from_source=np.zeros(n))
    if not (server.is_move and server.memory_mb > 0):
        return mig
    if source is None:
        mig.bandwidth = np.full(n, np.inf)
        return mig
    b = measures.free_bandwidth(topo, fabric, source_dag, work, host, switch,
                                source, params.max_link_utilization)
    if params.max_migration_bandwidth_mbps:
        b = np.minimum(b, params.max_migration_bandwidth_mbps)
    same = host == source
    mig.bandwidth = b = np.where(same, np.inf, b)
    pc = precopy(server.memory_mb * MBIT_PER_MIB, mig.dirty_rate_mbps, b,
                 params.live_migration_downtime_ms / 1000.0,
                 params.max_precopy_rounds)
    pc['converges'] = pc['converges'] | same
    pc['time_s'] = np.where(same, 0.0, pc['time_s'])
    mig.precopy = pc
    mig.volume_mb = np.where(same, 0.0, pc['volume'] / MBIT_PER_MIB)
    mig.hops_from_source = topo.hops_from(source, host)
    return mig
