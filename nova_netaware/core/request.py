"""What a scheduling request gives the engine and what it gets back.

Plain data, no Nova: :class:`Params` (the method's knobs), :class:`Server`
(the server to place), :class:`Candidate` (a host Nova offers) in, and an
:class:`Evaluation` (verdicts and MIF terms per candidate) out. All four are
also importable from :mod:`nova_netaware.core.engine`.
"""

import dataclasses
from typing import Optional

import numpy as np


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


class Candidates(object):
    """The candidates of one request as columns: the same as a list of
    :class:`Candidate` without one object per host (a scheduler hands
    tens of thousands). ``free_ram_mb`` and ``free_vcpus`` are arrays in
    candidate order, or ``None`` when any candidate lacks the value (the
    capacity check then does not apply)."""

    def __init__(self, hosts, free_ram_mb=None, free_vcpus=None):
        self.hosts = list(hosts)
        self.free_ram_mb = free_ram_mb
        self.free_vcpus = free_vcpus

    @classmethod
    def of(cls, candidates):
        """*candidates* (a list of :class:`Candidate`, or already
        columns) as columns."""
        if isinstance(candidates, cls):
            return candidates
        return cls([c.host for c in candidates],
                   _column(candidates, 'free_ram_mb'),
                   _column(candidates, 'free_vcpus'))

    def __len__(self):
        return len(self.hosts)


def _column(candidates, attr):
    values = [getattr(c, attr) for c in candidates]
    if any(v is None for v in values):
        return None
    return np.array(values, dtype=np.float64)


class Evaluation(object):
    """Verdicts and MIF terms for each candidate, in candidate order.

    ``comm``, ``migration`` and ``congestion`` are the raw MIF terms,
    ``comm_n`` and ``migration_n`` the normalised ones and ``mif`` their
    weighted sum (:mod:`.impact`). ``volume_mb`` is the pre-copy volume
    ``V(c)`` in MiB that the migration term multiplies by the hops;
    ``bandwidth``, ``lam`` and ``migration_time_s`` the pre-copy model's
    bottleneck bandwidth, ``D/B`` and time.
    """

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
        self.volume_mb = zeros
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
