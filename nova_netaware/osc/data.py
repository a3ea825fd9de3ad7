"""Configuration, topology, traffic and the view of the live cloud that the
core works on.

The commands read the same ``[netaware]`` options as the scheduler plugin
(``--config-file`` points at a nova.conf-like file), so the advisor and Nova
decide from the same data. ``--topology`` and ``--traffic`` override the
files. The topology, the traffic source and the server model are loaded by
:mod:`nova_netaware.loading`, exactly as the scheduler loads them.

Nothing here computes a decision: :mod:`nova_netaware.core` does.
Problems are :class:`~nova_netaware.core.exceptions.DataError`.
"""

import dataclasses
import os
from typing import Dict, List

from oslo_config import cfg

from nova_netaware import conf as netaware_conf
from nova_netaware import advisor
from nova_netaware.core import engine as core_engine
from nova_netaware.core.exceptions import DataError
from nova_netaware.core.topology import TopologyError
from nova_netaware.loading import data as loading
from nova_netaware.loading import servers as server_loading
from nova_netaware.osc.cloud import CloudError

DEFAULT_CONFIG_FILES = ('/etc/nova/nova.conf',)
CONFIG_ENV = 'NETAWARE_CONFIG_FILE'


def add_arguments(parser):
    parser.add_argument(
        '--config-file', metavar='<file>', action='append', default=None,
        help='nova.conf-like file with the [netaware] section the scheduler '
             'uses (repeatable). Default: $%s, else %s if it exists.'
             % (CONFIG_ENV, ', '.join(DEFAULT_CONFIG_FILES)))
    parser.add_argument('--topology', metavar='<file>',
                        help='Topology file; overrides [netaware] '
                             'topology_file.')
    parser.add_argument('--traffic', metavar='<file>',
                        help='Static traffic file; overrides the configured '
                             'traffic source with "static" on this file.')
    return parser


def load_conf(config_files=None, topology=None, traffic=None):
    """A private ConfigOpts with the [netaware] options (not the global
    CONF, so that a command never disturbs a process it runs in)."""
    files = config_files
    if not files:
        env = os.environ.get(CONFIG_ENV)
        files = [env] if env else [f for f in DEFAULT_CONFIG_FILES
                                   if os.path.exists(f)]
    for f in files:
        if not os.path.exists(f):
            raise DataError('config file %s does not exist' % f)
    c = cfg.ConfigOpts()
    # A new group object: oslo.config shares a registered OptGroup's option
    # table (overrides included) between ConfigOpts that register the same
    # instance, so netaware_conf.netaware_group must not be reused here.
    c.register_group(cfg.OptGroup(netaware_conf.GROUP))
    c.register_opts(netaware_conf.ALL_OPTS, group=netaware_conf.GROUP)
    try:
        c([], project='nova', default_config_files=list(files),
          default_config_dirs=[], use_env=False)
    except cfg.Error as e:
        raise DataError('cannot read config %s: %s' % (', '.join(files), e))
    if topology:
        c.set_override('topology_file', topology, group='netaware')
    if traffic:
        c.set_override('traffic_source', 'static', group='netaware')
        c.set_override('static_traffic_file', traffic, group='netaware')
    return c


def topology_path(c):
    """``[netaware] topology_file``, or a :class:`DataError` that says where
    the commands look for it."""
    path = c.netaware.topology_file
    if not path:
        raise DataError('no topology: set [netaware] topology_file in the '
                        'config file (--config-file, $%s, else %s) or pass '
                        '--topology' % (CONFIG_ENV,
                                        ', '.join(DEFAULT_CONFIG_FILES)))
    return path


def load_engine(c):
    path = topology_path(c)
    try:
        return loading.load_engine(path, c.netaware.default_link_latency_us)
    except TopologyError as e:
        raise DataError('topology %s: %s' % (path, e))


def load_traffic(c):
    name = c.netaware.traffic_source
    return loading.read_traffic(loading.get_traffic_source(name, c), name,
                                name_source=True)


def server_model(info):
    """A core :class:`Server` from a :class:`cloud.ServerInfo`, with the
    same flavor extra spec / server metadata overrides as the scheduler
    plugin; what the commands judge is a move."""
    return server_loading.server_model(
        info.id, info.ram_mb, info.vcpus, info.extra_specs, info.metadata,
        is_move=True)


@dataclasses.dataclass
class CloudView:
    """What the commands read from the live cloud, with the topology,
    traffic and parameters they judge it by."""

    conf: object
    engine: core_engine.Engine
    traffic: object
    params: core_engine.Params
    servers: Dict[str, object]           # id -> cloud.ServerInfo
    hypervisors: Dict[str, object]       # host -> cloud.HypervisorInfo
    aggregates: list
    usage: Dict[str, advisor.HostUsage]
    # Warnings the commands print (stderr), e.g. the Placement fallback.
    notes: List[str] = dataclasses.field(default_factory=list)

    @property
    def placement(self):
        return {s.id: s.host for s in self.servers.values() if s.host}

    def models(self):
        return {s.id: server_model(s) for s in self.servers.values()}

    def multiplier(self, host):
        """Weight multiplier Nova applies to the MIF weigher on *host*
        (:func:`~nova_netaware.loading.servers.weight_multiplier`)."""
        key = server_loading.MULTIPLIER_KEY
        return server_loading.weight_multiplier(
            (md[key] for _, hosts, md in self.aggregates
             if host in hosts and key in md),
            self.conf.netaware.weight_multiplier)

    def missing_hosts(self):
        """Nova compute hosts that the topology lacks, sorted."""
        return sorted(h for h in self.hypervisors
                      if h not in self.engine.topo.host_index)

    def missing_hosts_error(self, when):
        """Why a plan must not be carried out while the topology lacks
        compute hosts (*when*: e.g. ``'before --execute'``)."""
        return ('the topology %s lacks Nova compute host(s) %s: the '
                'scheduler plugin cannot judge moves to or from them. Fix '
                'the topology (see "openstack netaware topology validate") '
                '%s; nothing was changed.' % (
                    self.conf.netaware.topology_file,
                    ', '.join(self.missing_hosts()), when))

    def plan(self, knobs=None):
        """The advisor's plan (:func:`nova_netaware.advisor.plan`) on this
        view, over the compute hosts of the topology: what ``openstack
        netaware rebalance`` and the Watcher strategy both carry out."""
        usage = {h: u for h, u in self.usage.items()
                 if h in self.engine.topo.host_index}
        return advisor.plan(self.engine, self.traffic, self.placement,
                            self.models(), usage, self.params, knobs=knobs)

    def candidates(self, exclude=()):
        """Every compute host known to Nova, with free capacity."""
        out = []
        for h in sorted(self.usage):
            if h in exclude:
                continue
            u = self.usage[h]
            out.append(core_engine.Candidate(
                h, u.memory_mb - u.memory_mb_used, u.vcpus - u.vcpus_used))
        return out


def host_usage(cloud, hvs, cpu_allocation_ratio=None,
               ram_allocation_ratio=None):
    """``({host: HostUsage}, [notes])`` for the hosts in *hvs*.

    Policy: capacity is what Nova schedules against, from Placement: per
    compute node ``(total - reserved) x allocation ratio`` of VCPU and
    MEMORY_MB, use = the allocations against them, summed over a host's
    nodes. A ratio given here overrides Placement's. When Placement cannot
    be read, or has no resource provider for a host, that host falls back
    to the hypervisor's total x ratio (1.0 unless given) and its use, and a
    note says so: never silently."""
    fb_cpu = 1.0 if cpu_allocation_ratio is None else cpu_allocation_ratio
    fb_ram = 1.0 if ram_allocation_ratio is None else ram_allocation_ratio
    fallback = ('CPU/RAM capacity falls back to Nova\'s hypervisor data x '
                'allocation ratio (CPU %g, RAM %g%s), which ignores '
                'Placement\'s allocation ratios and reserved amounts' % (
                    fb_cpu, fb_ram,
                    '; pass --cpu-allocation-ratio/--ram-allocation-ratio '
                    'to match Nova\'s' if None in (cpu_allocation_ratio,
                                                  ram_allocation_ratio)
                    else ''))
    notes = []
    try:
        placement = cloud.placement_usage(hvs)
    except CloudError as e:
        placement = None
        notes.append('%s; %s' % (e, fallback))
    if placement is not None:
        missing = sorted(set(hvs) - set(placement))
        if missing:
            notes.append(
                'Placement has no resource provider for compute host(s) '
                '%s; for them, %s' % (', '.join(missing), fallback))
    usage = {}
    for h, hv in hvs.items():
        inv = (placement or {}).get(h)
        if inv is None:
            usage[h] = advisor.HostUsage(
                hv.vcpus * fb_cpu, hv.vcpus_used, hv.memory_mb * fb_ram,
                hv.memory_mb_used)
            continue
        cpu, ram = inv['VCPU'], inv['MEMORY_MB']
        usage[h] = advisor.HostUsage(
            sum(i.capacity(cpu_allocation_ratio) for i in cpu),
            sum(i.used for i in cpu),
            sum(i.capacity(ram_allocation_ratio) for i in ram),
            sum(i.used for i in ram))
    return usage, notes


def read_cloud(cloud, c, cpu_allocation_ratio=None,
               ram_allocation_ratio=None):
    """Read topology, traffic and the live cloud (topology first: a broken
    file fails before any cloud call). CPU/RAM capacity: :func:`host_usage`
    (Placement; ratios given override Placement's)."""
    eng = load_engine(c)
    traffic = load_traffic(c)
    hvs = cloud.hypervisors()
    servers = cloud.servers()
    aggs = cloud.aggregates()
    up = {h: hv for h, hv in hvs.items()
          if hv.state == 'up' and hv.status == 'enabled'}
    usage, notes = host_usage(cloud, up, cpu_allocation_ratio,
                              ram_allocation_ratio)
    return CloudView(c, eng, traffic,
                     core_engine.Params.from_conf(c.netaware), servers, hvs,
                     aggs, usage, notes)
