"""The filter and weigher inside a real Nova (functional harness).

Servers are booted on chosen hosts, a traffic file is written, and cold and
live migrations go through the real compute API, conductor and scheduler.
The expected destination is computed by the core on the same files and the
placement read back from the API, so the tests check that Nova, driven by
the plugin, does what the method says.
"""

from tests.functional import base  # noqa: I100 - eventlet patch first

from nova_netaware.core.engine import Candidate
from nova_netaware.core.engine import Engine
from nova_netaware.core.engine import Params
from nova_netaware.core.engine import Server
from nova_netaware.core.topology import load_data_file
from nova_netaware.core.topology import Topology
from nova_netaware.core.traffic import TrafficMatrix
from nova_netaware.scheduler import runtime


class PredictMixin(object):

    def predict(self, server, params=None, **server_kw):
        """The core's verdicts for moving *server*, from the same files."""
        eng = Engine(Topology.from_file(self.topology_path))
        traffic = TrafficMatrix.from_file(self.traffic_path)
        servers = self.api.get_servers(detail=True,
                                       search_opts={'all_tenants': 1})
        placement = {s['id']: s['OS-EXT-SRV-ATTR:host'] for s in servers}
        src = placement[server['id']]
        flavor = server['flavor']
        srv = Server(server['id'], memory_mb=flavor['ram'],
                     vcpus=flavor['vcpus'], **server_kw)
        cands = [Candidate(h) for h in self.HOSTS if h != src]
        return eng.evaluate(traffic, placement, srv, cands,
                            params or Params())


class TestMovesFollowTheMIF(PredictMixin, base.NetawareTestCase):

    def setUp(self):
        super().setUp()
        self.a = self.boot('a', 'h1')
        self.b = self.boot('b', 'h3')
        self.c = self.boot('c', 'h5')

    def test_cold_migrate_lands_on_lowest_mif_and_follows_file_edits(self):
        self.write_traffic([(self.a, self.b, 2000), (self.b, self.a, 2000),
                            (self.a, self.c, 100)])
        ev = self.predict(self.a)
        self.assertEqual('h3', ev.winner)     # next to its chatty peer
        self._migrate_server(self.a)
        self.assertEqual(ev.winner, self.host_of(self.a))
        self._confirm_resize(self.a)
        self.assertIn('MigrationImpactWeigher ranking for server %s'
                      % self.a['id'], self.log_text())

        # The file is re-read on the next request: now c is the talker.
        self.write_traffic([(self.a, self.c, 3000), (self.c, self.a, 500)])
        ev = self.predict(self.a)
        self.assertEqual('h5', ev.winner)
        self._migrate_server(self.a)
        self.assertEqual('h5', self.host_of(self.a))
        self._confirm_resize(self.a)

    def test_live_migrate_lands_on_lowest_mif(self):
        self.write_traffic([(self.a, self.c, 1500), (self.c, self.a, 1500),
                            (self.a, self.b, 200)])
        ev = self.predict(self.a)
        self.assertEqual('h5', ev.winner)
        self._live_migrate(self.a)
        self.assertEqual(ev.winner, self.host_of(self.a))

    def test_host_violating_a_hard_constraint_is_never_chosen(self):
        x = self.boot('x', 'h3')
        y = self.boot('y', 'h6')
        # x fills 92% of h3's outgoing uplink: h3 would be the best place
        # for a, but a's own traffic to c would push it further over 90%.
        self.write_traffic([(self.a, self.b, 2000), (self.b, self.a, 2000),
                            (self.a, self.c, 100), (x, y, 23000)])
        ev = self.predict(self.a)
        h3 = ev.hosts.index('h3')
        self.assertFalse(ev.passed[h3])
        self.assertIn('uplink', ev.reasons['h3'][0])
        self.assertEqual('h4', ev.winner)
        self._live_migrate(self.a)
        self.assertEqual('h4', self.host_of(self.a))
        self.assertIn('NetworkAwareFilter refused host h3 for server %s: '
                      'uplink: out 23000 + 100 Mbit/s on 25000 Mbit/s'
                      % self.a['id'], self.log_text())
        # and again with a cold migration from h4: still never h3
        self._migrate_server(self.a)
        self.assertNotEqual('h3', self.host_of(self.a))
        self._confirm_resize(self.a)

    def test_no_host_passes_novalidhost(self):
        # A dirty rate above every path's bandwidth: pre-copy never
        # converges (lambda >= 1) anywhere.
        self.api.post_server_metadata(
            self.a['id'], {'netaware:dirty_rate_mbps': '50000'})
        self.write_traffic([(self.a, self.b, 100)])
        ev = self.predict(self.a, dirty_rate_mbps=50000)
        self.assertFalse(ev.passed.any())
        self.migrate_expect_novalidhost(self.a)
        self.assertIn('migration: does not converge', self.log_text())
        # live: the migration errors out, the server stays where it was
        self.api.post_server_action(
            self.a['id'], {'os-migrateLive': {'host': None,
                                              'block_migration': 'auto'}})
        self._wait_for_migration_status(self.a, ['error'])
        server = self._wait_for_state_change(self.a, 'ACTIVE')
        self.assertEqual('h1', server['OS-EXT-SRV-ATTR:host'])

    def test_flavor_max_hops_bounds_distance(self):
        self._create_flavor(id='near', name='near', memory_mb=512, vcpu=1,
                            disk=1, ephemeral=0,
                            extra_spec={'netaware:max_hops': '2'})
        d = self.boot('d', 'h1', flavor_id='near')
        # d talks a little to b (h3); c is heavy but not a peer of d.
        self.write_traffic([(d, self.b, 10)])
        ev = self.predict(self.api.get_server(d['id']), max_hops=2)
        self.assertEqual({'h3', 'h4'},
                         {h for h, p in zip(ev.hosts, ev.passed) if p})
        self._migrate_server(d)
        self.assertIn(self.host_of(d), ('h3', 'h4'))
        self.assertIn('distance: 4 hops to a peer > max_hops 2',
                      self.log_text())
        self._confirm_resize(d)


class TestWeightMultiplier(PredictMixin, base.NetawareTestCase):
    """All of Nova's weighers plus ours: the multiplier decides."""

    nova_weighers = True

    def test_raising_multiplier_lets_the_network_win(self):
        self._create_flavor(id='big', name='big', memory_mb=2048, vcpu=3,
                            disk=100, ephemeral=0)
        a = self.boot('a', 'h1')
        b = self.boot('b', 'h3')
        for i in range(2):
            self.boot('fill%d' % i, 'h3', flavor_id='big')
        self.write_traffic([(a, b, 2000), (b, a, 2000)])
        self.assertEqual('h3', self.predict(a).winner)

        # multiplier 1.0: RAM, CPU and disk weighers prefer an empty host
        self._migrate_server(a)
        first = self.host_of(a)
        self.assertNotEqual('h3', first)
        self._confirm_resize(a)

        self.flags(weight_multiplier=20.0, group='netaware')
        self._migrate_server(a)
        self.assertEqual('h3', self.host_of(a))
        self._confirm_resize(a)

    def test_aggregate_metadata_overrides_multiplier(self):
        a = self.boot('a', 'h1')
        b = self.boot('b', 'h3')
        self._create_flavor(id='big', name='big', memory_mb=2048, vcpu=3,
                            disk=100, ephemeral=0)
        for i in range(2):
            self.boot('fill%d' % i, 'h3', flavor_id='big')
        self.write_traffic([(a, b, 2000), (b, a, 2000)])
        agg = self.admin_api.post_aggregate(
            {'aggregate': {'name': 'netaware'}})
        for h in self.HOSTS:
            self.admin_api.add_host_to_aggregate(agg['id'], h)
        self.admin_api.post_aggregate_action(agg['id'], {
            'set_metadata': {'metadata': {
                'netaware_weight_multiplier': '20'}}})
        self._migrate_server(a)
        self.assertEqual('h3', self.host_of(a))


class TestNovaDefaultWeighersAlone(PredictMixin, base.NetawareTestCase):
    """Nova's default filters and weighers only: the baseline."""

    use_filter = False
    use_weigher = False
    nova_weighers = True

    def test_default_weighers_choose_differently(self):
        a = self.boot('a', 'h1')
        b = self.boot('b', 'h3')
        self._create_flavor(id='big', name='big', memory_mb=2048, vcpu=3,
                            disk=100, ephemeral=0)
        self.boot('fill', 'h3', flavor_id='big')
        self.write_traffic([(a, b, 2000), (b, a, 2000)])
        mif_choice = self.predict(a).winner
        self.assertEqual('h3', mif_choice)
        self._migrate_server(a)
        self.assertNotEqual(mif_choice, self.host_of(a))


class TestOnlyTheWeigherWithNovasDefaults(PredictMixin,
                                          base.NetawareTestCase):
    """Same scenario as above, but with our weigher (multiplier 20)."""

    use_filter = False
    nova_weighers = True

    def test_same_scenario_network_wins(self):
        self.flags(weight_multiplier=20.0, group='netaware')
        a = self.boot('a', 'h1')
        b = self.boot('b', 'h3')
        self._create_flavor(id='big', name='big', memory_mb=2048, vcpu=3,
                            disk=100, ephemeral=0)
        self.boot('fill', 'h3', flavor_id='big')
        self.write_traffic([(a, b, 2000), (b, a, 2000)])
        self._migrate_server(a)
        self.assertEqual('h3', self.host_of(a))


class TestBadInput(PredictMixin, base.NetawareTestCase):
    """Scheduling keeps working; the log says why, once."""

    def setUp(self):
        super().setUp()
        self.a = self.boot('a', 'h1')
        self.b = self.boot('b', 'h3')
        self.write_traffic([(self.a, self.b, 2000)])

    def _migrate_ok(self):
        self._migrate_server(self.a)
        self._confirm_resize(self.a)
        return self.host_of(self.a)

    def test_malformed_topology_fails_open(self):
        with open(self.topology_path, 'w') as f:
            f.write('switches: [{name: s1}]\nlinks: [{a: s1, b: nowhere, '
                    'gbps: 1}]\nhosts: [{name: h1, switch: s1, '
                    'uplink_gbps: 1}]\n')
        self.assertNotEqual('h1', self._migrate_ok())
        log = self.log_text()
        self.assertIn("links[0]: unknown switch 'nowhere'", log)
        self.assertEqual(1, log.count("unknown switch 'nowhere'"))
        self._migrate_ok()      # again: still works, not logged again
        self.assertEqual(1, self.log_text().count("unknown switch 'nowhere'"))

    def test_malformed_traffic_fails_open(self):
        with open(self.traffic_path, 'w') as f:
            f.write('flows: [{src: x, dst: y, mbps: lots}]\n')
        self._migrate_ok()
        self.assertIn("flows[0].mbps must be a number, got 'lots'",
                      self.log_text())

    def test_missing_file_fails_open(self):
        self.flags(topology_file='/nonexistent/topo.yaml', group='netaware')
        self._migrate_ok()
        self.assertIn('cannot read /nonexistent/topo.yaml', self.log_text())

    def test_fail_closed_refuses_all(self):
        self.flags(topology_file='/nonexistent/topo.yaml',
                   on_missing_data='fail-closed', group='netaware')
        self.migrate_expect_novalidhost(self.a)

    def test_unknown_host(self):
        topo = load_data_file(self.topology_path)
        topo['hosts'] = [h for h in topo['hosts'] if h['name'] != 'h2']
        import yaml
        with open(self.topology_path, 'w') as f:
            yaml.safe_dump(topo, f)
        self._migrate_ok()
        self.assertIn('host h2 is not in the topology', self.log_text())

    def test_deleted_peer(self):
        c = self.boot('c', 'h5')
        self.write_traffic([(self.a, self.b, 100), (self.a, c, 3000)])
        self._delete_server(c)
        self.assertEqual('h3', self._migrate_ok())
        self.assertIn('peer %s of server %s has no host' % (
            c['id'], self.a['id']), self.log_text())

    def test_failing_source_fails_open(self):
        class Broken(object):
            # Stand-in for a traffic source whose backend is down: it is
            # the source that fails, not the code under test.
            def get(self):
                raise ConnectionError('telemetry backend unreachable')
        rt = runtime.get_runtime()
        rt._source, rt._source_name = Broken(), 'static'
        self.assertNotEqual('h1', self._migrate_ok())
        self.assertIn("traffic source 'static' failed: telemetry backend "
                      "unreachable", self.log_text())

    def test_unloadable_source(self):
        self.flags(traffic_source='no-such-source', group='netaware')
        self._migrate_ok()
        self.assertIn("traffic source 'no-such-source' cannot be loaded",
                      self.log_text())


class TestOtherMoves(PredictMixin, base.NetawareTestCase):
    """Unshelve and evacuate without a target host follow the MIF too."""

    def test_unshelve_follows_mif(self):
        self.flags(shelved_offload_time=-1)
        a = self.boot('a', 'h1')
        b = self.boot('b', 'h5')
        self.write_traffic([(a, b, 3000), (b, a, 3000)])
        self.api.post_server_action(a['id'], {'shelve': {}})
        self._wait_for_state_change(a, 'SHELVED')
        self.api.post_server_action(a['id'], {'shelveOffload': {}})
        self._wait_for_state_change(a, 'SHELVED_OFFLOADED')
        self.api.post_server_action(a['id'], {'unshelve': None})
        self._wait_for_state_change(a, 'ACTIVE')
        self.assertEqual('h5', self.host_of(a))

    def test_evacuate_follows_mif(self):
        a = self.boot('a', 'h1')
        b = self.boot('b', 'h4')
        self.write_traffic([(a, b, 3000), (b, a, 3000)])
        self.computes['h1'].stop()
        svc = self.admin_api.get_services(host='h1',
                                          binary='nova-compute')[0]
        self.admin_api.put_service_force_down(svc['id'], True)
        self.api.post_server_action(a['id'], {'evacuate': {}})
        self._wait_for_migration_status(a, ['done'])
        # since microversion 2.95 an evacuated server arrives stopped
        self._wait_for_state_change(a, 'SHUTOFF')
        self.assertEqual('h4', self.host_of(a))


class TestRebuild(PredictMixin, base.NetawareTestCase):
    """A rebuild keeps the server on its host: the filter passes it without
    evaluating (Nova's RUN_ON_REBUILD = False), even where it would refuse
    that host for a move."""

    IMAGES = ('155d900f-4e14-4e4c-a73d-069cbf4541e6',
              'a2459075-d96c-40d5-893e-577ff92e721c')

    def test_rebuild_with_a_new_image_stays_on_a_host_a_move_refuses(self):
        self._create_flavor(id='near', name='near', memory_mb=512, vcpu=1,
                            disk=1, ephemeral=0,
                            extra_spec={'netaware:max_hops': '2'})
        d = self.boot('d', 'h1', flavor_id='near')
        b = self.boot('b', 'h3')
        self.write_traffic([(d, b, 10), (b, d, 10)])
        # Judged as a move, d's own host is refused: b is 4 hops away.
        eng = Engine(Topology.from_file(self.topology_path))
        ev = eng.evaluate(TrafficMatrix.from_file(self.traffic_path),
                          {d['id']: 'h1', b['id']: 'h3'},
                          Server(d['id'], memory_mb=512, vcpus=1,
                                 max_hops=2), [Candidate('h1')], Params())
        self.assertFalse(ev.passed[0])
        self.assertIn('distance: 4 hops to a peer > max_hops 2',
                      ev.reasons['h1'][0])
        # A new image sends the rebuild through the scheduler, with the
        # rebuild check type and d's host forced; the request is also
        # restricted to d's cell, so it looks like a move to the plugin.
        image = self.api.get_server(d['id'])['image']['id']
        new_image = [i for i in self.IMAGES if i != image][0]
        server = self._rebuild_server(d, new_image)
        self.assertEqual(new_image, server['image']['id'])
        self.assertEqual('h1', server['OS-EXT-SRV-ATTR:host'])
        self.assertNotIn('NetworkAwareFilter refused host h1',
                         self.log_text())
