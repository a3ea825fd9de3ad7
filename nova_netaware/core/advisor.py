"""Rebalance advisor: which servers to move, and where.

1. **Hot spots.** A host is overloaded when its CPU or RAM use exceeds a
   threshold (fractions of the allocatable capacity). A link is congested
   when its utilisation (the traffic matrix routed over the topology,
   :mod:`nova_netaware.core.loads`) exceeds a threshold.
2. **Selection.** The servers involved are those on overloaded hosts, those
   on a host whose uplink is congested, and those with a flow on a shortest
   path that crosses a congested fabric link. They are taken in descending
   order of **incoming traffic** (sum of rates to the server).
3. **Placement.** Each selected server is placed with the same
   :class:`~nova_netaware.core.engine.Engine` as the Nova filter and
   weigher: the passing host with the lowest MIF, or no move when none
   passes or the best host is no better than staying. The plan updates the
   placement and host usage after each step, so later steps see earlier
   moves. A host is a candidate only if it stays within the CPU and RAM
   thresholds with the server added: moving a hot spot to another host
   does not relieve it, and the next run would select it again.
4. **Worth it.** A move *relieves* when its source host is still
   overloaded, or when a link is still congested and the move lowers the
   busiest link's utilisation. Any other move is an *improvement* and is
   planned only if it lowers the network cost by at least ``min_gain``
   times the server's own traffic cost before the move
   (``sum over its flows of rate x hops``); a migration copies the server's
   memory, so a gain of a few per cent does not pay for it. ``min_gain=0``
   plans every improvement, however small.

Quality measures, each defined once here:

* ``network_cost = sum over flows of rate x hops(host(src), host(dst))``
  (Meng et al., INFOCOM'10), in Mbit/s x hop;
* ``max_utilisation``: the busiest link, host uplinks and fabric links.
"""

import dataclasses
from typing import Dict, List, Optional

import numpy as np

from nova_netaware.core import engine as core_engine
from nova_netaware.core import loads as loads_mod


@dataclasses.dataclass
class HostUsage:
    """Allocatable capacity and use of a host (from Placement, as Nova
    schedules: ``(total - reserved) x allocation ratio`` and usages)."""
    vcpus: float
    vcpus_used: float
    memory_mb: float
    memory_mb_used: float

    def cpu(self):
        return self.vcpus_used / self.vcpus if self.vcpus else 0.0

    def ram(self):
        return self.memory_mb_used / self.memory_mb if self.memory_mb else 0.0


@dataclasses.dataclass
class Step:
    server: str
    source: str
    destination: Optional[str]
    incoming_mbps: float
    why: str
    mif: Optional[float] = None
    volume_mb: float = 0.0
    note: str = ''


@dataclasses.dataclass
class Plan:
    steps: List[Step]
    cost_before: float
    cost_after: float
    util_before: float
    util_after: float
    overloaded_hosts: List[str]
    congested_links: List[str]
    placement_after: Dict[str, str]

    @property
    def moves(self):
        return [s for s in self.steps if s.destination]


def network_cost(topo, traffic, placement):
    """``sum_flows rate x hops``; flows with an unplaced end are skipped."""
    total = 0.0
    for (a, b), r in traffic.rates.items():
        ia = topo.host_index.get(placement.get(a))
        ib = topo.host_index.get(placement.get(b))
        if ia is not None and ib is not None:
            total += r * topo.host_hops(ia, ib)
    return total


def utilisation(eng, traffic, placement):
    """``(uplink util per host, fabric util per link)`` for a placement."""
    ld = loads_mod.route_flows(eng.fabric, loads_mod.placement_flows(
        eng.topo, traffic, placement))
    up = np.maximum(ld.up, ld.down) / eng.topo.host_cap
    fab = ld.links / eng.fabric.cap if eng.fabric.m else np.zeros(0)
    return up, fab


def max_utilisation(eng, traffic, placement):
    up, fab = utilisation(eng, traffic, placement)
    return float(max(up.max() if up.size else 0.0,
                     fab.max() if fab.size else 0.0))


def hot_spots(eng, traffic, placement, usage, cpu_threshold=0.9,
              ram_threshold=0.9, link_threshold=0.8):
    """Return ``(overloaded hosts, congested uplink hosts, congested fabric
    links as (u, v) switch index pairs in Fabric order)``."""
    over = sorted(h for h, u in usage.items()
                  if u.cpu() > cpu_threshold or u.ram() > ram_threshold)
    up, fab = utilisation(eng, traffic, placement)
    hot_up = [eng.topo.host_names[i] for i in np.flatnonzero(
        up > link_threshold)]
    hot_fab = [int(k) for k in np.flatnonzero(fab > link_threshold)]
    return over, hot_up, hot_fab


def select(eng, traffic, placement, over, hot_up, hot_fab):
    """Servers involved in the hot spots, highest incoming traffic first.

    Returns ``[(server, incoming Mbit/s, why)]``.
    """
    topo, fab = eng.topo, eng.fabric
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
        hot = np.zeros(fab.m, dtype=bool)
        hot[hot_fab] = True
        names = {k: '%s-%s' % (topo.switch_names[fab.eu[k]],
                               topo.switch_names[fab.ev[k]])
                 for k in hot_fab}
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
    ranked = sorted(why, key=lambda s: (-traffic.incoming(s), s))
    return [(s, traffic.incoming(s), why[s]) for s in ranked]


def _overloaded_with(u, srv, cpu_threshold, ram_threshold):
    """Would host usage *u* exceed a threshold with *srv* added?"""
    cpu = (u.vcpus_used + srv.vcpus) / u.vcpus if u.vcpus else 0.0
    ram = ((u.memory_mb_used + srv.memory_mb) / u.memory_mb
           if u.memory_mb else 0.0)
    return cpu > cpu_threshold or ram > ram_threshold


def server_cost(topo, traffic, placement, uuid):
    """``sum over the flows of *uuid* of rate x hops`` (its share of
    :func:`network_cost`)."""
    ia = topo.host_index.get(placement.get(uuid))
    if ia is None:
        return 0.0
    total = 0.0
    for p, (out_mbps, in_mbps) in traffic.peers(uuid).items():
        ib = topo.host_index.get(placement.get(p))
        if ib is not None:
            total += (out_mbps + in_mbps) * topo.host_hops(ia, ib)
    return total


def plan(eng, traffic, placement, servers, usage, params=None,
         max_migrations=5, cpu_threshold=0.9, ram_threshold=0.9,
         link_threshold=0.8, min_gain=0.1, selection=None):
    """Build a rebalance plan (nothing is changed).

    :param servers: ``{uuid: Server}`` (memory and vCPUs from the flavor)
    :param usage: ``{host: HostUsage}`` for every compute host
    :param min_gain: an improvement move (one that relieves no hot spot)
        must lower the network cost by this fraction of the server's own
        traffic cost (rule 4 of the module docstring)
    :param selection: ``[(server, incoming, why)]`` to place in this order
        instead of :func:`select`'s (for experiments; the commands always
        use :func:`select`)
    """
    params = params or core_engine.Params()
    placement = dict(placement)
    usage = {h: dataclasses.replace(u) for h, u in usage.items()}
    topo = eng.topo
    cost0 = network_cost(topo, traffic, placement)
    util0 = max_utilisation(eng, traffic, placement)
    over, hot_up, hot_fab = hot_spots(eng, traffic, placement, usage,
                                      cpu_threshold, ram_threshold,
                                      link_threshold)
    over0 = list(over)
    fab_names = ['%s-%s' % (topo.switch_names[eng.fabric.eu[k]],
                            topo.switch_names[eng.fabric.ev[k]])
                 for k in hot_fab]
    steps = []
    util = util0            # of the current placement; None = not known
    if selection is None:
        selection = select(eng, traffic, placement, over, hot_up, hot_fab)
    for uuid, incoming, why in selection:
        if len([s for s in steps if s.destination]) >= max_migrations:
            break
        src = placement.get(uuid)
        srv = servers.get(uuid) or core_engine.Server(uuid)
        srv = dataclasses.replace(srv, is_move=True)
        cands = []
        for h in topo.host_names:
            if h == src or h not in usage:
                continue
            u = usage[h]
            if _overloaded_with(u, srv, cpu_threshold, ram_threshold):
                continue
            cands.append(core_engine.Candidate(
                h, u.memory_mb - u.memory_mb_used, u.vcpus - u.vcpus_used))
        if not cands:
            steps.append(Step(uuid, src, None, incoming, why,
                              note='no candidate host (all would exceed '
                                   'the CPU or RAM threshold)'))
            continue
        ev = eng.evaluate(traffic, placement, srv, cands, params)
        best = ev.winner
        if best is None:
            steps.append(Step(uuid, src, None, incoming, why,
                              note='no host passes the constraints'))
            continue
        i = ev.hosts.index(best)
        moved = dict(placement)
        moved[uuid] = best
        util_moved = None
        if src not in over:
            if util is None:
                util = max_utilisation(eng, traffic, placement)
            if util > link_threshold:
                util_moved = max_utilisation(eng, traffic, moved)
            relieves = util_moved is not None and util_moved < util
            own = server_cost(topo, traffic, placement, uuid)
            gain = own - server_cost(topo, traffic, moved, uuid)
            if not relieves and (gain <= 0 or gain < min_gain * own):
                steps.append(Step(
                    uuid, src, None, incoming, why, mif=float(ev.mif[i]),
                    note='hot spot relieved; best host %s would lower the '
                         'network cost by %.0f Mbit/s x hop (%.0f%% of the '
                         'server\'s %.0f), below the minimum gain of %.0f%%'
                         % (best, gain, 100.0 * gain / own if own else 0.0,
                            own, 100.0 * min_gain)))
                continue
        placement = moved
        util = util_moved
        for h, sign in ((src, -1), (best, 1)):
            if h in usage:
                usage[h].vcpus_used += sign * srv.vcpus
                usage[h].memory_mb_used += sign * srv.memory_mb
        steps.append(Step(uuid, src, best, incoming, why,
                          mif=float(ev.mif[i]),
                          volume_mb=float(ev.migration[i] / max(
                              topo.host_hops(topo.host_index[src],
                                             topo.host_index[best]), 1))
                          if src in topo.host_index else 0.0))
        over = [h for h in over if usage[h].cpu() > cpu_threshold or
                usage[h].ram() > ram_threshold]
    if util is None:
        util = max_utilisation(eng, traffic, placement)
    return Plan(steps, cost0, network_cost(topo, traffic, placement), util0,
                util, over0, hot_up + fab_names, placement)
