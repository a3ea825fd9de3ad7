"""The ``network_aware_rebalance`` Watcher strategy, loaded by Watcher's own
loaders (stevedore, entry points ``watcher_strategies`` / ``watcher_goals``)
and run by Watcher's own audit handler on Watcher's database (sqlite, from
Watcher's test fixtures).

The cloud is a placement snapshot (``snapshot_cloud``, why: there) that
both the strategy and ``openstack netaware rebalance`` read; the scenario
is that of tests/osc/test_commands.py, with its hand-derived numbers:
six hosts (leaf-1: h1 h2, leaf-2: h3 h4, leaf-3: h5 h6; 25 Gbit/s
uplinks); a on h1 receives 13 Gbit/s from b (h3) and 11 Gbit/s from c
(h4): h1's uplink is at 96%. d on h6 receives 21 Gbit/s from x (h2). The
plan moves a to h3 and d to h2; the network cost goes from 180000
(24000 x 4 + 21000 x 4) to 22000 (c -> a: 11000 x 2) Mbit/s x hop.
"""

# Import first: Watcher's test package selects oslo.service's threading
# backend, which must happen before any other Watcher module picks one.
import watcher.tests.unit  # noqa: F401,I100

import io
import os
import tempfile
import types
import uuid

import fixtures
import jsonschema
from keystoneauth1 import loading as ks_loading
import yaml

from watcher.applier.actions import migration
from watcher.common import utils as watcher_utils
from watcher.decision_engine.audit import oneshot
from watcher.decision_engine import sync
from watcher.decision_engine.loading import default as loading
from watcher import objects
from watcher.tests.unit.objects import utils as obj_utils
from tests.watcher.base import WatcherDbTestCase

from nova_netaware import advisor
from nova_netaware.core.topology import leaf_spine
from nova_netaware.osc import commands
from nova_netaware.watcher import goal as netaware_goal
from nova_netaware.watcher import strategy as netaware_strategy
from tests.watcher.snapshot_cloud import SnapshotCloud

NAME = 'network_aware_rebalance'
REAL_MAKE_CLOUD = netaware_strategy.make_cloud
GROUP = 'watcher_strategies.' + NAME


def sid(name):
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name + '.netaware.test'))


START = {'a': 'h1', 'b': 'h3', 'c': 'h4', 'd': 'h6', 'x': 'h2'}
FLOWS = [('b', 'a', 13000), ('c', 'a', 11000), ('x', 'd', 21000)]


class StrategyTestCase(WatcherDbTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix='netaware-watcher-')
        self.addCleanup(lambda: __import__('shutil').rmtree(
            self.tmp, ignore_errors=True))
        self.topology_path = self.path('topology.yaml')
        self.traffic_path = self.path('traffic.yaml')
        self.placement_path = self.path('placement.yaml')
        self.conf_path = self.path('netaware.conf')
        self.dump(self.topology_path, leaf_spine(
            2, 3, 2, uplink_gbps=25, fabric_gbps=100, host_prefix='h'))
        self.write_traffic(FLOWS)
        self.write_placement(START)
        self.write_conf()
        self.names = {sid(n): n for n in START}
        # The cloud: the snapshot (see snapshot_cloud for why not Nova).
        self.useFixture(fixtures.MonkeyPatch(
            'nova_netaware.watcher.strategy.make_cloud',
            lambda osc: SnapshotCloud(self.placement_path)))
        # [watcher_strategies.network_aware_rebalance] config_files, as an
        # operator sets it in watcher.conf (the loader registers the same
        # options again when it loads the strategy).
        self.CONF = netaware_strategy.CONF
        self.CONF.register_opts(
            netaware_strategy.NetworkAwareRebalance.get_config_opts(),
            group=GROUP)
        self.flags(config_files=[self.conf_path], group=GROUP)

    # -- files -----------------------------------------------------------
    def path(self, name):
        return os.path.join(self.tmp, name)

    def dump(self, path, data):
        with open(path, 'w') as f:
            yaml.safe_dump(data, f)

    def write_traffic(self, flows):
        self.dump(self.traffic_path, {'flows': [
            {'src': sid(s), 'dst': sid(d), 'mbps': r} for s, d, r in flows]})

    def write_placement(self, where):
        hosts = {h: {'vcpus': 16, 'vcpus_used': 0, 'memory_mb': 16384,
                     'memory_mb_used': 0} for h in
                 ('h1', 'h2', 'h3', 'h4', 'h5', 'h6')}
        for h in where.values():
            hosts[h]['vcpus_used'] += 1
            hosts[h]['memory_mb_used'] += 512
        self.dump(self.placement_path, {'hosts': hosts, 'servers': [
            {'uuid': sid(n), 'name': n, 'host': h, 'memory_mb': 512,
             'vcpus': 1} for n, h in where.items()]})

    def write_conf(self, **extra):
        opts = {'topology_file': self.topology_path,
                'traffic_source': 'static',
                'static_traffic_file': self.traffic_path}
        opts.update(extra)
        with open(self.conf_path, 'w') as f:
            f.write('[netaware]\n' + ''.join(
                '%s = %s\n' % kv for kv in opts.items() if kv[1] is not None))

    # -- the two front ends ------------------------------------------------
    def load(self, **parameters):
        """The strategy as the decision engine loads it, with audit
        parameters filled with the schema's defaults as Watcher's API
        does."""
        s = loading.DefaultStrategyLoader().load(NAME)
        watcher_utils.StrictDefaultValidatingDraft4Validator(
            s.get_schema()).validate(parameters)
        s.input_parameters.update(parameters)
        return s

    def rebalance(self, *argv):
        """``openstack netaware rebalance <argv> -f json`` on the same
        cloud and [netaware] file: (header text, rows as dicts)."""
        app = types.SimpleNamespace(
            client_manager=types.SimpleNamespace(
                netaware=SnapshotCloud(self.placement_path)),
            stdout=io.StringIO(), stderr=io.StringIO())
        cmd = commands.Rebalance(app, None)
        parser = cmd.get_parser('openstack netaware rebalance')
        parsed = parser.parse_args(['--config-file', self.conf_path,
                                    '-f', 'json'] + list(argv))
        cols, rows = cmd.take_action(parsed)
        return app.stderr.getvalue(), [dict(zip(cols, r)) for r in rows]

    def moves(self, solution):
        return [(self.names[a['input_parameters']['resource_id']],
                 a['input_parameters']['source_node'],
                 a['input_parameters'].get('destination_node'))
                for a in solution.actions]


class TestStrategy(StrategyTestCase):

    def test_registered_with_watcher(self):
        strategies = loading.DefaultStrategyLoader().list_available()
        goals = loading.DefaultGoalLoader().list_available()
        self.assertIs(netaware_strategy.NetworkAwareRebalance,
                      strategies[NAME])
        self.assertEqual(NAME, strategies[NAME].get_name())
        self.assertIs(netaware_goal.NetworkCost, goals['network_cost'])
        s = self.load()
        self.assertEqual('network_cost', s.goal.name)
        # what watcher-sync stores for the goal (decision_engine/sync.py)
        specs = netaware_goal.NetworkCost.get_efficacy_specification()
        self.assertEqual(
            ['network_cost_before', 'network_cost_after',
             'busiest_link_before', 'busiest_link_after', 'migration_volume',
             'instance_migrations_count'],
            [d['name'] for d in specs.get_indicators_specs_dicts()])

    def test_parameters_are_the_advisors_declared_once(self):
        filled = {}
        watcher_utils.StrictDefaultValidatingDraft4Validator(
            netaware_strategy.NetworkAwareRebalance.get_schema()).validate(
            filled)
        knobs, how = advisor.params.split(filled)
        self.assertEqual(advisor.AdvisorParams(), knobs)
        self.assertEqual(advisor.ExecutionParams(), how)
        self.assertEqual('cold', how.migration_type)
        self.assertFalse(how.explicit_destination)
        v = watcher_utils.StrictDefaultValidatingDraft4Validator(
            netaware_strategy.NetworkAwareRebalance.get_schema())
        for bad in ({'link_threshold': 0}, {'cpu_threshold': 1.5},
                    {'max_migrations': -1}, {'min_gain': 2},
                    {'migration_type': 'warm'},
                    {'explicit_destination': 'yes'}):
            self.assertRaises(jsonschema.ValidationError, v.validate, bad)

    def test_actions_are_the_plan_of_openstack_netaware_rebalance(self):
        _, rows = self.rebalance('--max-migrations', '2')
        planned = [(r['Server'], r['Source'], r['Predicted destination'])
                   for r in rows if r['Predicted destination'] != '-']
        self.assertEqual([('a', 'h1', 'h3'), ('d', 'h6', 'h2')], planned)

        s = self.load(max_migrations=2)
        solution = s.execute()
        # default: no destination, Nova's scheduler chooses
        self.assertEqual([(n, src, None) for n, src, _ in planned],
                         self.moves(solution))
        self.assertEqual([(n, dst) for n, _, dst in planned],
                         [(self.names[st.server], st.destination)
                          for st in s.rebalance_plan.moves])
        for a in solution.actions:
            self.assertEqual('migrate', a['action_type'])
            p = a['input_parameters']
            self.assertEqual('cold', p['migration_type'])
            self.assertEqual(self.names[p['resource_id']], p['resource_name'])
            self.assertNotIn('destination_node', p)
            # what Watcher's applier checks before it runs the action
            act = migration.Migrate(config={})
            act.input_parameters = p
            self.assertTrue(act.validate_parameters())

        # the same with the default budget (5) and another threshold
        _, rows = self.rebalance('--link-threshold', '0.9')
        s = self.load(link_threshold=0.9)
        self.assertEqual(
            [(r['Server'], r['Source'], None) for r in rows
             if r['Predicted destination'] != '-'],
            self.moves(s.execute()))

    def test_explicit_destination_and_live(self):
        s = self.load(max_migrations=2, migration_type='live',
                      explicit_destination=True)
        solution = s.execute()
        self.assertEqual([('a', 'h1', 'h3'), ('d', 'h6', 'h2')],
                         self.moves(solution))
        for a in solution.actions:
            self.assertEqual('live', a['input_parameters']['migration_type'])
            act = migration.Migrate(config={})
            act.input_parameters = a['input_parameters']
            self.assertTrue(act.validate_parameters())

    def test_efficacy_indicators(self):
        header, _ = self.rebalance('--max-migrations', '2')
        s = self.load(max_migrations=2)
        solution = s.execute()
        got = {i.name: i.value for i in solution.efficacy_indicators}
        plan = s.rebalance_plan
        self.assertEqual(180000.0, got['network_cost_before'])
        self.assertEqual(22000.0, got['network_cost_after'])
        self.assertAlmostEqual(96.0, got['busiest_link_before'])
        self.assertAlmostEqual(100 * plan.util_after,
                               got['busiest_link_after'])
        # the command prints the same numbers
        self.assertIn('Network cost (sum rate x hops, Mbit/s x hop): '
                      '180000.0 -> 22000.0', header)
        self.assertIn('Max link utilisation: 96.0%% -> %.1f%%'
                      % got['busiest_link_after'], header)
        self.assertLess(got['busiest_link_after'], 80.0)
        self.assertEqual(2, got['instance_migrations_count'])
        self.assertEqual(sum(st.volume_mb for st in plan.moves),
                         got['migration_volume'])
        self.assertGreaterEqual(got['migration_volume'], 2 * 512)
        glob = {i.name: i.value for i in solution.global_efficacy}
        self.assertAlmostEqual(100.0 * (180000 - 22000) / 180000,
                               glob['network_cost_reduction'])
        self.assertAlmostEqual(96.0 - got['busiest_link_after'],
                               glob['busiest_link_reduction'])

    def test_quiet_cloud_plans_nothing(self):
        self.write_traffic([(s, d, r // 10) for s, d, r in FLOWS])
        s = self.load()
        solution = s.execute()
        self.assertEqual([], solution.actions)
        got = {i.name: i.value for i in solution.efficacy_indicators}
        self.assertEqual(0, got['instance_migrations_count'])
        self.assertEqual(got['network_cost_before'],
                         got['network_cost_after'])
        self.assertEqual(0.0, got['migration_volume'])
        self.assertIn('no hot spot', s.rebalance_plan.reasons[0])

    def test_a_traffic_change_gives_a_new_plan(self):
        # what a continuous audit sees on its next run: the data are read
        # on every execution
        self.write_traffic([])
        self.assertEqual([], self.load().execute().actions)
        self.write_traffic([('x', 'd', 21000)])
        self.assertEqual([('d', 'h6', None)], self.moves(
            self.load().execute()))


class TestAudit(StrategyTestCase):
    """A real audit through Watcher's one-shot audit handler: the action
    plan, its actions and indicators in Watcher's database; bad input makes
    the audit FAILED with a clear status message and no action plan."""

    def setUp(self):
        super().setUp()
        # Notifications go to the message bus; none runs in this test.
        self.useFixture(fixtures.MockPatch('watcher.notifications.audit'))
        # What watcher-decision-engine does at start: goals and strategies
        # from the entry points into the database.
        sync.Syncer().sync()
        self.goal = objects.Goal.get_by_name(self.context, 'network_cost')
        self.strategy = objects.Strategy.get_by_name(self.context, NAME)

    def test_synced_goal_and_strategy(self):
        self.assertEqual(NAME, self.strategy.name)
        self.assertEqual(self.goal.id, self.strategy.goal_id)
        self.assertEqual(
            netaware_strategy.NetworkAwareRebalance.get_schema(),
            self.strategy.parameters_spec)
        self.assertEqual(
            [n for n, _, _ in netaware_goal.INDICATORS] +
            ['instance_migrations_count'],
            [i['name'] for i in self.goal.efficacy_specification])

    def audit(self, **parameters):
        # As Watcher's API does on audit create: validate the parameters
        # against the stored spec, filling in the defaults.
        try:
            watcher_utils.StrictDefaultValidatingDraft4Validator(
                self.strategy.parameters_spec).validate(parameters)
        except jsonschema.ValidationError:
            pass        # a decision engine may still be given one
        tmpl = obj_utils.create_test_audit_template(
            self.context, uuid=str(uuid.uuid4()), name=str(uuid.uuid4()),
            goal_id=self.goal.id, strategy_id=self.strategy.id)
        a = obj_utils.create_test_audit(
            self.context, uuid=str(uuid.uuid4()), name=str(uuid.uuid4()),
            goal_id=self.goal.id, strategy_id=self.strategy.id,
            audit_template_id=tmpl.id, parameters=parameters,
            state=objects.audit.State.PENDING, auto_trigger=False)
        oneshot.OneShotAuditHandler().execute(a, self.context)
        a = objects.Audit.get_by_uuid(self.context, a.uuid)
        plans = objects.ActionPlan.list(
            self.context, filters={'audit_uuid': a.uuid})
        return a, plans

    def test_audit_makes_the_action_plan_with_indicators(self):
        a, plans = self.audit(max_migrations=2)
        self.assertEqual(objects.audit.State.SUCCEEDED, a.state)
        self.assertEqual(1, len(plans))
        actions = objects.Action.list(
            self.context, filters={'action_plan_uuid': plans[0].uuid})
        self.assertEqual(
            sorted([('a', 'h1'), ('d', 'h6')]),
            sorted((self.names[x.input_parameters['resource_id']],
                    x.input_parameters['source_node']) for x in actions))
        self.assertTrue(all(x.action_type == 'migrate' for x in actions))
        ind = {i.name: float(i.value) for i in objects.EfficacyIndicator.list(
            self.context, filters={'action_plan_uuid': plans[0].uuid})}
        self.assertEqual(180000.0, ind['network_cost_before'])
        self.assertEqual(22000.0, ind['network_cost_after'])
        self.assertAlmostEqual(96.0, ind['busiest_link_before'])
        glob = {g['name']: g['value'] for g in plans[0].global_efficacy}
        self.assertAlmostEqual(87.7778, glob['network_cost_reduction'], 3)

    def test_quiet_cloud_gives_an_empty_action_plan(self):
        self.write_traffic([(s, d, r // 10) for s, d, r in FLOWS])
        a, plans = self.audit()
        self.assertEqual(objects.audit.State.SUCCEEDED, a.state)
        self.assertEqual(1, len(plans))
        self.assertEqual(objects.action_plan.State.SUCCEEDED, plans[0].state)
        self.assertEqual([], objects.Action.list(
            self.context, filters={'action_plan_uuid': plans[0].uuid}))
        ind = {i.name: float(i.value) for i in objects.EfficacyIndicator.list(
            self.context, filters={'action_plan_uuid': plans[0].uuid})}
        self.assertEqual(0.0, ind['instance_migrations_count'])
        self.assertEqual(ind['network_cost_before'],
                         ind['network_cost_after'])

    def assertFailed(self, message, **parameters):
        a, plans = self.audit(**parameters)
        self.assertEqual(objects.audit.State.FAILED, a.state)
        self.assertIn(message, a.status_message)
        self.assertTrue(a.status_message.startswith('nova-netaware: '))
        self.assertEqual([], plans)            # nothing to apply
        return a

    def test_missing_topology_fails_the_audit(self):
        self.write_conf(topology_file=None)
        self.assertFailed('no topology: set [netaware] topology_file')
        self.write_conf(topology_file=self.path('nowhere.yaml'))
        self.assertFailed('nowhere.yaml')

    def test_dead_traffic_source_fails_the_audit(self):
        self.write_conf(traffic_source='prometheus',
                        prometheus_url='http://127.0.0.1:9',
                        prometheus_timeout=0.5)
        self.assertFailed("traffic source 'prometheus' failed")

    def test_topology_lacking_a_compute_host_fails_the_audit(self):
        topo = leaf_spine(2, 3, 2, uplink_gbps=25, fabric_gbps=100,
                          host_prefix='h')
        topo['hosts'] = [h for h in topo['hosts'] if h['name'] != 'h5']
        self.dump(self.topology_path, topo)
        self.assertFailed('lacks Nova compute host(s) h5')

    def test_unreachable_keystone_fails_the_audit(self):
        # The real connection (Watcher's NovaHelper over Watcher's keystone
        # session from [watcher_clients_auth]), to a keystone that is not
        # there.
        self.useFixture(fixtures.MonkeyPatch(
            'nova_netaware.watcher.strategy.make_cloud', REAL_MAKE_CLOUD))
        group = 'watcher_clients_auth'
        self.CONF.register_opts(
            ks_loading.get_auth_plugin_conf_options('password'), group=group)
        self.flags(auth_type='password', auth_url='http://127.0.0.1:9/v3',
                   username='watcher', password='x', project_name='service',
                   user_domain_name='Default',
                   project_domain_name='Default', group=group)
        self.assertFailed('cannot read the cloud: Unable to establish '
                          'connection to http://127.0.0.1:9/v3')

    def test_bad_parameter_fails_the_audit(self):
        # the API refuses it (schema); a decision engine given one anyway
        self.assertFailed('bad audit parameters: max_migrations must be an '
                          'integer >= 0', max_migrations=1.5)
