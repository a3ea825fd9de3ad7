"""Scenarios of the decision-quality benchmark.

Everything comes from the core's generators and data types, with a seeded
:class:`numpy.random.Generator`, so a (topology, mix, seed) triple always
gives the same scenario.

* **Topologies**: ``fat_tree(k)`` and ``leaf_spine(...)`` from
  :mod:`nova_netaware.core.topology`.
* **Hosts**: 32 vCPUs and 128 GiB each (allocation ratio 1.0).
* **Workload**: multi-tier applications (web, app, db). Every web VM talks
  to every app VM and every app VM to every db VM, in both directions
  (request and response). A flow's rate is lognormal (median
  ``median_mbps``, sigma 0.7) times a per-application lognormal intensity
  (sigma 0.8), so a few applications and flows dominate, as measured in
  production datacenters (Benson et al., IMC'10).
* **Locality mix**: each application has a home rack (top-of-rack switch).
  Each VM goes to a host of the home rack with probability ``p_local``
  (if one has room), else to a random host with room. ``rack-local`` uses
  ``p_local = 0.9``, ``cross-rack`` ``0.1``; the share of traffic that
  stays inside racks is measured and reported.
* **Capacity**: each host gets a fill cap drawn uniformly in [0.6, 0.8] of
  its CPU and RAM; applications are added until the cluster cannot take
  more under those caps, so hosts end 60-80% full (reported).
* **Hot spots**: ``n_hot`` hosts then receive scale-out VMs of
  applications (of their own rack for the rack-local mix, random for the
  cross-rack mix) until their CPU or RAM exceeds 92-99%, above the
  advisor's 90% overload threshold.
"""

import dataclasses
from typing import Dict, List

import numpy as np

from nova_netaware import advisor
from nova_netaware.core.engine import Engine
from nova_netaware.core.engine import Server
from nova_netaware.core.topology import fat_tree
from nova_netaware.core.topology import leaf_spine
from nova_netaware.core.topology import Topology
from nova_netaware.core.traffic import TrafficMatrix

HOST_VCPUS = 32
HOST_RAM_MB = 131072

# (vcpus, memory_mb) choices per tier
FLAVORS = {
    'web': [(2, 4096), (2, 8192), (4, 8192)],
    'app': [(4, 8192), (4, 16384), (8, 16384)],
    'db': [(4, 32768), (8, 32768), (8, 65536)],
}


@dataclasses.dataclass
class Scenario:
    name: str
    topology: str
    mix: str
    seed: int
    topo: Topology
    eng: Engine
    traffic: TrafficMatrix
    placement: Dict[str, str]
    servers: Dict[str, Server]
    usage: Dict[str, advisor.HostUsage]
    hot_hosts: List[str]
    apps: Dict[str, List[str]]
    info: Dict[str, float]


TOPOLOGIES = {
    # 128 hosts, 4 per edge switch, 1:1 (10G everywhere)
    'fat-tree-k8': lambda: fat_tree(8, link_gbps=10, uplink_gbps=10),
    # 128 hosts, 16 per leaf, 4 spines: 16 x 10G down, 4 x 40G up (1:1)
    'leaf-spine-4x8x16': lambda: leaf_spine(4, 8, 16, uplink_gbps=10,
                                            fabric_gbps=40),
    # 16 hosts, 2 per edge switch: small enough for the exact ILP
    'fat-tree-k4': lambda: fat_tree(4, link_gbps=10, uplink_gbps=10),
}

MIXES = {'rack-local': 0.9, 'cross-rack': 0.1}


def _tiers(rng, rack_size):
    """Tier sizes; applications fit in about half a rack."""
    if rack_size <= 2:
        return {'web': int(rng.integers(1, 4)), 'app': int(rng.integers(1, 3)),
                'db': 1}
    if rack_size <= 4:
        return {'web': int(rng.integers(2, 5)), 'app': int(rng.integers(1, 4)),
                'db': int(rng.integers(1, 3))}
    return {'web': int(rng.integers(2, 7)), 'app': int(rng.integers(2, 6)),
            'db': int(rng.integers(1, 4))}


def build(topology, mix, seed, n_hot=None, median_mbps=None):
    """Build one scenario; see the module docstring."""
    rng = np.random.default_rng([seed, sorted(TOPOLOGIES).index(topology),
                                 sorted(MIXES).index(mix)])
    data = TOPOLOGIES[topology]()
    topo = Topology(data, source=topology)
    eng = Engine(topo)
    hosts = list(topo.host_names)
    small = len(hosts) <= 32
    if n_hot is None:
        n_hot = 3 if small else 4
    if median_mbps is None:
        median_mbps = 60.0 if small else 40.0
    p_local = MIXES[mix]
    rack = {h: int(topo.host_switch[topo.host_index[h]]) for h in hosts}
    racks = sorted(set(rack.values()))
    rack_hosts = {r: [h for h in hosts if rack[h] == r] for r in racks}
    rack_size = min(len(v) for v in rack_hosts.values())
    cpu_used = {h: 0.0 for h in hosts}
    ram_used = {h: 0.0 for h in hosts}
    fill_cap = {h: float(rng.uniform(0.6, 0.8)) for h in hosts}

    def fits(h, vc, mb, cap):
        return (cpu_used[h] + vc <= cap * HOST_VCPUS + 1e-9 and
                ram_used[h] + mb <= cap * HOST_RAM_MB + 1e-9)

    placement, servers, apps, tier_of = {}, {}, {}, {}
    flows = []
    home = {}

    def place_vm(app, tier, host_choice):
        vc, mb = FLAVORS[tier][int(rng.integers(len(FLAVORS[tier])))]
        h = host_choice(vc, mb)
        if h is None:
            return None
        uuid = '%s-%s%d' % (app, tier, sum(
            1 for s in apps[app] if tier_of[s] == tier) + 1)
        placement[uuid] = h
        servers[uuid] = Server(uuid, memory_mb=mb, vcpus=vc)
        cpu_used[h] += vc
        ram_used[h] += mb
        apps[app].append(uuid)
        tier_of[uuid] = tier
        return uuid

    def normal_choice(app):
        def choose(vc, mb):
            if rng.random() < p_local:
                cands = [h for h in rack_hosts[home[app]]
                         if fits(h, vc, mb, fill_cap[h])]
                if cands:
                    return cands[int(rng.integers(len(cands)))]
            cands = [h for h in hosts if fits(h, vc, mb, fill_cap[h])]
            if not cands:
                return None
            return cands[int(rng.integers(len(cands)))]
        return choose

    intensity = {}

    def add_flows(app, new):
        """Flows between *new* VMs and the existing ones of their app."""
        links = {('web', 'app'), ('app', 'web'), ('app', 'db'),
                 ('db', 'app')}
        for s in new:
            for p in apps[app]:
                if p == s or (p in new and p < s):
                    continue
                if (tier_of[s], tier_of[p]) not in links:
                    continue
                for a, b in ((s, p), (p, s)):
                    # responses (towards the front tier) are heavier
                    up = 1.5 if ((tier_of[a], tier_of[b]) in
                                 {('app', 'web'), ('db', 'app')}) else 1.0
                    r = intensity[app] * up * float(rng.lognormal(
                        np.log(median_mbps), 0.7))
                    flows.append({'src': a, 'dst': b, 'mbps': round(r, 3)})

    n = 0
    misses = 0
    while misses < 3:
        n += 1
        app = 'app%03d' % n
        apps[app] = []
        # home rack: the rack with the most free CPU, ties at random
        free = {r: sum(fill_cap[h] * HOST_VCPUS - cpu_used[h]
                       for h in rack_hosts[r]) for r in racks}
        best = max(free.values())
        home[app] = [r for r in racks if free[r] >= best - 1e-9][
            int(rng.integers(sum(1 for r in racks
                                 if free[r] >= best - 1e-9)))]
        intensity[app] = float(rng.lognormal(0.0, 0.8))
        new = []
        for tier, count in _tiers(rng, rack_size).items():
            for _ in range(count):
                u = place_vm(app, tier, normal_choice(app))
                if u is not None:
                    new.append(u)
        if len(new) < 2:
            misses += 1
            for u in new:
                h = placement.pop(u)
                cpu_used[h] -= servers[u].vcpus
                ram_used[h] -= servers[u].memory_mb
                del servers[u]
            del apps[app]
            continue
        add_flows(app, new)

    # Top up hosts left under 60%: scale-out VMs of their rack's
    # applications (rack-local) or of random applications (cross-rack).
    def fill(h):
        return max(cpu_used[h] / HOST_VCPUS, ram_used[h] / HOST_RAM_MB)

    for h in hosts:
        tries = 0
        while fill(h) < 0.6 and tries < 50:
            tries += 1
            local_apps = [a for a in apps if home[a] == rack[h]]
            pool = (local_apps if mix == 'rack-local' and local_apps and
                    rng.random() < p_local else list(apps))
            app = pool[int(rng.integers(len(pool)))]
            tier = ['web', 'app', 'db'][int(rng.integers(3))]
            u = place_vm(app, tier, lambda vc, mb, h=h: (
                h if fits(h, vc, mb, max(fill_cap[h], 0.7)) else None))
            if u is not None:
                add_flows(app, [u])

    # Hot spots: scale-out VMs land on a few hosts until they pass the
    # advisor's overload thresholds (90%).
    knobs = advisor.AdvisorParams()

    def overloaded(h):
        return advisor.overloaded(advisor.HostUsage(
            HOST_VCPUS, cpu_used[h], HOST_RAM_MB, ram_used[h]), knobs)

    order = list(hosts)
    rng.shuffle(order)
    hot = sorted(order[:n_hot], key=hosts.index)
    for h in hot:
        target = float(rng.uniform(0.92, 0.99))
        local_apps = [a for a in apps if home[a] == rack[h]] or list(apps)
        pool = local_apps if mix == 'rack-local' else list(apps)
        tries = 0
        while not overloaded(h) and tries < 100:
            tries += 1
            app = pool[int(rng.integers(len(pool)))]
            tier = ['web', 'app'][int(rng.integers(2))]

            cap = target if tries <= 20 else 1.0

            def choose(vc, mb, h=h, cap=cap):
                return h if fits(h, vc, mb, cap) else None
            u = place_vm(app, tier, choose)
            if u is not None:
                add_flows(app, [u])

    traffic = TrafficMatrix({'flows': flows}, source='%s/%s/%d' % (
        topology, mix, seed))
    usage = {h: advisor.HostUsage(HOST_VCPUS, cpu_used[h], HOST_RAM_MB,
                                  ram_used[h]) for h in hosts}
    # measured locality: share of traffic within a rack (or a host)
    local = total = 0.0
    for (a, b), r in traffic.rates.items():
        total += r
        if rack[placement[a]] == rack[placement[b]]:
            local += r
    fill = np.array([max(usage[h].cpu(), usage[h].ram()) for h in hosts
                     if h not in hot])
    info = {
        'vms': len(placement), 'apps': len(apps), 'flows': len(traffic),
        'hosts': len(hosts), 'rack_local_share': local / total,
        'fill_min': float(fill.min()), 'fill_median': float(
            np.median(fill)), 'fill_max': float(fill.max()),
        'hot_fill_min': min(max(usage[h].cpu(), usage[h].ram())
                            for h in hot) if hot else 0.0,
        'total_mbps': total,
    }
    return Scenario('%s/%s/s%d' % (topology, mix, seed), topology, mix, seed,
                    topo, eng, traffic, placement, servers, usage, hot, apps,
                    info)
