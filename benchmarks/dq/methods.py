"""The decision methods compared by the benchmark.

Each method takes a :class:`~dq.scenarios.Scenario` and returns a
:class:`Decision`: the ordered moves ``(server, source, destination)`` and
the wall-clock time the method took to decide. Nothing is applied to the
scenario itself.

* ``no action`` - nothing moves.
* ``advisor`` - :func:`nova_netaware.advisor.plan`, as shipped: hot
  spots, selection by highest incoming traffic, placement through the
  engine's filter and MIF, at most ``budget`` moves.
* ``nova-default`` - the **same servers in the same order** as the advisor
  moved; each goes to the host Nova would pick for ``openstack server
  migrate``: hosts other than the source with room for the flavor (the
  allocation candidates placement returns), ranked by **Nova's own weigher
  classes** (``nova.scheduler.weights.all_weighers``, Nova's default
  ``weight_classes`` and multipliers) run through
  ``nova.scheduler.weights.HostWeightHandler`` on real ``HostState``
  objects; the top host wins (``host_subset_size = 1``).
* ``netoverhead`` - the same servers in the same order; each goes to the
  host with room that minimises ``sum over peers of hops(host, peer's
  host)``, every peer counting once whatever its traffic (the Kubernetes
  scheduler-plugins NetworkOverhead score); ties go to the host with most
  free RAM, then vCPUs. Like the advisor it skips hosts the server would
  push over the advisor's CPU/RAM thresholds (90%), so the two differ only
  in how they score hosts.
* ``sandpiper`` - its own selection (Wood et al., NSDI'07): volume
  ``1/((1-cpu)(1-ram)(1-net))`` per host and per VM; take the overloaded
  host with the highest volume, move its VM with the highest
  volume-to-size ratio (size = RAM) to the least-loaded host (lowest
  volume) with room; repeat until no host is overloaded or as many moves
  as the advisor made. Topology-blind.
* ``ilp-optimum`` - :mod:`dq.ilp`: the same servers placed jointly to the
  exact minimum network cost under host capacity.
"""

import dataclasses
import time
from typing import List, Tuple

import numpy as np

from nova_netaware import advisor

#: the advisor's thresholds, for every method that uses them
KNOBS = advisor.AdvisorParams()
_NOVA = {}


@dataclasses.dataclass
class Decision:
    method: str
    moves: List[Tuple[str, str, str]]
    seconds: float
    note: str = ''
    placement: dict = None


def _fits(u, srv):
    return (u.memory_mb - u.memory_mb_used >= srv.memory_mb and
            u.vcpus - u.vcpus_used >= srv.vcpus)


def _apply(usage, srv, src, dst):
    usage[src].vcpus_used -= srv.vcpus
    usage[src].memory_mb_used -= srv.memory_mb
    usage[dst].vcpus_used += srv.vcpus
    usage[dst].memory_mb_used += srv.memory_mb


def _copy_usage(usage):
    return {h: dataclasses.replace(u) for h, u in usage.items()}


def no_action(sc, budget, params):
    return Decision('no action', [], 0.0)


def run_advisor(sc, budget, params, label='advisor'):
    t = time.perf_counter()
    p = advisor.plan(sc.eng, sc.traffic, sc.placement, sc.servers, sc.usage,
                     params, max_migrations=budget)
    dt = time.perf_counter() - t
    d = Decision(label, [(s.server, s.source, s.destination)
                             for s in p.moves], dt)
    d.why = [s.why for s in p.moves]
    return d


def relief_moves(sc, adv):
    """The advisor's moves whose hot spot still existed when they ran.

    Replays the advisor's moves: a move is a relief move when its reason
    (overloaded source host, congested uplink or fabric link) still holds
    at that point; the others are the advisor's own improvement moves.
    """
    topo, eng = sc.topo, sc.eng
    names = {advisor.link_name(eng, k): k for k in range(eng.fabric.m)}
    usage = _copy_usage(sc.usage)
    placement = dict(sc.placement)
    out = []
    for (s, src, dst), why in zip(adv.moves, adv.why):
        up, fb = advisor.utilisation(eng, sc.traffic, placement)
        if why.startswith('host '):
            hot = advisor.overloaded(usage[src], KNOBS)
        elif why.startswith('uplink of '):
            hot = up[topo.host_index[src]] > KNOBS.link_threshold
        else:
            link = why[len('link '):-len(' congested')]
            hot = fb[names[link]] > KNOBS.link_threshold
        if hot:
            out.append(s)
        _apply(usage, sc.servers[s], src, dst)
        placement[s] = dst
    return out


# -- Nova's default weighers ------------------------------------------------

def _nova():
    """Nova's weigher handler, weigher objects and a RequestSpec factory."""
    if not _NOVA:
        import nova.conf
        from nova import objects
        objects.register_all()
        from nova.scheduler import host_manager
        from nova.scheduler import weights
        conf = nova.conf.CONF
        conf([], project='nova')
        handler = weights.HostWeightHandler()
        classes = handler.get_matching_classes(
            conf.filter_scheduler.weight_classes)
        _NOVA.update(handler=handler, weighers=[c() for c in classes],
                     HostState=host_manager.HostState, objects=objects,
                     names=[c.__name__ for c in classes])
    return _NOVA


def disk_gb(srv):
    """Root disk of a flavor in the benchmark: 2 GB per GiB of RAM."""
    return srv.memory_mb // 512


HOST_DISK_GB = 2048


def nova_weigher_names():
    return _nova()['names']


def _host_states(sc, usage, placement, exclude):
    nv = _nova()
    disk_used = {h: 0 for h in sc.topo.host_names}
    count = {h: 0 for h in sc.topo.host_names}
    for s, h in placement.items():
        disk_used[h] += disk_gb(sc.servers[s])
        count[h] += 1
    states = {}
    for h in sc.topo.host_names:
        if h == exclude:
            continue
        u = usage[h]
        st = nv['HostState'](h, h, 'cell1')
        st.total_usable_ram_mb = u.memory_mb
        st.free_ram_mb = u.memory_mb - u.memory_mb_used
        st.vcpus_total = u.vcpus
        st.vcpus_used = u.vcpus_used
        st.total_usable_disk_gb = HOST_DISK_GB
        st.disk_mb_used = disk_used[h] * 1024
        st.free_disk_mb = (HOST_DISK_GB - disk_used[h]) * 1024
        st.cpu_allocation_ratio = 1.0
        st.ram_allocation_ratio = 1.0
        st.disk_allocation_ratio = 1.0
        st.num_instances = count[h]
        st.num_io_ops = 0
        st.failed_builds = 0
        st.aggregates = []
        st.metrics = None
        states[h] = st
    return states


def _spec(srv):
    o = _nova()['objects']
    return o.RequestSpec(
        instance_uuid='00000000-0000-4000-8000-%012d' % (
            abs(hash(srv.uuid)) % 10 ** 12),
        flavor=o.Flavor(memory_mb=srv.memory_mb, vcpus=srv.vcpus,
                        root_gb=disk_gb(srv), ephemeral_gb=0, swap=0),
        instance_group=None, scheduler_hints={}, num_instances=1,
        image=o.ImageMeta.from_dict({}))


def _place_each(sc, order, label, choose):
    """Move *order*'s servers one at a time to ``choose(srv, src, usage,
    placement)`` (``None``: stays), updating usage and placement."""
    usage = _copy_usage(sc.usage)
    placement = dict(sc.placement)
    moves = []
    t = time.perf_counter()
    for uuid in order:
        srv = sc.servers[uuid]
        src = placement[uuid]
        best = choose(uuid, srv, src, usage, placement)
        if best is None:
            continue
        _apply(usage, srv, src, best)
        placement[uuid] = best
        moves.append((uuid, src, best))
    return Decision(label, moves, time.perf_counter() - t)


def nova_default(sc, order, params, label='nova-default'):
    """Move *order*'s servers where Nova's default weighers send them."""
    nv = _nova()

    def choose(uuid, srv, src, usage, placement):
        states = _host_states(sc, usage, placement, src)
        cands = [st for h, st in states.items() if _fits(usage[h], srv)]
        if not cands:
            return None
        return nv['handler'].get_weighed_objects(
            nv['weighers'], cands, _spec(srv))[0].obj.host

    return _place_each(sc, order, label, choose)


def netoverhead(sc, order, params):
    """Unweighted hop count to peers (NetworkOverhead-style)."""
    topo = sc.topo

    def choose(uuid, srv, src, usage, placement):
        peers = [topo.host_index[placement[p]]
                 for p in sc.traffic.peers(uuid)]
        best, key = None, None
        for h in topo.host_names:
            if (h == src or not _fits(usage[h], srv) or
                    advisor.overloaded_with(usage[h], srv, KNOBS)):
                continue
            i = topo.host_index[h]
            u = usage[h]
            k = (sum(topo.host_hops(i, p) for p in peers),
                 -(u.memory_mb - u.memory_mb_used), -(u.vcpus - u.vcpus_used))
            if key is None or k < key:
                best, key = h, k
        return best

    return _place_each(sc, order, 'netoverhead', choose)


def sandpiper(sc, budget, params, knobs=KNOBS):
    """Volume / volume-to-size ratio hot-spot mitigation, topology-blind."""
    topo, eng = sc.topo, sc.eng
    usage = _copy_usage(sc.usage)
    placement = dict(sc.placement)
    moves = []
    t = time.perf_counter()
    cap = {h: topo.host_cap[topo.host_index[h]] for h in topo.host_names}

    def vol(c, r, n):
        c, r, n = (min(x, 0.99) for x in (c, r, n))
        return 1.0 / ((1 - c) * (1 - r) * (1 - n))

    tried = set()
    while len(moves) < budget:
        up, _ = advisor.utilisation(eng, sc.traffic, placement)
        net = {h: float(up[topo.host_index[h]]) for h in topo.host_names}
        hot = [h for h, u in usage.items() if advisor.overloaded(u, knobs)]
        hot = [h for h in hot if h not in tried]
        if not hot:
            break
        hostvol = {h: vol(usage[h].cpu(), usage[h].ram(), net[h])
                   for h in topo.host_names}
        h = max(hot, key=lambda x: (hostvol[x], x))
        vms = [s for s, hh in placement.items() if hh == h]
        u = usage[h]

        def vsr(s):
            srv = sc.servers[s]
            pe = sc.traffic.peers(s).values()
            n = max(sum(o for o, _ in pe), sum(i for _, i in pe)) / cap[h]
            v = vol(srv.vcpus / u.vcpus, srv.memory_mb / u.memory_mb, n)
            return v / srv.memory_mb
        moved = False
        for s in sorted(vms, key=lambda s: (-vsr(s), s)):
            srv = sc.servers[s]
            dests = [d for d in topo.host_names
                     if d != h and _fits(usage[d], srv)]
            if not dests:
                continue
            d = min(dests, key=lambda x: (hostvol[x], x))
            _apply(usage, srv, h, d)
            placement[s] = d
            moves.append((s, h, d))
            moved = True
            break
        if not moved:
            tried.add(h)
    return Decision('sandpiper', moves, time.perf_counter() - t)


def apply_moves(sc, moves):
    placement = dict(sc.placement)
    usage = _copy_usage(sc.usage)
    for s, src, dst in moves:
        _apply(usage, sc.servers[s], src, dst)
        placement[s] = dst
    return placement, usage


def migration_volume_mib(sc, moves, params):
    """Pre-copy bytes of each move, in MiB, from the core's model.

    Each move is evaluated by the engine in the state left by the moves
    before it (the bottleneck bandwidth source -> destination with the
    current loads), with the same parameters for every method.
    """
    from nova_netaware.core.engine import Candidate
    placement = dict(sc.placement)
    out = []
    for s, src, dst in moves:
        ev = sc.eng.evaluate(sc.traffic, placement, sc.servers[s],
                             [Candidate(dst)], params)
        out.append(float(ev.volume_mb[0]))
        placement[s] = dst
    return np.array(out)
