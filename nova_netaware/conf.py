"""Configuration options of the scheduler plugin: group ``[netaware]``.

The options are registered on ``oslo_config.cfg.CONF`` when this module is
imported (the filter and weigher modules import it), exactly as Nova's own
option modules do. ``list_opts`` feeds ``oslo-config-generator`` through the
``oslo.config.opts`` entry point ``nova_netaware``; the generator file is
``etc/nova-netaware-config-generator.conf`` and the generated sample is
``etc/nova-netaware.conf.sample``.
"""

from oslo_config import cfg

GROUP = 'netaware'

netaware_group = cfg.OptGroup(
    GROUP, title='Network-aware scheduling',
    help='Options of the nova-netaware filter (NetworkAwareFilter) and '
         'weigher (MigrationImpactWeigher).')

data_opts = [
    cfg.StrOpt('topology_file',
               help='Path to the topology file (YAML or JSON) with '
                    '"switches", "links" and "hosts". Host names are '
                    'nova-compute host names. Re-read when the file '
                    'changes.'),
    cfg.BoolOpt('topology_cache', default=True,
                help='Keep a binary cache of the checked topology next to '
                     'the topology file (<topology_file>.netaware-cache.'
                     'npz), keyed by the SHA-256 of the file\'s bytes, so '
                     'that a restart skips parsing the file and searching '
                     'the distances (the same numbers). A stale, '
                     'unreadable or damaged cache is ignored and '
                     'rewritten; a directory the scheduler cannot write to '
                     'leaves no cache.'),
    cfg.StrOpt('traffic_source', default='static',
               help='Name of the traffic source: a stevedore plugin in '
                    'namespace "nova_netaware.traffic_sources". "static" '
                    'reads [netaware] static_traffic_file.'),
    cfg.StrOpt('static_traffic_file',
               help='Path to the static traffic file (YAML or JSON): '
                    '"flows: [{src: <server uuid>, dst: <server uuid>, '
                    'mbps: <rate>}]". Directed rates in Mbit/s. An edit '
                    'takes effect on the next scheduling request.'),
    cfg.BoolOpt('apply_to_boots', default=False,
                help='If false (default) the filter and weigher act only '
                     'on moves (cold and live migration, evacuate, '
                     'unshelve) and pass every host through untouched on '
                     'an initial boot. If true they also act on boots.'),
    cfg.StrOpt('on_missing_data', default='fail-open',
               choices=[('fail-open', 'Pass every host and give neutral '
                                      'weights when data is missing or '
                                      'broken.'),
                        ('fail-closed', 'Refuse every host when data is '
                                        'missing or broken.')],
               help='What the filter does when its data cannot be used: a '
                    'missing or malformed topology or traffic file, a '
                    'failing traffic source, or a source host that is not '
                    'in the topology. The problem is logged once either '
                    'way; the weigher always falls back to neutral '
                    'weights.'),
]

constraint_opts = [
    cfg.FloatOpt('max_link_utilization', default=0.9, min=0.0,
                 help='Utilisation ceiling (fraction of capacity) that no '
                      'link on the candidate\'s uplink or on its paths to '
                      'the server\'s peers may exceed after the move.'),
    cfg.BoolOpt('check_server_capacity', default=True,
                help='Also refuse hosts whose free RAM or vCPUs (with the '
                     'host\'s allocation ratios) cannot hold the flavor.'),
    cfg.IntOpt('max_hops', default=0, min=0,
               help='Default bound on the network distance, in hops, '
                    'between the candidate host and each of the server\'s '
                    'peers. 0 disables it. Overridden by flavor extra spec '
                    'or server metadata "netaware:max_hops".'),
    cfg.FloatOpt('max_latency_us', default=0.0, min=0.0,
                 help='Default bound on the path latency, in microseconds, '
                      'to each peer. 0 disables it. Overridden by flavor '
                      'extra spec or server metadata '
                      '"netaware:max_latency_us".'),
    cfg.FloatOpt('default_link_latency_us', default=1.0, min=0.0,
                 help='Latency assumed for a link that does not give '
                      '"latency_us" in the topology file.'),
    cfg.FloatOpt('dirty_rate_mbps', default=800.0, min=0.0,
                 help='Default memory dirty rate D of a server, in Mbit/s, '
                      'for the pre-copy model. Overridden by flavor extra '
                      'spec or server metadata "netaware:dirty_rate_mbps".'),
    cfg.FloatOpt('max_migration_bandwidth_mbps', default=0.0, min=0.0,
                 help='Cap on the bandwidth a migration may use, in Mbit/s '
                      '(compare libvirt live_migration_bandwidth). 0 means '
                      'the path\'s free bandwidth.'),
    cfg.FloatOpt('max_migration_time_s', default=600.0, min=0.0,
                 help='A candidate is refused when the predicted pre-copy '
                      'migration time exceeds this many seconds. 0 '
                      'disables the bound.'),
    cfg.IntOpt('live_migration_downtime_ms', default=500, min=1,
               help='Pre-copy stops when the remaining dirty memory can '
                    'be sent within this downtime (Nova libvirt default '
                    '500 ms). A candidate whose predicted downtime stays '
                    'above it after max_precopy_rounds is refused.'),
    cfg.IntOpt('max_precopy_rounds', default=30, min=1,
               help='Maximum number of pre-copy rounds before the '
                    'stop-and-copy phase (Xen uses 29 + 1).'),
]

weigher_opts = [
    cfg.FloatOpt('weight_multiplier', default=1.0,
                 help='Multiplier of the MigrationImpactWeigher. Read at '
                      'every request; host aggregate metadata '
                      '"netaware_weight_multiplier" overrides it (the '
                      'minimum wins when a host is in several aggregates), '
                      'as with Nova\'s own weighers. Positive values '
                      'prefer hosts with a lower migration impact factor.'),
    cfg.FloatOpt('communication_weight', default=1.0, min=0.0,
                 help='Weight of the communication-cost term of the MIF.'),
    cfg.FloatOpt('migration_weight', default=0.5, min=0.0,
                 help='Weight of the migration-cost term of the MIF.'),
    cfg.FloatOpt('congestion_weight', default=1.0, min=0.0,
                 help='Weight of the congestion term of the MIF.'),
]

prometheus_opts = [
    cfg.URIOpt('prometheus_url', default='http://127.0.0.1:9090',
               schemes=['http', 'https'],
               help='Base URL of the Prometheus server read by the '
                    '"prometheus" traffic source (its instant-query API '
                    '<url>/api/v1/query is used).'),
    cfg.StrOpt('prometheus_query',
               default='sum by (src, dst) (rate(netaware_flow_bytes_total'
                       '[1m])) * 8 / 1000000',
               help='PromQL instant query giving VM-to-VM traffic: one '
                    'sample per directed pair, its value in Mbit/s, with '
                    'the two ends in the labels named by '
                    'prometheus_src_label and prometheus_dst_label.'),
    cfg.StrOpt('prometheus_health_query',
               default='up{job="netaware-flow-meter"} == 0 or '
                       'netaware_flow_meter_up == 0',
               help='PromQL instant query giving one sample per traffic '
                    'meter that is down (its labels name it). If it gives '
                    'any sample, the read counts as failed, as when '
                    'Prometheus is down: the last good matrix is used '
                    'within prometheus_max_staleness, then on_missing_data '
                    'applies; a dead meter does not look like silent '
                    'guests. The default matches nova-netaware-flow-meter '
                    'scraped as job "netaware-flow-meter". Empty: not '
                    'checked.'),
    cfg.StrOpt('prometheus_src_label', default='src',
               help='Label of the query result holding the sending end.'),
    cfg.StrOpt('prometheus_dst_label', default='dst',
               help='Label of the query result holding the receiving end.'),
    cfg.StrOpt('prometheus_label_kind', default='uuid',
               choices=[('uuid', 'Labels hold Nova server UUIDs.'),
                        ('ip', 'Labels hold fixed IP addresses, resolved to '
                               'servers through Neutron ports (device_id).')],
               help='What the src/dst labels contain.'),
    cfg.StrOpt('prometheus_ports_cloud',
               help='clouds.yaml cloud name used to list Neutron ports when '
                    'prometheus_label_kind is "ip" (the scheduler needs '
                    'credentials that may list all projects\' ports).'),
    cfg.FloatOpt('prometheus_port_cache_ttl', default=300.0, min=0.0,
                 help='Seconds the fixed IP -> server map from Neutron is '
                      'kept. An unknown IP triggers at most one refresh per '
                      'prometheus_cache_ttl.'),
    cfg.FloatOpt('prometheus_timeout', default=2.0, min=0.1,
                 help='Seconds to wait for Prometheus (connect and read). '
                      'A scheduling request that needs fresh data waits at '
                      'most this long.'),
    cfg.FloatOpt('prometheus_cache_ttl', default=30.0, min=0.0,
                 help='Seconds a query result is reused before Prometheus '
                      'is asked again. After a failure Prometheus is not '
                      'asked again before this delay either.'),
    cfg.FloatOpt('prometheus_max_staleness', default=300.0, min=0.0,
                 help='When Prometheus is down, slow or returns an error, '
                      'keep using the last good traffic matrix if it is at '
                      'most this many seconds old (logged). Older, or 0: '
                      'the source fails and the plugin falls back as '
                      'on_missing_data says (fail-open by default).'),
]

ledger_opts = [
    cfg.FloatOpt('decision_wait', default=2.0, min=0.0,
                 help='Seconds a move\'s evaluation waits at most for '
                      'another move that is between its evaluation and '
                      'Nova\'s choice (the Placement claim), so that it '
                      'counts that choice: a move of the same scheduler '
                      'process, and with ledger_backend = tooz a move of '
                      'any scheduler process sharing the ledger (a tooz '
                      'lock, freed by the store this value + 1 s after a '
                      'holder that died). A decision Nova never completes '
                      '(e.g. every claim failed) holds the next move this '
                      'long at most. 0 disables the wait (concurrent moves '
                      'may then pass the same full link).'),
    cfg.StrOpt('ledger_backend', default='memory',
               help='Where the plugin keeps its own recent scheduling '
                    'decisions until Nova\'s records show them: a stevedore '
                    'plugin in namespace "nova_netaware.ledgers". "memory" '
                    '(in this scheduler process only) or "tooz" (shared by '
                    'every nova-scheduler process through ledger_url; when '
                    'the store is unreachable the process falls back to its '
                    'own decisions and logs it once at WARNING).'),
    cfg.StrOpt('ledger_url', default='redis://127.0.0.1:6379',
               help='tooz coordination URL of the shared ledger (backend '
                    '"tooz"), e.g. redis://127.0.0.1:6379. For Redis a '
                    'socket_timeout of 1 s is added unless the URL gives '
                    'one: a request never waits longer for the store.'),
    cfg.FloatOpt('ledger_timeout', default=1.0, min=0.05,
                 help='Seconds a scheduling request waits at most for the '
                      'shared ledger store (backend "tooz"). A call that '
                      'fails or takes longer marks the store unreachable '
                      'for 30 s: the process then counts only its own '
                      'decisions (logged once at WARNING).'),
    cfg.FloatOpt('ledger_ttl', default=120.0, min=1.0,
                 help='Seconds a decision stays in the ledger at most. It '
                      'leaves earlier when Nova\'s records show the move (a '
                      'Migration row naming the destination, the move '
                      'ended, or the instance\'s host changed). Bounds how '
                      'long a decision Nova abandoned after scheduling '
                      '(e.g. a failed unshelve) keeps counting.'),
]

ALL_OPTS = (data_opts + constraint_opts + weigher_opts + prometheus_opts +
            ledger_opts)


def register_opts(conf):
    conf.register_group(netaware_group)
    conf.register_opts(ALL_OPTS, group=netaware_group)


def list_opts():
    """Entry point of oslo-config-generator (namespace ``nova_netaware``)."""
    return [(netaware_group, ALL_OPTS)]


register_opts(cfg.CONF)
