"""``nova-netaware``: run the filter and weigher on a snapshot.

Loads NetworkAwareFilter and MigrationImpactWeigher through their entry
points (``nova_netaware.filters`` / ``nova_netaware.weighers``), runs them
through Nova's own filter and weight handlers on HostStates built from a
placement snapshot, and prints for one server each host's verdict with the
reasons for refusals, the MIF broken down by term, and the winner. It also
shows where Nova's default weighers alone would send the server.

With no arguments it explains the example datacenter shipped in the package
(``nova_netaware/data/example``).
"""

import argparse
import json
import os
import sys
from importlib import resources


DESCRIPTION = """\
Run the nova-netaware filter and weigher on a placement snapshot: for one
server, each host's verdict with the reasons for refusals, the MIF by term,
the winner, and where Nova's default weighers alone would send it.
With no arguments it explains the example datacenter."""

EPILOG = """\
The placement snapshot (--placement, YAML or JSON):

%s
The topology and traffic files have the formats of the [netaware]
topology_file and static_traffic_file options. Run it where Nova is
importable (nova-scheduler's Python environment)."""

NO_NOVA = ('Nova is not importable from %s: run nova-netaware in '
           'nova-scheduler\'s Python environment, or install Nova next to it '
           '(pip install nova)')


def example_dir():
    """The example datacenter shipped as package data, or None."""
    d = resources.files('nova_netaware') / 'data' / 'example'
    if d.joinpath('topology.yaml').is_file():
        return str(d)
    return None


def parse_args(argv):
    ex = example_dir()

    def default(name):
        return os.path.join(ex, name) if ex else None

    from nova_netaware.loading import placement_file

    p = argparse.ArgumentParser(
        prog='nova-netaware', description=DESCRIPTION,
        epilog=EPILOG % placement_file.FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--topology', default=default('topology.yaml'),
                   help='topology file (default: the example datacenter)')
    p.add_argument('--traffic', default=default('traffic.yaml'),
                   help='static traffic file')
    p.add_argument('--placement', default=default('placement.yaml'),
                   help='placement snapshot (hosts, servers; format below)')
    p.add_argument('--server', help='server name or uuid to move (default: '
                                    'the snapshot\'s default_server)')
    p.add_argument('--config-file', action='append', default=[],
                   help='nova.conf-style file with a [netaware] section '
                        '(weights, ceilings, ...); may be repeated')
    p.add_argument('-f', '--format', choices=['table', 'json'],
                   default='table')
    p.add_argument('--no-nova-compare', action='store_true',
                   help='do not show the choice of Nova\'s default weighers')
    return p.parse_args(argv)


def _fail(msg):
    sys.stderr.write('nova-netaware: error: %s\n' % msg)
    return 2


def main(argv=None):
    """The command; a closed output pipe (``| head``) ends it quietly."""
    try:
        rc = _main(argv)
        sys.stdout.flush()
        return rc
    except BrokenPipeError:
        # Python's recipe: no further write may fail at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for name in ('topology', 'traffic', 'placement'):
        if not getattr(args, name):
            return _fail('--%s is required (no example datacenter found)'
                         % name)
    # Imports here: Nova is heavy, and --help should not need it. Nova's
    # import-time deprecation chatter is not for this command's users.
    import warnings
    warnings.simplefilter('ignore')
    try:
        import nova  # noqa: F401
    except ImportError:
        return _fail(NO_NOVA % sys.executable)

    from nova_netaware import conf  # noqa: F401 - registers [netaware]
    from nova_netaware.core.exceptions import DataError
    from nova_netaware.core.topology import TopologyError
    from nova_netaware.loading import placement_file

    try:
        snap = placement_file.from_file(args.placement)
        server = snap.find(args.server or snap.default_server or
                           snap.servers[0].uuid)
    # TopologyError: the core's error for an unreadable data file (listed
    # until core.topology's error derives from DataError).
    except (DataError, TopologyError, IndexError) as e:
        return _fail(str(e) or 'the snapshot has no servers')
    problem, unknown = _configure(args, snap)
    if problem:
        return _fail(problem)
    result = _decide(snap, server, not args.no_nova_compare, unknown)
    if result is None:
        return _fail('the plugin could not use its data (see the log)')
    if args.format == 'json':
        _print_json(server, *result)
    else:
        _print_table(server, *result)
    return 0


def _configure(args, snap):
    """Nova's and the plugin's options, the files checked, and the plugin's
    runtime on the snapshot's placement: ``(a problem's message or None,
    the snapshot's hosts unknown to the topology)``."""
    import nova.conf  # noqa: F401 - registers Nova's options
    from oslo_config import cfg

    from nova_netaware.cmd import sim
    from nova_netaware.core.topology import Topology
    from nova_netaware.core.topology import TopologyError
    from nova_netaware.core.traffic import TrafficError
    from nova_netaware.core.traffic import TrafficMatrix
    from nova_netaware.scheduler import runtime

    CONF = cfg.CONF
    CONF([], project='nova', default_config_files=args.config_file)
    # Validate up front so that a bad file is an error here, not the
    # scheduler's documented fail-open.
    try:
        topo = Topology.from_file(args.topology)
        TrafficMatrix.from_file(args.traffic)
    except (TopologyError, TrafficError) as e:
        return str(e), ()
    unknown = sorted(set(snap.hosts) - set(topo.host_index))
    if unknown:
        sys.stderr.write('nova-netaware: warning: hosts unknown to the '
                         'topology (the plugin cannot judge them: Nova\'s '
                         'filter lets them pass, the weigher gives them '
                         'the worst MIF): %s\n' % ', '.join(unknown))
    CONF.set_override('topology_file', os.path.abspath(args.topology),
                      'netaware')
    CONF.set_override('static_traffic_file', os.path.abspath(args.traffic),
                      'netaware')
    CONF.set_override('traffic_source', 'static', 'netaware')
    runtime.set_runtime(sim.FixedPlacementRuntime(
        snap.placement, {s.uuid: s.metadata for s in snap.servers}))
    return None, unknown


def _decide(snap, server, nova_compare, unknown=()):
    """Run the filter and weigher through Nova's handlers on the other
    hosts of the snapshot: ``(evaluation, rows, winner, Nova's default
    choice)``, or None when the plugin cannot use its data. A host in
    *unknown* (not in the topology) has no rank and no cost: None."""
    from stevedore import driver

    from nova.scheduler import filters as nova_filters
    from nova.scheduler import weights as nova_weights
    from nova_netaware.cmd import sim
    from nova_netaware.scheduler import runtime

    filt = driver.DriverManager('nova_netaware.filters', 'network_aware',
                                invoke_on_load=True).driver
    weigher = driver.DriverManager('nova_netaware.weighers',
                                   'migration_impact',
                                   invoke_on_load=True).driver
    spec = sim.move_spec(server.uuid, server.memory_mb, server.vcpus,
                         server.extra_specs, source=server.host)
    hosts = [sim.host_state(h, u) for h, u in snap.hosts.items()
             if h != server.host]
    passing = nova_filters.HostFilterHandler().get_filtered_objects(
        [filt], hosts, spec) or []
    weighed = nova_weights.HostWeightHandler().get_weighed_objects(
        [weigher], passing, spec)
    result = runtime.get_runtime().evaluate(hosts, spec)
    if result is None:
        return None
    ev, pos = result
    winner = weighed[0].obj.host if weighed else None

    nova_choice = None
    if nova_compare:
        default = nova_weights.HostWeightHandler().get_weighed_objects(
            [cls() for cls in nova_weights.all_weighers()],
            [sim.host_state(h, u) for h, u in snap.hosts.items()
             if h != server.host], spec)
        nova_choice = default[0].obj.host if default else None

    ranking = {ev.hosts[p]: r + 1 for r, p in enumerate(
        p for p in ev.ranking() if ev.hosts[p] not in unknown)}
    rows = []
    for h in hosts:
        row = ev.row(pos[h.host])
        row['in_topology'] = h.host not in unknown
        if not row['in_topology']:
            row.update((k, None) for k, v in row.items()
                       if isinstance(v, float))
        row['rank'] = ranking.get(h.host)
        rows.append(row)
    rows.sort(key=lambda r: (r['rank'] is None, r['rank'] or 0, r['host']))
    return ev, rows, winner, nova_choice


def _print_json(server, ev, rows, winner, nova_choice):
    json.dump({'server': {'uuid': server.uuid, 'name': server.name,
                          'host': server.host},
               'hosts': rows, 'winner': winner,
               'nova_default_choice': nova_choice,
               'notes': ev.notes}, sys.stdout, indent=2)
    sys.stdout.write('\n')


def _print_table(server, ev, rows, winner, nova_choice):
    from oslo_config import cfg

    from nova_netaware.scheduler import runtime

    p = cfg.CONF.netaware
    print('Server %s (%s) on %s: %d MB, %d vCPUs, %d peers' % (
        server.name, server.uuid, server.host, server.memory_mb,
        server.vcpus, len(runtime.get_runtime().traffic().peers(
            server.uuid))))
    print('MIF = %.2f x comm + %.2f x migration + %.2f x congestion '
          '(lower is better; terms normalised, see README)\n' % (
              p.communication_weight, p.migration_weight,
              p.congestion_weight))
    hdr = ('rank', 'host', 'verdict', 'comm Mb/s*hop', 'migr MB*hop',
           'congestion', 'MIF')
    width = max([len(hdr[1])] + [len(r['host']) for r in rows])
    fmt = '%%-4s  %%-%ds  %%-7s  %%13s  %%11s  %%10s  %%7s' % width
    print(fmt % hdr)
    print(fmt % tuple('-' * len(x) for x in hdr))
    for r in rows:
        if not r['in_topology']:
            print(fmt % ('-', r['host'], 'UNKNOWN', '-', '-', '-', '-'))
            print('      unknown to the topology: the plugin cannot judge '
                  'it (Nova\'s filter lets it pass, the weigher gives '
                  'it the worst MIF)')
            continue
        print(fmt % (r['rank'] or '-', r['host'],
                     'pass' if r['passed'] else 'REFUSED',
                     '%.0f' % r['comm_mbps_hops'],
                     '%.0f' % r['migration_mb_hops'],
                     '%.1f%%' % (100 * r['congestion']), '%.4f' % r['mif']))
        for reason in r['reasons']:
            print('      %s' % reason)
    for note in ev.notes:
        print('note: %s' % note)
    print('\nwinner: %s' % (winner or 'none: no host passes (NoValidHost)'))
    if nova_choice is not None:
        print('Nova\'s default weighers alone would choose: %s' % nova_choice)


if __name__ == '__main__':
    sys.exit(main())
