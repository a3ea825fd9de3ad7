"""The rebalance plan: where each selected server goes, and whether.

Each selected server (:func:`~nova_netaware.advisor.selection.select`) is
placed with the same :class:`~nova_netaware.core.engine.Engine` as the
Nova filter and weigher: the passing host with the lowest MIF, or no move
when none passes or the best host is no better than staying. The plan
updates the placement and host usage after each step, so later steps see
earlier moves. A host is a candidate only if it stays within the CPU and
RAM thresholds with the server added: moving a hot spot to another host
does not relieve it, and the next run would select it again.

**Worth it.** A move *relieves* when its source host is still overloaded,
or when a link is still congested and the move lowers the busiest link's
utilisation. Any other move is an *improvement* and is planned only if it
lowers the network cost by at least ``min_gain`` times the server's own
traffic cost before the move (:func:`nova_netaware.core.cost.server_cost`);
a migration copies the server's memory, so a gain of a few per cent does
not pay for it. ``min_gain=0`` plans every improvement, however small.
"""

import dataclasses
from typing import Dict, List, Optional

from nova_netaware.advisor.hotspots import hot_spots
from nova_netaware.advisor.hotspots import link_name
from nova_netaware.advisor.hotspots import max_utilisation
from nova_netaware.advisor.hotspots import overloaded
from nova_netaware.advisor.hotspots import overloaded_with
from nova_netaware.advisor.params import resolve
from nova_netaware.advisor.selection import select
from nova_netaware.core import cost
from nova_netaware.core import engine as core_engine


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


def _candidates(topo, usage, src, srv, knobs):
    """Hosts other than *src* that stay within the thresholds with *srv*."""
    cands = []
    for h in topo.host_names:
        if h == src or h not in usage:
            continue
        u = usage[h]
        if overloaded_with(u, srv, knobs):
            continue
        cands.append(core_engine.Candidate(
            h, u.memory_mb - u.memory_mb_used, u.vcpus - u.vcpus_used))
    return cands


def _refusal(eng, traffic, placement, moved, uuid, util, knobs):
    """Judge an improvement move (its source host is not overloaded).

    Returns ``(util, util_moved, note)``: the busiest link's utilisation
    before (computed if *util* is ``None``) and after the move (``None``
    when no link is congested), and why the move is not worth it (``None``
    when it is).
    """
    util_moved = None
    if util is None:
        util = max_utilisation(eng, traffic, placement)
    if util > knobs.link_threshold:
        util_moved = max_utilisation(eng, traffic, moved)
    relieves = util_moved is not None and util_moved < util
    own = cost.server_cost(eng.topo, traffic, placement, uuid)
    gain = own - cost.server_cost(eng.topo, traffic, moved, uuid)
    if relieves or not (gain <= 0 or gain < knobs.min_gain * own):
        return util, util_moved, None
    best = moved[uuid]
    return util, util_moved, (
        'hot spot relieved; best host %s would lower the network cost by '
        '%.0f Mbit/s x hop (%.0f%% of the server\'s %.0f), below the '
        'minimum gain of %.0f%%' % (
            best, gain, 100.0 * gain / own if own else 0.0, own,
            100.0 * knobs.min_gain))


def _move_usage(usage, srv, src, dst):
    for h, sign in ((src, -1), (dst, 1)):
        if h in usage:
            usage[h].vcpus_used += sign * srv.vcpus
            usage[h].memory_mb_used += sign * srv.memory_mb


def plan(eng, traffic, placement, servers, usage, params=None,
         selection=None, knobs=None, **overrides):
    """Build a rebalance plan (nothing is changed).

    :param servers: ``{uuid: Server}`` (memory and vCPUs from the flavor)
    :param usage: ``{host: HostUsage}`` for every compute host
    :param params: the engine's :class:`~nova_netaware.core.engine.Params`
    :param selection: ``[(server, incoming, why)]`` to place in this order
        instead of :func:`select`'s (for experiments; the commands always
        use :func:`select`)
    :param knobs: :class:`~nova_netaware.advisor.params.AdvisorParams`
        (defaults when ``None``); keyword *overrides* such as
        ``max_migrations=2`` or ``min_gain=0`` replace single knobs
    """
    knobs = resolve(knobs, **overrides)
    params = params or core_engine.Params()
    placement = dict(placement)
    usage = {h: dataclasses.replace(u) for h, u in usage.items()}
    topo = eng.topo
    cost0 = cost.network_cost(topo, traffic, placement)
    util0 = max_utilisation(eng, traffic, placement)
    over, hot_up, hot_fab = hot_spots(eng, traffic, placement, usage, knobs)
    over0 = list(over)
    steps = []
    util = util0            # of the current placement; None = not known
    if selection is None:
        selection = select(eng, traffic, placement, over, hot_up, hot_fab)
    for uuid, incoming, why in selection:
        if len([s for s in steps if s.destination]) >= knobs.max_migrations:
            break
        src = placement.get(uuid)
        srv = servers.get(uuid) or core_engine.Server(uuid)
        srv = dataclasses.replace(srv, is_move=True)
        cands = _candidates(topo, usage, src, srv, knobs)
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
            util, util_moved, note = _refusal(eng, traffic, placement, moved,
                                              uuid, util, knobs)
            if note is not None:
                steps.append(Step(uuid, src, None, incoming, why,
                                  mif=float(ev.mif[i]), note=note))
                continue
        placement = moved
        util = util_moved
        _move_usage(usage, srv, src, best)
        steps.append(Step(uuid, src, best, incoming, why,
                          mif=float(ev.mif[i]),
                          volume_mb=float(ev.volume_mb[i])))
        over = [h for h in over if overloaded(usage[h], knobs)]
    if util is None:
        util = max_utilisation(eng, traffic, placement)
    return Plan(steps, cost0, cost.network_cost(topo, traffic, placement),
                util0, util, over0,
                hot_up + [link_name(eng, k) for k in hot_fab], placement)
