"""Shared helpers of the core unit tests (plain data, no Nova)."""

from nova_netaware.core import engine as engine_mod
from nova_netaware.core.routing import Fabric
from nova_netaware.core.topology import leaf_spine
from nova_netaware.core.topology import Topology
from nova_netaware.core.traffic import TrafficMatrix


def ls232(uplink_gbps=25, fabric_gbps=100, latency_us=2):
    """leaf_spine(2, 3, 2): spine-1 spine-2; leaf-1 {compute-1, compute-2},
    leaf-2 {compute-3, compute-4}, leaf-3 {compute-5, compute-6}."""
    return Topology(leaf_spine(2, 3, 2, uplink_gbps=uplink_gbps,
                               fabric_gbps=fabric_gbps,
                               latency_us=latency_us))


def link_index(fabric, a, b):
    """Position of the directed fabric link a -> b in ``fabric``'s order."""
    si = fabric.topo.switch_index
    u, v = si[a], si[b]
    for k in range(fabric.m):
        if int(fabric.eu[k]) == u and int(fabric.ev[k]) == v:
            return k
    raise KeyError((a, b))


def link_loads(fabric, loads):
    """``{(a, b): load}`` of the non-zero directed fabric links."""
    names = fabric.topo.switch_names
    return {(names[int(fabric.eu[k])], names[int(fabric.ev[k])]):
            float(loads[k]) for k in range(fabric.m) if loads[k]}


def traffic(*flows):
    """TrafficMatrix of ``(src, dst, mbps)`` tuples."""
    return TrafficMatrix({'flows': [{'src': s, 'dst': d, 'mbps': r}
                                    for s, d, r in flows]})


def evaluate(topo, flows, placement, server, hosts, params=None, **pkw):
    """One Engine.evaluate on a fresh engine; *hosts* are names or
    Candidates; *server* a uuid or a Server."""
    if isinstance(server, str):
        server = engine_mod.Server(server)
    cands = [h if isinstance(h, engine_mod.Candidate)
             else engine_mod.Candidate(h) for h in hosts]
    if params is None:
        params = engine_mod.Params(**pkw)
    return engine_mod.Engine(topo).evaluate(traffic(*flows), placement,
                                            server, cands, params)


def by_host(ev, attr):
    """``{host: value}`` of an Evaluation array."""
    arr = getattr(ev, attr)
    return {h: (bool(arr[i]) if attr == 'passed' else float(arr[i]))
            for i, h in enumerate(ev.hosts)}


__all__ = ['Fabric', 'Topology', 'ls232', 'link_index', 'link_loads',
           'traffic', 'evaluate', 'by_host']
