"""One scheduling decision: constraints and MIF for every candidate host.

This is the single entry point that the Nova filter, the Nova weigher, the
``nova-netaware`` command and the rebalance advisor share. Inputs are plain
data: a :class:`Topology`, a :class:`TrafficMatrix`, a placement
``{server uuid: host}`` and the candidates. A request costs
O(hosts + peers + links x peer switches); the loads of the whole traffic
matrix are computed once per (traffic, placement) and cached.
"""

import collections
import dataclasses
from typing import Optional

import numpy as np

from nova_netaware.core import constraints
from nova_netaware.core import impact
from nova_netaware.core import loads as loads_mod
from nova_netaware.core.migration import precopy
from nova_netaware.core import peerpaths
from nova_netaware.core.routing import Fabric
from nova_netaware.core.topology import UPLINK_HOPS

MBIT_PER_MIB = 8.388608


@dataclasses.dataclass
class Params:
    """Knobs of the method; the defaults are those of ``[netaware]``."""
    max_link_utilization: float = 0.9
    check_server_capacity: bool = True
    max_hops: int = 0
    max_latency_us: float = 0.0
    dirty_rate_mbps: float = 800.0
    max_migration_bandwidth_mbps: float = 0.0
    max_migration_time_s: float = 600.0
    live_migration_downtime_ms: int = 500
    max_precopy_rounds: int = 30
    communication_weight: float = 1.0
    migration_weight: float = 0.5
    congestion_weight: float = 1.0
    fail_closed: bool = False

    @classmethod
    def from_conf(cls, group):
        """Build from an oslo.config group (``CONF.netaware``)."""
        kw = {f.name: getattr(group, f.name) for f in dataclasses.fields(cls)
              if f.name != 'fail_closed'}
        kw['fail_closed'] = group.on_missing_data == 'fail-closed'
        return cls(**kw)


@dataclasses.dataclass
class Server:
    """The server to place. ``None`` overrides fall back to :class:`Params`."""
    uuid: str
    memory_mb: int = 0
    vcpus: int = 0
    dirty_rate_mbps: Optional[float] = None
    max_hops: Optional[int] = None
    max_latency_us: Optional[float] = None
    is_move: bool = True


@dataclasses.dataclass
class Candidate:
    host: str
    free_ram_mb: Optional[float] = None
    free_vcpus: Optional[float] = None


class Evaluation(object):
    """Verdicts and MIF terms for each candidate, in candidate order."""

    def __init__(self, hosts):
        self.hosts = list(hosts)
        n = len(self.hosts)
        self.passed = np.ones(n, dtype=bool)
        self.reasons = {}
        self.notes = []
        zeros = np.zeros(n)
        self.comm = zeros
        self.comm_n = zeros
        self.migration = zeros
        self.migration_n = zeros
        self.congestion = zeros
        self.mif = zeros
        self.bandwidth = np.full(n, np.inf)
        self.lam = zeros
        self.migration_time_s = zeros

    def ranking(self):
        """Positions of passing candidates, lowest MIF first (stable)."""
        pos = np.flatnonzero(self.passed)
        return [int(p) for p in pos[np.argsort(self.mif[pos], kind='stable')]]

    @property
    def winner(self):
        r = self.ranking()
        return self.hosts[r[0]] if r else None

    def row(self, i):
        return {
            'host': self.hosts[i],
            'passed': bool(self.passed[i]),
            'reasons': self.reasons.get(self.hosts[i], []),
            'comm_mbps_hops': float(self.comm[i]),
            'migration_mb_hops': float(self.migration[i]),
            'congestion': float(self.congestion[i]),
            'comm_term': float(self.comm_n[i]),
            'migration_term': float(self.migration_n[i]),
            'mif': float(self.mif[i]),
        }


class _View(object):
    """Per-request arrays the constraints and the MIF read."""

    def path_worst(self, i):
        return self._path_worst(i)


class Engine(object):
    """Holds a topology's routing structures and a cache of base loads."""

    def __init__(self, topology):
        self.topo = topology
        self.fabric = Fabric(topology)
        self._base_traffic = None
        self._base_key = None
        self._base_hosts = None
        self._base = None

    # -- base loads, cached per (traffic, placement) ---------------------
    #: a placement that differs in at most this share of the servers is
    #: updated incrementally (re-routing only their flows)
    INCREMENTAL_SHARE = 0.01

    def invalidate(self):
        """Forget the cached loads (the next request recomputes them)."""
        self._base_traffic = self._base_hosts = self._base = None

    def base_loads(self, traffic, placement):
        """Loads of the whole traffic matrix for *placement*.

        Cached for the traffic matrix (the cache holds the matrix itself:
        an ``id()`` alone can be reused by a new matrix once the old one is
        freed) and placement. When only a few servers moved since the
        cached placement — the usual case after a migration — only their
        flows are re-routed.
        """
        servers = traffic.server_list
        hosts = tuple(map(placement.get, servers))
        same_traffic = (traffic is self._base_traffic and
                        traffic.version == self._base_key)
        if same_traffic and hosts == self._base_hosts:
            return self._base
        if same_traffic:
            changed = [s for s, a, b in zip(servers, self._base_hosts, hosts)
                       if a != b]
            if len(changed) <= max(16, len(servers) *
                                   self.INCREMENTAL_SHARE):
                pairs = set()
                for s in changed:
                    for p in traffic.peers(s):
                        for pair in ((s, p), (p, s)):
                            if pair in traffic.rates:
                                pairs.add(pair)
                old_pl = dict(zip(servers, self._base_hosts))
                sub = traffic.subset(pairs)
                old = loads_mod.route_flows(self.fabric, loads_mod.
                                            placement_flows(self.topo, sub,
                                                            old_pl))
                new = loads_mod.route_flows(self.fabric, loads_mod.
                                            placement_flows(self.topo, sub,
                                                            placement))
                b = self._base
                self._base = loads_mod.Loads(
                    np.maximum(b.up - old.up + new.up, 0.0),
                    np.maximum(b.down - old.down + new.down, 0.0),
                    np.maximum(b.links - old.links + new.links, 0.0))
                self._base_hosts = hosts
                return self._base
        self._base = loads_mod.route_flows(
            self.fabric, loads_mod.placement_flows(
                self.topo, traffic, placement))
        self._base_traffic = traffic
        self._base_key = traffic.version
        self._base_hosts = hosts
        return self._base

    # -- one request -------------------------------------------------------
    def evaluate(self, traffic, placement, server, candidates, params):
        topo, fab = self.topo, self.fabric
        ev = Evaluation([c.host for c in candidates])
        idx = np.array([topo.host_index.get(c.host, -1) for c in candidates],
                       dtype=np.int64)
        known = idx >= 0
        kidx = np.where(known, idx, 0)
        for i in np.flatnonzero(~known):
            ev.notes.append('host %s is not in the topology'
                            % candidates[i].host)
        n_hosts = len(topo.host_names)
        sw_c = topo.host_switch[kidx]

        src_name = placement.get(server.uuid)
        src = topo.host_index.get(src_name) if src_name else None
        src_note = None
        if server.is_move and src_name is None:
            src_note = 'server %s has no current host' % server.uuid
        elif server.is_move and src is None:
            src_note = 'source host %s is not in the topology' % src_name
        if src_note:
            ev.notes.append(src_note)

        # Peers, aggregated per host: out = server -> peer, in = peer -> srv
        ho = collections.defaultdict(float)
        hi = collections.defaultdict(float)
        for peer, (o, i_) in traffic.peers(server.uuid).items():
            ph = placement.get(peer)
            if ph is None:
                ev.notes.append('peer %s of server %s has no host (deleted?)'
                                % (peer, server.uuid))
                continue
            pi = topo.host_index.get(ph)
            if pi is None:
                ev.notes.append('host %s of peer %s is not in the topology'
                                % (ph, peer))
                continue
            ho[pi] += o
            hi[pi] += i_
        out_tot, in_tot = sum(ho.values()), sum(hi.values())

        # This server's traffic per peer switch, and the shortest-path DAGs
        # towards the peer switches and towards the source switch, built
        # once and used by every walk below.
        peer_hosts = sorted(set(ho) | set(hi))
        s_out = collections.defaultdict(float)
        s_in = collections.defaultdict(float)
        for p in peer_hosts:
            t = int(topo.host_switch[p])
            s_out[t] += ho.get(p, 0.0)
            s_in[t] += hi.get(p, 0.0)
        targets = np.array(sorted(s_out), dtype=np.int64)
        has_paths = bool(len(targets) and fab.m)
        src_sw = int(topo.host_switch[src]) if src is not None else None
        dag_src = (fab.dag(np.array([src_sw])) if src is not None and fab.m
                   else None)

        # Loads without this server's own traffic.
        base = self.base_loads(traffic, placement)
        work = base
        if src is not None and (ho or hi):
            up, down = base.up.copy(), base.down.copy()
            for p, r in ho.items():
                if p != src:
                    up[src] -= r
                    down[p] -= r
            for p, r in hi.items():
                if p != src:
                    up[p] -= r
                    down[src] -= r
            links = base.links.copy()
            if has_paths:
                r_out = np.zeros(len(targets))
                d_in = np.zeros((fab.n, 1))
                for j, t in enumerate(targets):
                    if t != src_sw:
                        r_out[j] = s_out[t]
                        d_in[t, 0] = s_in[t]
                links -= (peerpaths.route_from(fab, src_sw, targets, r_out)
                          + dag_src.route(d_in))
            work = loads_mod.Loads(np.maximum(up, 0.0),
                                   np.maximum(down, 0.0),
                                   np.maximum(links, 0.0))

        v = _View()
        v.hosts, v.known = ev.hosts, known
        v.memory_mb, v.vcpus = server.memory_mb, server.vcpus
        v.free_ram_mb = (None if any(c.free_ram_mb is None for c in candidates)
                         else np.array([c.free_ram_mb for c in candidates],
                                       dtype=np.float64))
        v.free_vcpus = (None if any(c.free_vcpus is None for c in candidates)
                        else np.array([c.free_vcpus for c in candidates],
                                      dtype=np.float64))
        hov = np.zeros(n_hosts)
        hiv = np.zeros(n_hosts)
        if ho:
            hov[list(ho)] = list(ho.values())
        if hi:
            hiv[list(hi)] = list(hi.values())
        cap = topo.host_cap[kidx]
        v.cap = cap
        v.up_base, v.down_base = work.up[kidx], work.down[kidx]
        v.up_add = out_tot - hov[kidx]
        v.down_add = in_tot - hiv[kidx]
        v.util_up = (v.up_base + v.up_add) / cap
        v.util_down = (v.down_base + v.down_add) / cap
        # the uplink check applies only where the move adds traffic
        v.up_grows = v.up_add > 0
        v.down_grows = v.down_add > 0

        # Peer uplinks with this server's traffic back on them (congestion
        # term); a candidate that is the peer's own host takes it off.
        pu = np.full(2, -np.inf)
        pu_host = [-1, -1]
        # Only the directions the server's traffic uses count: a peer's
        # downlink when the server sends to it, its uplink when it sends.
        for p in peer_hosts:
            u = max((work.down[p] + hov[p]) / topo.host_cap[p]
                    if hov[p] > 0 else -np.inf,
                    (work.up[p] + hiv[p]) / topo.host_cap[p]
                    if hiv[p] > 0 else -np.inf)
            if u > pu[0]:
                pu[1], pu_host[1] = pu[0], pu_host[0]
                pu[0], pu_host[0] = u, p
            elif u > pu[1]:
                pu[1], pu_host[1] = u, p
        peer_up = np.maximum(np.where(kidx == pu_host[0], pu[1], pu[0]), 0.0)
        # For the hard constraint only a peer uplink whose load grows
        # counts: the source host's, when the server leaves peers behind.
        src_up = 0.0
        if src is not None and (hov[src] > 0 or hiv[src] > 0):
            src_up = max((work.down[src] + hov[src]) / topo.host_cap[src]
                         if hov[src] > 0 else 0.0,
                         (work.up[src] + hiv[src]) / topo.host_cap[src]
                         if hiv[src] > 0 else 0.0)
        peer_check = np.where(kidx == src, 0.0, src_up)

        # Fabric: per peer switch, the busiest link on any shortest path
        # between the candidate's switch and it, with this traffic added.
        # The check leaves out links that already carry this traffic today
        # (on a shortest path from the source switch): moving does not add
        # to them. The congestion term counts every link used.
        s_cnt = collections.defaultdict(int)
        s_lat = collections.defaultdict(float)
        # per switch: peer host with the largest host latency, and the
        # second largest latency (for a candidate that is that host)
        s_lat_host = {}
        s_lat2 = collections.defaultdict(lambda: -np.inf)
        for p in peer_hosts:
            t = int(topo.host_switch[p])
            s_cnt[t] += 1
            hl = float(topo.host_lat[p])
            if t not in s_lat_host or hl > s_lat[t]:
                if t in s_lat_host:
                    s_lat2[t] = s_lat[t]
                s_lat[t], s_lat_host[t] = hl, p
            else:
                s_lat2[t] = max(s_lat2[t], hl)
        if has_paths:
            r_out = np.array([s_out[t] for t in targets])
            r_in = np.array([s_in[t] for t in targets])
            lk_cap = work.links / fab.cap
            inv_cap = 1.0 / fab.cap
            # a direction without traffic to / from that peer switch uses
            # no link: -inf (times a positive 1/capacity) leaves it out of
            # the maxima
            r_out_v = np.where(r_out > 0, r_out, -np.inf)
            r_in_v = np.where(r_in > 0, r_in, -np.inf)

            def values(e, ro, ri):
                # the busier direction of the link for this peer switch
                # (non-decreasing in the rates, as PeerPaths requires)
                re = fab.rev[e]
                return np.maximum(lk_cap[e] + ro * inv_cap[e],
                                  lk_cap[re] + ri * inv_cap[re])
            # column "check" leaves out links that already carry this
            # traffic (on a shortest path from the source switch)
            pp = peerpaths.PeerPaths(fab, targets, r_out_v, r_in_v, values,
                                     src_sw)
            fabric_max = np.maximum(pp.best, 0.0)[sw_c]
            fabric_check = np.maximum(pp.check, 0.0)[sw_c]
        else:
            pp = None
            fabric_max = fabric_check = np.zeros(len(candidates))
        v.util_path = np.maximum(fabric_check, peer_check)
        congestion_path = np.maximum(fabric_max, peer_up)

        def path_worst(i):
            if pp is not None and fabric_check[i] >= peer_check[i]:
                j = pp.worst(int(sw_c[i]))
                return 'between %s and %s' % (
                    topo.switch_names[sw_c[i]],
                    topo.switch_names[targets[j]])
            return 'uplink of source host %s (peers stay there)' % src_name
        v._path_worst = path_worst

        # Distance and latency to the farthest peer.
        if len(targets):
            d = topo.dist[:, targets] + UPLINK_HOPS
            own = targets[None, :] == np.arange(topo.dist.shape[0])[:, None]
            far = np.where(own, -1, d).max(axis=1)[sw_c]
            lt = topo.lat[:, targets] + np.array([s_lat[t] for t in targets])
            lat_far = np.where(own, -np.inf, lt).max(axis=1)[sw_c]
            cnt_sw = np.zeros(topo.dist.shape[0])
            cnt_sw[targets] = [s_cnt[t] for t in targets]
            lat_sw = np.zeros(topo.dist.shape[0])
            lat_sw[targets] = [s_lat[t] for t in targets]
            lat_host = np.full(topo.dist.shape[0], -1, dtype=np.int64)
            lat_host[targets] = [s_lat_host[t] for t in targets]
            lat_sw2 = np.full(topo.dist.shape[0], -np.inf)
            lat_sw2[targets] = [s_lat2[t] for t in targets]
            # the farthest other peer on the candidate's own switch; a peer
            # on the candidate itself is 0 us away, not its uplink latency
            near_lat = np.where(kidx == lat_host[sw_c], lat_sw2[sw_c],
                                lat_sw[sw_c])
            on_c = ((hov + hiv) > 0)[kidx] | np.isin(kidx, peer_hosts)
            near = (cnt_sw[sw_c] - on_c) > 0
            v.peer_hops = np.maximum(far, np.where(near, UPLINK_HOPS, 0))
            v.peer_latency = np.maximum(
                np.maximum(lat_far, np.where(near, near_lat, -np.inf))
                + topo.host_lat[kidx], 0.0)
        else:
            v.peer_hops = np.zeros(len(candidates), dtype=np.int64)
            v.peer_latency = np.zeros(len(candidates))
        v.max_hops_bound = (params.max_hops if server.max_hops is None
                            else server.max_hops)
        v.max_latency_bound = (params.max_latency_us
                               if server.max_latency_us is None
                               else server.max_latency_us)

        # Migration: bottleneck free bandwidth source -> candidate.
        dirty = (params.dirty_rate_mbps if server.dirty_rate_mbps is None
                 else server.dirty_rate_mbps)
        v.dirty_rate = dirty
        ceil = params.max_link_utilization
        v.mig = None
        hops_src = np.zeros(len(candidates))
        volume_mb = np.zeros(len(candidates))
        if src is not None and server.is_move and server.memory_mb > 0:
            head = ceil * fab.cap - work.links
            if dag_src is not None:
                w = dag_src.path_max(lambda e, c: -head[fab.rev[e]])[:, 0]
            else:
                w = np.full(fab.n, -np.inf)
            b_fab = np.where(np.isneginf(w), np.inf, -w)[sw_c]
            b = np.minimum.reduce([
                np.full(len(candidates), ceil * topo.host_cap[src]
                        - work.up[src]),
                ceil * cap - work.down[kidx], b_fab])
            if params.max_migration_bandwidth_mbps:
                b = np.minimum(b, params.max_migration_bandwidth_mbps)
            same = kidx == src
            b = np.where(same, np.inf, b)
            v.bandwidth = b
            mig = precopy(server.memory_mb * MBIT_PER_MIB, dirty, b,
                          params.live_migration_downtime_ms / 1000.0,
                          params.max_precopy_rounds)
            mig['converges'] = mig['converges'] | same
            mig['time_s'] = np.where(same, 0.0, mig['time_s'])
            v.mig = mig
            volume_mb = np.where(same, 0.0, mig['volume'] / MBIT_PER_MIB)
            hops_src = topo.hops_from(src, kidx)
            ev.bandwidth, ev.lam = b, mig['lam']
            ev.migration_time_s = mig['time_s']
        elif server.is_move and server.memory_mb > 0:
            v.bandwidth = np.full(len(candidates), np.inf)

        passed, reasons = constraints.check(v, params)
        ev.passed = passed
        ev.reasons = {ev.hosts[i]: r for i, r in reasons.items()}
        if params.fail_closed and server.is_move and src is None:
            ev.passed[:] = False
            for h in ev.hosts:
                ev.reasons.setdefault(h, []).append('data: %s' % src_note)
        for i in np.flatnonzero(~known):
            h = ev.hosts[i]
            if params.fail_closed:
                ev.passed[i] = False
                ev.reasons.setdefault(h, []).append(
                    'data: host %s is not in the topology' % h)

        rate = (hov + hiv)
        switch_rate = {int(t): s_out[t] + s_in[t] for t in targets}
        ev.comm = impact.communication_cost(switch_rate, rate[kidx],
                                            topo.dist, sw_c)
        ev.migration = impact.migration_cost(volume_mb, hops_src)
        # the candidate's uplink counts in a direction the server's
        # traffic leaves or enters the host by
        ev.congestion = np.maximum.reduce([
            np.where(v.up_grows, v.util_up, 0.0),
            np.where(v.down_grows, v.util_down, 0.0), congestion_path])
        ev.mif, ev.comm_n, ev.migration_n = impact.mif(
            ev.comm, ev.migration, ev.congestion, out_tot + in_tot,
            server.memory_mb, topo.max_host_hops,
            params.communication_weight, params.migration_weight,
            params.congestion_weight)
        if (~known).any():
            worst = ev.mif[known].max() if known.any() else 0.0
            ev.mif = np.where(known, ev.mif, worst)
            for arr in ('comm', 'comm_n', 'migration', 'migration_n',
                        'congestion'):
                setattr(ev, arr, np.where(known, getattr(ev, arr), 0.0))
        return ev
