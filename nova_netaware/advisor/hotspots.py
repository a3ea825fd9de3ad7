"""Hot spots: overloaded hosts and congested links.

A host is overloaded when its CPU or RAM use exceeds a threshold (fractions
of the allocatable capacity). A link is congested when its utilisation
(the traffic matrix routed over the topology,
:mod:`nova_netaware.core.loads`) exceeds a threshold. The thresholds are
those of :class:`~nova_netaware.advisor.params.AdvisorParams`.
"""

import dataclasses

import numpy as np

from nova_netaware.advisor.params import resolve
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


def overloaded(u, knobs):
    """Is host usage *u* above the CPU or RAM threshold of *knobs*?"""
    return u.cpu() > knobs.cpu_threshold or u.ram() > knobs.ram_threshold


def overloaded_with(u, srv, knobs):
    """Would host usage *u* exceed a threshold with *srv* added?"""
    cpu = (u.vcpus_used + srv.vcpus) / u.vcpus if u.vcpus else 0.0
    ram = ((u.memory_mb_used + srv.memory_mb) / u.memory_mb
           if u.memory_mb else 0.0)
    return cpu > knobs.cpu_threshold or ram > knobs.ram_threshold


def utilisation(eng, traffic, placement):
    """``(uplink util per host, fabric util per link)`` for a placement."""
    ld = loads_mod.route_flows(eng.fabric, loads_mod.placement_flows(
        eng.topo, traffic, placement))
    up = np.maximum(ld.up, ld.down) / eng.topo.host_cap
    fab = ld.links / eng.fabric.cap if eng.fabric.m else np.zeros(0)
    return up, fab


def max_utilisation(eng, traffic, placement):
    """The busiest link's utilisation, host uplinks and fabric links."""
    up, fab = utilisation(eng, traffic, placement)
    return float(max(up.max() if up.size else 0.0,
                     fab.max() if fab.size else 0.0))


def link_name(eng, k):
    """``switch-switch`` name of fabric link *k* (Fabric order)."""
    topo, fab = eng.topo, eng.fabric
    return '%s-%s' % (topo.switch_names[fab.eu[k]],
                      topo.switch_names[fab.ev[k]])


def hot_spots(eng, traffic, placement, usage, knobs=None, **overrides):
    """Return ``(overloaded hosts, congested uplink hosts, congested fabric
    links as (u, v) switch index pairs in Fabric order)``.

    :param knobs: :class:`~nova_netaware.advisor.params.AdvisorParams`
        (defaults when ``None``); keyword *overrides* such as
        ``link_threshold=0.5`` replace single knobs.
    """
    knobs = resolve(knobs, **overrides)
    over = sorted(h for h, u in usage.items() if overloaded(u, knobs))
    up, fab = utilisation(eng, traffic, placement)
    hot_up = [eng.topo.host_names[i] for i in np.flatnonzero(
        up > knobs.link_threshold)]
    hot_fab = [int(k) for k in np.flatnonzero(fab > knobs.link_threshold)]
    return over, hot_up, hot_fab
