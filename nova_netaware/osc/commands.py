"""cliff commands of ``openstack netaware`` (namespace
``openstack.netaware.v1``).

Every decision comes from :mod:`nova_netaware.core` (the engine the Nova
filter and weigher use, and the advisor); these classes only gather data
through :mod:`.cloud` / :mod:`.data` and format the results.
"""

import logging

import networkx as nx
from osc_lib.command import command
from osc_lib import exceptions

from nova_netaware import advisor
from nova_netaware.core import engine as core_engine
from nova_netaware.core import impact
from nova_netaware.core.topology import load_data_file
from nova_netaware.core.topology import Topology
from nova_netaware.core.exceptions import DataError
from nova_netaware.core.exceptions import NetawareError
from nova_netaware.core.topology import TopologyError
from nova_netaware.osc import data
from nova_netaware.osc import execute
from nova_netaware.osc.cloud import CloudError

LOG = logging.getLogger(__name__)


def _fmt(x, digits=4):
    return round(float(x), digits)


class _Base(object):
    """Shared options and error handling."""

    def _data_parser(self, parser):
        data.add_arguments(parser)
        parser.add_argument(
            '--cpu-allocation-ratio', type=float, default=None,
            metavar='<ratio>',
            help='Override the VCPU allocation ratio. Default: read from '
                 'Placement, as Nova schedules: allocatable vCPUs = '
                 '(total - reserved) x ratio of each compute node\'s '
                 'inventory. If Placement cannot be read (a warning says '
                 'so), hypervisor vCPUs x this ratio, 1.0 if not given.')
        parser.add_argument(
            '--ram-allocation-ratio', type=float, default=None,
            metavar='<ratio>',
            help='Override the MEMORY_MB allocation ratio. Default: read '
                 'from Placement: allocatable RAM = (total - reserved) x '
                 'ratio. If Placement cannot be read (a warning says so), '
                 'hypervisor RAM x this ratio, 1.0 if not given.')
        return parser

    def _cloud(self):
        return self.app.client_manager.netaware

    def _conf(self, parsed_args):
        try:
            return data.load_conf(parsed_args.config_file,
                                  parsed_args.topology, parsed_args.traffic)
        except DataError as e:
            raise exceptions.CommandError(str(e))

    def _cloud_view(self, parsed_args):
        c = self._conf(parsed_args)
        try:
            view = data.read_cloud(self._cloud(), c,
                                   parsed_args.cpu_allocation_ratio,
                                   parsed_args.ram_allocation_ratio)
        except NetawareError as e:
            raise exceptions.CommandError(str(e))
        for note in view.notes:      # e.g. capacity not from Placement
            self.app.stderr.write('warning: %s\n' % note)
        return view


def _plan(view, parsed_args):
    """The advisor's plan on the cloud's view (:meth:`data.CloudView.plan`,
    shared with the Watcher strategy)."""
    return view.plan(advisor.AdvisorParams.from_args(parsed_args))


def _cost_row(ev, i, weighted, verdict, reasons, rank, multiplier):
    """One Explain row: the host's verdict and its MIF by term."""
    w_comm, w_mig, w_cong = weighted
    return [ev.hosts[i], verdict, reasons or None, _fmt(ev.comm[i], 1),
            _fmt(w_comm[i]), _fmt(ev.migration[i], 1), _fmt(w_mig[i]),
            _fmt(ev.congestion[i]), _fmt(w_cong[i]), _fmt(ev.mif[i]), rank,
            multiplier]


def _verdict_on_moving(ev, cur, host):
    """``(helps, sentence)``: does the best passing host have a lower MIF
    than the current host (*cur*: its own evaluation, or None when it is
    not in the topology)? *helps* is None when it cannot be told."""
    if ev.winner is None:
        return False, 'Moving would not help: no host passes.'
    best = float(ev.mif[ev.hosts.index(ev.winner)])
    if cur is None:
        return None, ('Cannot tell whether moving would help: the current '
                      'host %s is not in the topology.' % host)
    mine = float(cur.mif[0])
    if best < mine:
        return True, ('Moving would help: %s has MIF %.4f, below the '
                      'current host %s (%.4f).' % (ev.winner, best, host,
                                                    mine))
    return False, ('Moving would not help: the current host %s has MIF '
                   '%.4f; the best passing host, %s, has %.4f.' % (
                       host, mine, ev.winner, best))


class Explain(_Base, command.Lister):
    """Explain where Nova would move a server: every host's filter verdict
    with reasons, the MIF by term and the rank, against the current host's
    own cost (a reference row), and whether moving would help.

    With a machine-readable format (-f json, yaml, ...) every row also
    carries the server, the winner and whether moving would help."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('server', metavar='<server>',
                            help='Server to explain (name or ID)')
        return self._data_parser(parser)

    def _current(self, view, srv, model):
        """The current host judged as a candidate (migration 0), or None
        when it is not in the topology."""
        if srv.host not in view.engine.topo.host_index:
            return None
        u = view.usage.get(srv.host)
        free = ((u.memory_mb - u.memory_mb_used + model.memory_mb,
                 u.vcpus - u.vcpus_used + model.vcpus) if u else (0, 0))
        return view.engine.evaluate(
            view.traffic, view.placement, model,
            [core_engine.Candidate(srv.host, *free)], view.params)

    def take_action(self, parsed_args):
        cloud = self._cloud()
        try:
            srv = cloud.find_server(parsed_args.server)
        except CloudError as e:
            raise exceptions.CommandError(str(e))
        view = self._cloud_view(parsed_args)
        if not srv.host:
            raise exceptions.CommandError('server %s (%s) has no host (%s)'
                                          % (srv.name, srv.id, srv.status))
        view.servers[srv.id] = srv
        model = data.server_model(srv)
        ev = view.engine.evaluate(view.traffic, view.placement, model,
                                  view.candidates(exclude={srv.host}),
                                  view.params)
        for note in ev.notes:
            self.app.stderr.write('note: %s\n' % note)
        cur = self._current(view, srv, model)
        rank = {p: r + 1 for r, p in enumerate(ev.ranking())}
        p = view.params
        cols = ['Host', 'Verdict', 'Reasons', 'Comm (Mbit/s x hop)',
                'Comm term', 'Migration (MB x hop)', 'Migration term',
                'Congestion', 'Congestion term', 'MIF', 'Rank',
                'Weight multiplier']
        if cur is None:
            ref = [srv.host, 'current host', 'not in the topology'] + \
                [None] * 8 + [view.multiplier(srv.host)]
        else:
            ref = _cost_row(cur, 0, impact.weighted_terms(cur, p),
                            'current host', None, None,
                            view.multiplier(srv.host))
        weighted = impact.weighted_terms(ev, p)
        order = sorted(range(len(ev.hosts)), key=lambda i: (
            i not in rank, rank.get(i, 0), i))
        rows = [ref] + [_cost_row(
            ev, i, weighted, 'pass' if ev.passed[i] else 'refused',
            '; '.join(ev.reasons.get(h, [])), rank.get(i),
            view.multiplier(h)) for i, h in ((i, ev.hosts[i]) for i in order)]
        helps, verdict = _verdict_on_moving(ev, cur, srv.host)
        if parsed_args.formatter == 'table':
            self.app.stdout.write(
                'Server %s (%s) on %s; MIF = %g x comm/(R x H) + %g x '
                'migration/(M x H) + %g x congestion; lowest MIF wins. '
                'Winner: %s\n%s\n' % (
                    srv.name, srv.id, srv.host, p.communication_weight,
                    p.migration_weight, p.congestion_weight,
                    ev.winner or 'none', verdict))
            return cols, rows
        cols += ['Server', 'Server ID', 'Winner', 'Moving helps']
        return cols, [r + [srv.name, srv.id, ev.winner, helps] for r in rows]


class Rebalance(_Base, command.Lister):
    """Plan (and with --execute, carry out) migrations that relieve
    overloaded hosts and congested links. Dry run by default."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        advisor.add_arguments(parser)
        parser.add_argument('--execute', action='store_true',
                            help='Carry out the plan through Nova (without '
                                 'it nothing changes).')
        parser.add_argument('--live', action='store_true',
                            default=advisor.ExecutionParams().live,
                            help='Live-migrate (default: cold migrate, then '
                                 'confirm).')
        parser.add_argument('--timeout', type=float, default=600.0,
                            metavar='<seconds>',
                            help='Give up waiting for one migration after '
                                 'this long (default 600).')
        parser.add_argument('--poll-interval', type=float, default=1.0,
                            metavar='<seconds>',
                            help='Seconds between status polls (default '
                                 '1).')
        return self._data_parser(parser)

    def run(self, parsed_args):
        self._failed = False
        rc = super().run(parsed_args)
        return 1 if self._failed else rc

    def take_action(self, parsed_args):
        view = self._cloud_view(parsed_args)
        missing = view.missing_hosts()
        if missing and parsed_args.execute:
            raise exceptions.CommandError(
                view.missing_hosts_error('before --execute'))
        if missing:
            self.app.stderr.write(
                'warning: the topology lacks Nova compute host(s) %s; they '
                'are left out of the plan\n' % ', '.join(missing))
        plan = _plan(view, parsed_args)
        names = {s.id: s.name for s in view.servers.values()}
        out = (self.app.stdout if parsed_args.formatter == 'table'
               else self.app.stderr)
        out.write(
            'Overloaded hosts: %s\nCongested links: %s\n'
            'Network cost (sum rate x hops, Mbit/s x hop): %.1f -> %.1f\n'
            'Max link utilisation: %.1f%% -> %.1f%%\n'
            'Planned migrations: %d%s\n' % (
                ', '.join(plan.overloaded_hosts) or 'none',
                ', '.join(plan.congested_links) or 'none',
                plan.cost_before, plan.cost_after, plan.util_before * 100,
                plan.util_after * 100, len(plan.moves),
                '' if parsed_args.execute else
                ' (dry run: nothing is changed; add --execute)'))
        for reason in plan.reasons:
            out.write('Nothing planned: %s\n' % reason)
        cols = ['#', 'Server', 'ID', 'Incoming (Mbit/s)', 'Why', 'Source',
                'Predicted destination', 'MIF', 'Note']
        rows = []
        for k, s in enumerate(plan.steps, 1):
            rows.append([k, names.get(s.server, s.server), s.server,
                         _fmt(s.incoming_mbps, 1), s.why, s.source,
                         s.destination or '-',
                         None if s.mif is None else _fmt(s.mif), s.note])
        if not parsed_args.execute or not plan.moves:
            return cols, rows
        ex = execute.Executor(self._cloud(), live=parsed_args.live,
                              timeout=parsed_args.timeout,
                              poll=parsed_args.poll_interval,
                              progress=execute.Progress(self.app.stderr))
        outcomes, state = ex.run(plan.steps, names)
        by_server = {o.server: o for o in outcomes}
        cols += ['Actual destination', 'Result']
        for r, s in zip(rows, plan.steps):
            o = by_server.get(s.server)
            if o is None:
                r += ['-', 'no move planned']
            else:
                r += [o.actual or '-', '%s%s' % (
                    o.status, ': ' + o.detail if o.detail else '')]
        if state:
            self._failed = True
            self.app.stderr.write('Stopped at the first failure. %s\n'
                                  % state)
        else:
            mism = [o for o in outcomes if o.actual != o.predicted]
            self.app.stderr.write(
                'All %d migration(s) done; %d landed where predicted%s.\n'
                % (len(outcomes), len(outcomes) - len(mism),
                   '' if not mism else ', Nova chose differently for ' +
                   ', '.join(o.name for o in mism)))
        return cols, rows


class TopologyValidate(_Base, command.Lister):
    """Check the topology file against Nova's compute hosts: hosts missing
    from the topology, hosts Nova does not know, and unreachable hosts."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        return data.add_arguments(parser)

    def run(self, parsed_args):
        self._problems = 0
        rc = super().run(parsed_args)
        return 1 if self._problems else rc

    def take_action(self, parsed_args):
        c = self._conf(parsed_args)
        try:
            path = data.topology_path(c)
        except DataError as e:
            raise exceptions.CommandError(str(e))
        try:
            raw = load_data_file(path)
            Topology(raw, c.netaware.default_link_latency_us,
                     source=path)
        except TopologyError as e:
            if 'cannot reach' not in str(e):
                raise exceptions.CommandError('topology %s is invalid: %s'
                                              % (path, e))
        try:
            hvs = self._cloud().hypervisors()
        except CloudError as e:
            raise exceptions.CommandError(str(e))
        g = nx.Graph()
        t_hosts = {}
        for sw in raw.get('switches') or []:
            g.add_node(('sw', sw['name']))
        for ln in raw.get('links') or []:
            g.add_edge(('sw', ln['a']), ('sw', ln['b']))
        for h in raw.get('hosts') or []:
            t_hosts[h['name']] = h.get('switch')
            g.add_edge(('host', h['name']), ('sw', h.get('switch')))
        # The fabric is the connected part holding most of Nova's hosts.
        comps = list(nx.connected_components(g))
        main = max(comps, key=lambda cc: (
            sum(('host', h) in cc for h in hvs),
            sum(n[0] == 'host' for n in cc))) if comps else set()
        rows = []
        for h in sorted(set(hvs) | set(t_hosts)):
            hv = hvs.get(h)
            nova = ('%s/%s' % (hv.state, hv.status)) if hv else '-'
            if h not in t_hosts:
                rows.append((h, 'missing', nova, '-',
                             'Nova compute host not in the topology: the '
                             'plugin cannot place servers there by network'))
            elif hv is None:
                rows.append((h, 'extra', nova, t_hosts[h],
                             'in the topology but not a Nova compute host'))
            elif ('host', h) not in main:
                rows.append((h, 'unreachable', nova, t_hosts[h],
                             'switch %s has no path to the rest of the '
                             'fabric' % t_hosts[h]))
            else:
                rows.append((h, 'ok', nova, t_hosts[h], ''))
        self._problems = sum(r[1] != 'ok' for r in rows)
        if parsed_args.formatter == 'table':
            self.app.stdout.write(
                '%s: %d host(s) ok, %d problem(s)\n' % (
                    path, len(rows) - self._problems, self._problems))
        return ('Host', 'Status', 'Nova state', 'Switch', 'Detail'), rows


class TopologyPlot(_Base, command.Command):
    """Draw the topology with link utilisation as colour, before and after
    the rebalance plan."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('-o', '--output', required=True,
                            metavar='<file.png>', help='Image file to write')
        parser.add_argument('--no-plan', action='store_true',
                            help='Draw the current state only.')
        advisor.add_arguments(parser)
        return self._data_parser(parser)

    def take_action(self, parsed_args):
        from nova_netaware.osc import plot
        view = self._cloud_view(parsed_args)
        panels = [('current placement', view.placement)]
        if not parsed_args.no_plan:
            plan = _plan(view, parsed_args)
            panels.append(('after the plan (%d migration%s)' % (
                len(plan.moves), '' if len(plan.moves) == 1 else 's'),
                plan.placement_after))
        try:
            plot.plot(view.engine, view.traffic, panels, parsed_args.output,
                      link_threshold=parsed_args.link_threshold)
        except OSError as e:
            raise exceptions.CommandError('cannot write %s: %s'
                                          % (parsed_args.output, e))
        self.app.stdout.write('wrote %s\n' % parsed_args.output)
        return 0
