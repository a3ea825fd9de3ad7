"""Brute force: one engine decision is exactly optimal for its own MIF.

For a server to move, every host of a small datacenter is enumerated and
its verdict and MIF are recomputed here **independently of the engine**:
distances and equal-cost paths come from :mod:`networkx` on the topology
file data, link loads from a per-flow walk of the fluid ECMP split, the
pre-copy volume from a round-by-round loop, and each term and constraint
from its documented definition (``nova_netaware/core/impact.py`` and
``constraints.py``):

    comm(c)       = sum_p r_p * hops(c, host(p))
    migration(c)  = V(c) * hops(s, c),  V = M (1 - lam^(n+1)) / (1 - lam)
    congestion(c) = max utilisation of the links the server's traffic uses
                    after the move (with that traffic added)
    MIF(c) = w_comm comm/(R H) + w_mig migration/(M H) + w_cong congestion

The test asserts that the engine refuses exactly the hosts that break a
hard constraint, that its MIF equals the recomputed one for every host, and
that its winner has the minimal MIF among the passing hosts. The checker
itself is shown to reject a non-optimal choice.
"""

import itertools

import networkx as nx
import numpy as np
import pytest

from nova_netaware.core.engine import Candidate
from nova_netaware.core.engine import Engine
from nova_netaware.core.engine import Params
from nova_netaware.core.engine import Server
from nova_netaware.core.topology import fat_tree
from nova_netaware.core.topology import leaf_spine
from nova_netaware.core.topology import Topology
from nova_netaware.core.traffic import TrafficMatrix

MBIT_PER_MB = 8.388608      # the engine's memory unit is MiB ("MB")


# -- an independent model of the datacenter ----------------------------------

class Model(object):
    """Hops, ECMP paths and loads, from the raw topology data only."""

    def __init__(self, data):
        self.g = nx.Graph()
        self.cap = {}
        for link in data['links']:
            self.g.add_edge(link['a'], link['b'])
            self.cap[(link['a'], link['b'])] = link['gbps'] * 1000.0
            self.cap[(link['b'], link['a'])] = link['gbps'] * 1000.0
        self.sw = {h['name']: h['switch'] for h in data['hosts']}
        self.up_cap = {h['name']: h['uplink_gbps'] * 1000.0
                       for h in data['hosts']}
        self.d = dict(nx.all_pairs_shortest_path_length(self.g))
        full = self.g.copy()
        for h, s in self.sw.items():
            full.add_edge(h, s)
        hd = dict(nx.all_pairs_shortest_path_length(full))
        self.hosts = list(self.sw)
        self.hd = {(a, b): (0 if a == b else hd[a][b])
                   for a in self.hosts for b in self.hosts}
        self.H = max(self.hd.values())

    def hops(self, a, b):
        return self.hd[(a, b)]

    def path_links(self, s, t):
        """Directed links on any shortest path from switch s to switch t."""
        out = set()
        if s == t:
            return out
        for path in nx.all_shortest_paths(self.g, s, t):
            out |= set(zip(path, path[1:]))
        return out

    def loads(self, flows):
        """Per-flow fluid ECMP: ``(up, down, links)`` in Mbit/s."""
        up = {h: 0.0 for h in self.hosts}
        down = {h: 0.0 for h in self.hosts}
        links = {e: 0.0 for e in self.cap}
        for a, b, r in flows:
            if a == b:
                continue
            up[a] += r
            down[b] += r
            self._spread(self.sw[a], self.sw[b], r, links)
        return up, down, links

    def _spread(self, node, dst, amount, links):
        if node == dst:
            return
        nxt = [n for n in self.g.neighbors(node)
               if self.d[n][dst] == self.d[node][dst] - 1]
        for n in nxt:
            links[(node, n)] += amount / len(nxt)
            self._spread(n, dst, amount / len(nxt), links)


def precopy_volume_mb(memory_mb, dirty, bw, downtime_s, max_rounds):
    """Round-by-round pre-copy: ``(volume MB, converges, time s)``."""
    if not bw > 0 or dirty >= bw:
        return memory_mb * (max_rounds + 1), False, np.inf
    m = memory_mb * MBIT_PER_MB
    lam = dirty / bw
    n = 1
    while m * lam ** n / bw > downtime_s and n < max_rounds:
        n += 1
    sent = sum(m * lam ** i for i in range(n + 1))      # rounds 0..n
    converges = m * lam ** n / bw <= downtime_s * (1 + 1e-9)
    return sent / MBIT_PER_MB, converges, sent / bw


def brute_force(model, rates, placement, server, free, params):
    """Verdict and MIF of every host but the source, from the definitions.

    :returns: ``{host: (passed, mif)}``
    """
    v = server.uuid
    src = placement[v]
    others = [(placement[a], placement[b], r) for (a, b), r in rates.items()
              if v not in (a, b)]
    up, down, links = model.loads(others)
    out, inn = {}, {}
    for (a, b), r in rates.items():
        if a == v:
            out[placement[b]] = out.get(placement[b], 0.0) + r
        elif b == v:
            inn[placement[a]] = inn.get(placement[a], 0.0) + r
    peer_hosts = sorted(set(out) | set(inn))
    R = sum(out.values()) + sum(inn.values())
    ceil = params.max_link_utilization
    res = {}
    for c in model.hosts:
        if c == src:
            continue
        sc = model.sw[c]
        # -- communication cost
        comm = sum((out.get(p, 0.0) + inn.get(p, 0.0)) * model.hops(c, p)
                   for p in peer_hosts)
        # -- links used after the move, with this server's traffic added
        up_add = sum(r for p, r in out.items() if p != c)
        down_add = sum(r for p, r in inn.items() if p != c)
        util_up = (up[c] + up_add) / model.up_cap[c]
        util_down = (down[c] + down_add) / model.up_cap[c]
        used = [util_up, util_down]
        path_check = [0.0]
        by_switch = {}
        for p in peer_hosts:
            t = model.sw[p]
            o, i = by_switch.get(t, (0.0, 0.0))
            by_switch[t] = (o + out.get(p, 0.0), i + inn.get(p, 0.0))
            if p != c:      # the peer's own uplink carries the traffic
                used.append((down[p] + out.get(p, 0.0)) / model.up_cap[p])
                used.append((up[p] + inn.get(p, 0.0)) / model.up_cap[p])
        for t, (o, i) in by_switch.items():
            fwd = model.path_links(sc, t)
            back = model.path_links(t, sc)
            already_fwd = model.path_links(model.sw[src], t)
            already_back = model.path_links(t, model.sw[src])
            for e in fwd:
                u = (links[e] + o) / model.cap[e]
                used.append(u)
                if e not in already_fwd:
                    path_check.append(u)
            for e in back:
                u = (links[e] + i) / model.cap[e]
                used.append(u)
                if e not in already_back:
                    path_check.append(u)
        # the source's uplink gains the traffic to peers left behind
        if src in peer_hosts:
            path_check.append(max(
                (down[src] + out.get(src, 0.0)) / model.up_cap[src],
                (up[src] + inn.get(src, 0.0)) / model.up_cap[src]))
        congestion = max(used)
        # -- migration over the bottleneck headroom source -> candidate
        heads = [ceil * model.up_cap[src] - up[src],
                 ceil * model.up_cap[c] - down[c]]
        heads += [ceil * model.cap[e] - links[e]
                  for e in model.path_links(model.sw[src], sc)]
        bw = min(heads)
        vol, converges, t_mig = precopy_volume_mb(
            server.memory_mb, params.dirty_rate_mbps, bw,
            params.live_migration_downtime_ms / 1000.0,
            params.max_precopy_rounds)
        migration = vol * model.hops(src, c)
        mif = (params.communication_weight * comm / (R * model.H) +
               params.migration_weight * migration / (
                   server.memory_mb * model.H) +
               params.congestion_weight * congestion)
        # -- hard constraints
        ok = (free[c][0] >= server.memory_mb and free[c][1] >= server.vcpus)
        ok &= not (up_add > 0 and util_up > ceil + 1e-12)
        ok &= not (down_add > 0 and util_down > ceil + 1e-12)
        ok &= max(path_check) <= ceil + 1e-12
        if params.max_hops:
            ok &= max(model.hops(c, p) for p in peer_hosts) <= \
                params.max_hops
        ok &= bool(converges)
        if params.max_migration_time_s:
            ok &= t_mig <= params.max_migration_time_s
        res[c] = (bool(ok), mif)
    return res


def is_optimal(choice, verdicts, tol=1e-9):
    """Does *choice* pass and have the least MIF of all passing hosts?"""
    passing = {h: m for h, (ok, m) in verdicts.items() if ok}
    return choice in passing and passing[choice] <= min(
        passing.values()) + tol


# -- scenarios ---------------------------------------------------------------

TOPOLOGIES = {
    'leaf-spine': lambda: leaf_spine(2, 3, 3, uplink_gbps=10,
                                     fabric_gbps=10),
    'fat-tree': lambda: fat_tree(4, link_gbps=10, uplink_gbps=10),
}


def scenario(kind, seed, params):
    """A server with bidirectional flows to peers on several hosts, heavy
    background traffic (so that bandwidth constraints bind somewhere) and
    random free capacity per host."""
    rng = np.random.default_rng(seed)
    data = TOPOLOGIES[kind]()
    hosts = [h['name'] for h in data['hosts']]
    placement = {'vm': hosts[int(rng.integers(len(hosts)))]}
    n_bg = 3 * len(hosts)
    for i in range(n_bg):
        placement['bg%d' % i] = hosts[int(rng.integers(len(hosts)))]
    rates = {}
    # peers in one pod (fat-tree) or two racks (leaf-spine), so that a
    # distance bound leaves some hosts in
    group = 4 if kind == 'fat-tree' else 6
    first = group * int(rng.integers(len(hosts) // group))
    near = [i for i in range(n_bg) if hosts.index(
        placement['bg%d' % i]) in range(first, first + group)]
    if len(near) < 3:
        return None
    peers = rng.choice(near, size=int(rng.integers(3, min(5, len(near)) + 1)),
                       replace=False)
    peer_hosts = {placement['bg%d' % p] for p in peers}
    if len(peer_hosts - {placement['vm']}) < 2:
        return None
    for p in peers:
        rates[('vm', 'bg%d' % p)] = float(rng.uniform(100, 1500))
        rates[('bg%d' % p, 'vm')] = float(rng.uniform(100, 1500))
    for _ in range(2 * n_bg):
        a, b = rng.choice(n_bg, size=2, replace=False)
        key = ('bg%d' % a, 'bg%d' % b)
        rates[key] = rates.get(key, 0.0) + float(rng.lognormal(5.5, 1.2))
    # a few elephant flows load parts of the fabric
    for _ in range(3):
        a, b = rng.choice(n_bg, size=2, replace=False)
        key = ('bg%d' % a, 'bg%d' % b)
        rates[key] = rates.get(key, 0.0) + float(rng.uniform(3000, 7000))
    free = {h: (float(rng.choice([2048, 32768, 65536, 65536])),
                float(rng.choice([1, 16, 16, 32]))) for h in hosts}
    server = Server('vm', memory_mb=int(rng.choice([4096, 8192, 16384])),
                    vcpus=int(rng.choice([2, 4])))
    return data, rates, placement, server, free


def decide(data, rates, placement, server, free, params):
    eng = Engine(Topology(data))
    tm = TrafficMatrix({'flows': [{'src': a, 'dst': b, 'mbps': r}
                                  for (a, b), r in rates.items()]})
    cands = [Candidate(h, *free[h]) for h in eng.topo.host_names
             if h != placement[server.uuid]]
    return eng.evaluate(tm, placement, server, cands, params)


CASES = [(kind, seed, hops)
         for kind, seed, hops in itertools.product(
             ['leaf-spine', 'fat-tree'], range(1, 13), [0, 4])
         if not (kind == 'leaf-spine' and hops == 4)]


@pytest.mark.parametrize('kind,seed,max_hops', CASES)
def test_engine_decision_is_exactly_optimal_for_its_mif(kind, seed,
                                                        max_hops):
    params = Params(max_hops=max_hops)
    sc = scenario(kind, seed, params)
    if sc is None:
        pytest.skip('peers all on one host for this seed')
    data, rates, placement, server, free = sc
    ev = decide(data, rates, placement, server, free, params)
    truth = brute_force(Model(data), rates, placement, server, free, params)

    assert set(ev.hosts) == set(truth)
    for i, h in enumerate(ev.hosts):
        ok, mif = truth[h]
        assert bool(ev.passed[i]) == ok, (h, ev.reasons.get(h))
        assert ev.mif[i] == pytest.approx(mif, rel=1e-9, abs=1e-12), h
    passing = [h for h, (ok, _) in truth.items() if ok]
    if not passing:
        assert ev.winner is None
        return
    assert is_optimal(ev.winner, truth)
    # exhaustive: no passing host beats the winner
    best = min(truth[h][1] for h in passing)
    assert truth[ev.winner][1] == pytest.approx(best, abs=1e-12)


def test_cases_exercise_refusals_and_non_trivial_winners():
    """The scenarios are not degenerate: hosts are refused for bandwidth,
    capacity and distance, and the MIF winner is often not the host that
    Nova's RAM spreading or the communication term alone would pick."""
    reasons = set()
    differs_from_spread = differs_from_comm = 0
    for kind, seed, max_hops in CASES:
        params = Params(max_hops=max_hops)
        sc = scenario(kind, seed, params)
        if sc is None:
            continue
        data, rates, placement, server, free = sc
        ev = decide(data, rates, placement, server, free, params)
        for rs in ev.reasons.values():
            reasons |= {r.split(':')[0] for r in rs}
        if ev.winner is None:
            continue
        passing = [i for i in range(len(ev.hosts)) if ev.passed[i]]
        spread = max(passing, key=lambda i: free[ev.hosts[i]][0])
        comm = min(passing, key=lambda i: ev.comm[i])
        differs_from_spread += ev.hosts[spread] != ev.winner
        differs_from_comm += ev.hosts[comm] != ev.winner
    assert {'capacity', 'uplink', 'path', 'distance'} <= reasons
    assert differs_from_spread >= 3
    assert differs_from_comm >= 1


def test_checker_rejects_a_non_optimal_choice():
    """The brute-force check can fail: a passing host that is not the
    lowest-MIF one, or a refused host, is reported as not optimal."""
    params = Params()
    for seed in range(1, 20):
        sc = scenario('fat-tree', seed, params)
        if sc is None:
            continue
        data, rates, placement, server, free = sc
        truth = brute_force(Model(data), rates, placement, server, free,
                            params)
        passing = sorted((m, h) for h, (ok, m) in truth.items() if ok)
        refused = [h for h, (ok, _) in truth.items() if not ok]
        if len(passing) >= 2 and passing[1][0] > passing[0][0] + 1e-6 \
                and refused:
            assert is_optimal(passing[0][1], truth)
            assert not is_optimal(passing[1][1], truth)
            assert not is_optimal(passing[-1][1], truth)
            assert not is_optimal(refused[0], truth)
            return
    pytest.fail('no scenario with two distinct passing hosts and a refusal')
