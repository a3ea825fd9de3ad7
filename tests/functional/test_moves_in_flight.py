"""Moves in flight count (issue 11), inside a real Nova.

Layout (leaf-spine, base.NetawareTestCase): leaf-1 h1 h2, leaf-2 h3 h4,
leaf-3 h5 h6; h2's uplink is 1 Gbit/s (ceiling 0.9 = 900 Mbit/s), the
others 25 Gbit/s. Three peers p0..p2 live on h1, whose compute is then
disabled (no candidate). Three movers m0..m2 each talk to their peer at
400 Mbit/s each way: h2, next to the peers, is every mover's best host and
its uplink fits two of them (800), not three (1,200).

Moves are held in flight by Nova itself: a cold migration waits in
VERIFY_RESIZE (Migration status 'finished') until confirmed, a live
migration with ``fake.FakeLiveMigrateDriver`` holds in 'running' (up to
5 s, or until force-completed or aborted); an evacuation is in flight from
its request to 'done'. Every wait is bounded and fails
the test when it runs out.
"""

from tests.functional import base  # noqa: I100 - eventlet patch first

import time
from unittest import mock

from nova.scheduler import utils as scheduler_utils
from oslo_config import cfg
from oslo_utils import uuidutils

from nova_netaware.core.engine import Candidate
from nova_netaware.core.engine import Engine
from nova_netaware.core.engine import Params
from nova_netaware.core.engine import Server
from nova_netaware.core.topology import Topology
from nova_netaware.core.traffic import TrafficMatrix
from nova_netaware.scheduler import runtime

CONF = cfg.CONF
#: seconds any wait may take before the test fails
WAIT_S = 30


class InFlightBase(base.NetawareTestCase):

    SOURCES = ('h4', 'h5', 'h6')      # m0, m1, m2

    def topology_data(self):
        topo = super().topology_data()
        for h in topo['hosts']:
            if h['name'] == 'h2':
                h['uplink_gbps'] = 1
        return topo

    def setUp(self):
        super().setUp()
        self.flags(max_concurrent_live_migrations=0)
        # h2's thin uplink must not make h2 a bad migration target on its
        # own (migration cost and pre-copy convergence through 1 Gbit/s):
        # the point is its ceiling. Peers next to h2 win the MIF.
        self.flags(dirty_rate_mbps=10, migration_weight=0.0,
                   congestion_weight=0.2, group='netaware')
        self.peers = [self.boot('p%d' % i, 'h1') for i in range(3)]
        self.movers = [self.boot('m%d' % i, h)
                       for i, h in enumerate(self.SOURCES)]
        flows = []
        for m, p in zip(self.movers, self.peers):
            flows += [(m, p, 400), (p, m, 400)]
        self.write_traffic(flows)
        svc = self.admin_api.get_services(binary='nova-compute',
                                          host='h1')[0]
        self.admin_api.put_service(svc['id'], {'status': 'disabled'})

    # -- helpers ---------------------------------------------------------
    def wait(self, cond, what, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while True:
            value = cond()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail('timed out after %d s waiting for %s'
                          % (timeout, what))
            time.sleep(0.1)

    def migration(self, server):
        """The server's latest migration (admin API), or None."""
        migs = self.admin_api.api_get(
            '/os-migrations?instance_uuid=%s' % server['id']
        ).body['migrations']
        return max(migs, key=lambda m: m['id']) if migs else None

    def wait_migration(self, server, statuses, count=None):
        def cond():
            m = self.migration(server)
            if m and m['status'] in statuses and (
                    count is None or m['id'] not in count):
                return m
        return self.wait(cond, 'migration of %s in %s' % (
            server['name'], statuses))

    def live(self, server):
        self.api.post_server_action(server['id'], {'os-migrateLive': {
            'host': None, 'block_migration': 'auto'}})

    def cold(self, server):
        self.api.post_server_action(server['id'], {'migrate': None})

    def wait_state(self, server, status):
        def cond():
            s = self.api.get_server(server['id'])
            if s['status'] == 'ERROR':
                self.fail('server %s went to ERROR' % server['name'])
            return s if s['status'] == status else None
        return self.wait(cond, '%s to be %s' % (server['name'], status))

    def hosts(self):
        return [self.host_of(m) for m in self.movers]

    def expected_next_best(self, server, source):
        """The core's best passing hosts (ties included) for *server* moved
        from *source*, with every other server where Nova has it now, and
        whether h2 passes."""
        eng = Engine(Topology.from_file(self.topology_path))
        traffic = TrafficMatrix.from_file(self.traffic_path)
        placement = {s['id']: s['OS-EXT-SRV-ATTR:host']
                     for s in self.api.get_servers(
                         detail=True, search_opts={'all_tenants': 1})}
        placement[server['id']] = source
        srv = Server(server['id'], memory_mb=server['flavor']['ram'],
                     vcpus=server['flavor']['vcpus'])
        cands = [Candidate(h) for h in self.HOSTS if h not in (source, 'h1')]
        ev = eng.evaluate(traffic, placement, srv, cands,
                          Params.from_conf(CONF.netaware))
        best = min(ev.mif[i] for i in range(len(ev.hosts)) if ev.passed[i])
        winners = {h for i, h in enumerate(ev.hosts)
                   if ev.passed[i] and ev.mif[i] <= best + 1e-9}
        return winners, bool(ev.passed[ev.hosts.index('h2')])

    def assert_two_on_h2_third_next_best(self):
        hosts = self.hosts()
        self.assertEqual(2, hosts.count('h2'), hosts)
        i = next(i for i, h in enumerate(hosts) if h != 'h2')
        winners, h2_passes = self.expected_next_best(self.movers[i],
                                                     self.SOURCES[i])
        self.assertFalse(h2_passes)
        self.assertIn(hosts[i], winners)
        self.assertIn('NetworkAwareFilter refused host h2 for server %s: '
                      'uplink' % self.movers[i]['id'], self.log_text())


class TestBurstOfMoves(InFlightBase):
    compute_driver = 'fake.FakeLiveMigrateDriver'

    def test_concurrent_live_migrations_at_most_two_on_h2(self):
        for m in self.movers:
            self.live(m)
        for m in self.movers:
            self.wait_migration(m, ['completed'])
            self.wait_state(m, 'ACTIVE')
        self.assert_two_on_h2_third_next_best()

    def test_sequential_live_migrations_same_result(self):
        for m in self.movers:
            self.live(m)
            self.wait_migration(m, ['completed'])
            self.wait_state(m, 'ACTIVE')
        self.assert_two_on_h2_third_next_best()

    def test_concurrent_cold_migrations_at_most_two_on_h2(self):
        for m in self.movers:
            self.cold(m)
        for m in self.movers:
            self.wait_state(m, 'VERIFY_RESIZE')
        self.assert_two_on_h2_third_next_best()
        for m in self.movers:
            self._confirm_resize(m)

    def test_sequential_cold_migrations_same_result(self):
        for m in self.movers:
            self.cold(m)
            self.wait_state(m, 'VERIFY_RESIZE')
        self.assert_two_on_h2_third_next_best()

    def test_in_flight_moves_are_what_blocks_h2(self):
        # The two moves held in flight are what refuses h2 to the third:
        # m0 and m1 are held mid-live-migration (their hosts are still their
        # sources in Nova's instance records) when m2 is scheduled.
        self.live(self.movers[0])
        self.live(self.movers[1])
        for m in self.movers[:2]:
            mig = self.wait_migration(m, ['running'])
            self.assertEqual('h2', mig['dest_compute'])
        self.assertEqual(list(self.SOURCES[:2]), self.hosts()[:2])
        self.cold(self.movers[2])
        self.wait_state(self.movers[2], 'VERIFY_RESIZE')
        self.assertNotEqual('h2', self.host_of(self.movers[2]))
        self.assertIn('NetworkAwareFilter refused host h2 for server %s: '
                      'uplink' % self.movers[2]['id'], self.log_text())


class TestMovesThatEnd(InFlightBase):
    compute_driver = 'fake.FakeLiveMigrateDriver'

    def test_cancelled_live_migration_stops_counting(self):
        # m0 and m1 held in flight towards h2 (800 of its 900 Mbit/s)
        self.live(self.movers[0])
        self.live(self.movers[1])
        for m in self.movers[:2]:
            self.assertEqual('h2', self.wait_migration(
                m, ['running'])['dest_compute'])
        # m0's live migration is aborted: cancelled, m0 stays on h4
        mig = self.migration(self.movers[0])
        self.api.delete_migration(self.movers[0]['id'], mig['id'])
        self.wait_migration(self.movers[0], ['cancelled'])
        self.wait_state(self.movers[0], 'ACTIVE')
        self.assertEqual('h4', self.host_of(self.movers[0]))
        # h2 carries m1 only (held or landed): m2's 400 fit beside it
        self.cold(self.movers[2])
        self.wait_state(self.movers[2], 'VERIFY_RESIZE')
        self.assertEqual('h2', self.host_of(self.movers[2]))
        self.wait_migration(self.movers[1], ['completed'])
        self.assertEqual('h2', self.host_of(self.movers[1]))

    def test_failed_live_migration_stops_counting(self):
        # A destination hypervisor failure cannot be produced with the fake
        # driver otherwise: h2's pre_live_migration raises, Nova rolls the
        # move back (migration 'error'), m0 stays on h4.
        drv = self.computes['h2'].manager.driver
        with mock.patch.object(drv, 'pre_live_migration',
                               side_effect=RuntimeError('test failure')):
            self.live(self.movers[0])
            mig = self.wait_migration(self.movers[0], ['error', 'failed'])
        self.assertEqual('h2', mig['dest_compute'])
        self.wait_state(self.movers[0], 'ACTIVE')
        self.assertEqual('h4', self.host_of(self.movers[0]))
        # the failed move takes no room on h2: m1 and m2, concurrently,
        # both land there (800 of 900 Mbit/s)
        for m in self.movers[1:]:
            self.live(m)
        for m in self.movers[1:]:
            self.wait_migration(m, ['completed'])
            self.wait_state(m, 'ACTIVE')
        self.assertEqual(['h4', 'h2', 'h2'], self.hosts())


class TestRevertedResize(InFlightBase):

    compute_driver = 'fake.MediumFakeDriver'

    def test_reverted_resize_stops_counting(self):
        for m in self.movers[:2]:
            self.cold(m)
            self.wait_state(m, 'VERIFY_RESIZE')
            self.assertEqual('h2', self.host_of(m))
        self.cold(self.movers[2])
        self.wait_state(self.movers[2], 'VERIFY_RESIZE')
        self.assertNotEqual('h2', self.host_of(self.movers[2]))
        self._confirm_resize(self.movers[2])
        # m0's move is reverted: back on h4, 'reverted' is done
        self.api.post_server_action(self.movers[0]['id'],
                                    {'revertResize': None})
        self.wait_migration(self.movers[0], ['reverted'])
        self.wait_state(self.movers[0], 'ACTIVE')
        self.assertEqual('h4', self.host_of(self.movers[0]))
        # so h2 holds m1 only (still in VERIFY_RESIZE): m2 fits now
        self.cold(self.movers[2])
        self.wait_state(self.movers[2], 'VERIFY_RESIZE')
        self.assertEqual('h2', self.host_of(self.movers[2]))


class TestRetryOnAlternate(InFlightBase):

    compute_driver = 'fake.MediumFakeDriver'

    def test_claim_conflict_on_h2_abandoned_choice_does_not_count(self):
        h2_rp = self._get_provider_uuid_by_host('h2')
        real_claim = scheduler_utils.claim_resources
        refused = []

        def claim(ctx, client, spec_obj, instance_uuid, alloc_req, **kw):
            # A Placement conflict (another scheduler claimed the last
            # resources first) cannot be produced on demand here: the
            # first claim on h2 is answered as Placement answers a
            # conflict (claim_resources returns False), as measured in
            # nova/scheduler/utils.py claim_resources.
            if not refused and h2_rp in alloc_req['allocations']:
                refused.append(instance_uuid)
                return False
            return real_claim(ctx, client, spec_obj, instance_uuid,
                              alloc_req, **kw)

        with mock.patch('nova.scheduler.utils.claim_resources', claim):
            self.cold(self.movers[0])
            self.wait_state(self.movers[0], 'VERIFY_RESIZE')
        self.assertEqual([self.movers[0]['id']], refused)
        alternate = self.host_of(self.movers[0])
        self.assertNotEqual('h2', alternate)
        # the ledger holds Nova's choice (the alternate), never h2
        entries = runtime.get_runtime().ledger().entries()
        self.assertEqual(alternate, entries[self.movers[0]['id']][0])
        # the abandoned choice takes no room on h2: m1 and m2 both fit
        for m in self.movers[1:]:
            self.cold(m)
            self.wait_state(m, 'VERIFY_RESIZE')
            self.assertEqual('h2', self.host_of(m))


class SharedLedgerBase(InFlightBase):
    """``[netaware] ledger_backend = tooz``, the options set before the
    scheduler starts: the filter loads the ledger (and connects) when Nova
    loads it."""

    compute_driver = 'fake.MediumFakeDriver'

    def ledger_url(self):
        return 'redis://127.0.0.1:6379?namespace=netaware-ft-%s' % (
            uuidutils.generate_uuid()[:8])

    def setUp(self):
        self.flags(ledger_backend='tooz', ledger_url=self.ledger_url(),
                   group='netaware')
        super().setUp()


class TestSharedLedger(SharedLedgerBase):
    """The burst with the shared ledger on the machine's Redis."""

    def test_burst_with_the_shared_ledger(self):
        for m in self.movers:
            self.cold(m)
        for m in self.movers:
            self.wait_state(m, 'VERIFY_RESIZE')
        self.assert_two_on_h2_third_next_best()
        led = runtime.get_runtime().ledger()
        self.assertEqual('ToozLedger', type(led).__name__)
        self.assertTrue(led.shared)
        self.assertNotIn('is unreachable', self.log_text())
        led.close()


class TestSharedLedgerDown(SharedLedgerBase):
    """The burst with the store unreachable (a port nothing listens on)."""

    def ledger_url(self):
        return 'redis://127.0.0.1:6390'

    def test_store_down_scheduling_goes_on_and_log_says_what_is_lost(self):
        for m in self.movers:
            self.cold(m)
        for m in self.movers:
            self.wait_state(m, 'VERIFY_RESIZE')
        # within this process its own decisions still count
        self.assert_two_on_h2_third_next_best()
        self.assertFalse(runtime.get_runtime().ledger().shared)
        self.assertEqual(1, self.log_text().count(
            'moves decided by other scheduler processes are not counted '
            'until Nova records them'))


class TestEvacuationBurst(InFlightBase):
    """m0..m2 all on h6; h6 dies (stopped, forced down) and the three are
    evacuated at once: at most two land on h2."""

    compute_driver = 'fake.MediumFakeDriver'
    SOURCES = ('h6', 'h6', 'h6')

    def test_concurrent_evacuations_at_most_two_on_h2(self):
        svc = self.admin_api.get_services(binary='nova-compute',
                                          host='h6')[0]
        self.computes['h6'].stop()
        self.admin_api.put_service(svc['id'], {'forced_down': 'true'})
        for m in self.movers:
            self.admin_api.post_server_action(m['id'], {'evacuate': {}})
        for m in self.movers:
            mig = self.wait_migration(m, ['done'])
            self.assertEqual('evacuation', mig['migration_type'])
            # as in Nova's own evacuate tests, the fake driver's rebuilt
            # server comes back SHUTOFF
            self.wait_state(m, 'SHUTOFF')
        self.assert_two_on_h2_third_next_best()
