"""The incremental placement map against Nova's own databases (issue 12).

Servers are booted, moved and deleted through the real compute API in
Nova's functional harness; "another process" is a write to the cell
database through a different context that bypasses the map. Each check
asserts that the change was seen by the incremental read (no second full
read), so a broken delta query fails the test.
"""

from tests.functional import base  # noqa: I100 - eventlet patch first

import datetime

import sqlalchemy as sa

from nova import context as nova_context
from nova.db.main import api as main_db_api
from nova.db.main import models
from nova import objects

from nova_netaware.scheduler import placement_map
from nova_netaware.scheduler import runtime
from tests.functional.test_scheduler_plugin import PredictMixin


class MapTestCase(base.NetawareTestCase):
    HOSTS = ['h1', 'h2', 'h3']

    def setUp(self):
        super().setUp()
        self.ctx = nova_context.get_admin_context()
        self.a = self.boot('a', 'h1')
        self.b = self.boot('b', 'h2')

    def new_map(self, **kw):
        # id_overlap=0: in this small database the last 100 ids are every
        # row, which would hide a broken updated_at condition
        return placement_map.PlacementMap(id_overlap=0, **kw)

    def lookup(self, pm, *servers):
        return pm.lookup(self.ctx, [s['id'] for s in servers])[0]

    def cell(self):
        return objects.InstanceMapping.get_by_instance_uuid(
            self.ctx, self.a['id']).cell_mapping

    def write_elsewhere(self, server, values):
        """Another process's write: its own context, straight to the DB."""
        other = nova_context.get_admin_context()
        with nova_context.target_cell(other, self.cell()) as cctx:
            main_db_api.instance_update(cctx, server['id'], values)

    def stamp_in_past(self, server, host, seconds):
        """A write stamped *seconds* before the DB clock (a writer whose
        clock lags, or a transaction committed late)."""
        inst = models.Instance.__table__
        other = nova_context.get_admin_context()
        with nova_context.target_cell(other, self.cell()) as cctx:
            with main_db_api.get_context_manager(cctx).writer.using(
                    cctx) as session:
                now, _ = placement_map.db_clock(session, inst)
                session.execute(inst.update().where(
                    inst.c.uuid == server['id']).values(
                        host=host, node=host,
                        updated_at=now - datetime.timedelta(
                            seconds=seconds)))


class TestPlacementMap(MapTestCase):

    def test_move_is_seen_on_next_request(self):
        pm = self.new_map()
        self.assertEqual({self.a['id']: 'h1', self.b['id']: 'h2'},
                         self.lookup(pm, self.a, self.b))
        self._live_migrate(self.a)
        moved_to = self.host_of(self.a)
        self.assertNotEqual('h1', moved_to)
        self.assertEqual(moved_to, self.lookup(pm, self.a, self.b)[
            self.a['id']])
        self._migrate_server(self.b)
        self._confirm_resize(self.b)
        self.assertEqual(self.host_of(self.b), self.lookup(
            pm, self.a, self.b)[self.b['id']])
        self.assertEqual(1, pm.full_reads)

    def test_delete_removes_the_entry(self):
        pm = self.new_map()
        self.assertIn(self.b['id'], self.lookup(pm, self.a, self.b))
        self._delete_server(self.b)
        self.assertEqual({self.a['id']: 'h1'},
                         self.lookup(pm, self.a, self.b))
        self.assertEqual(1, pm.full_reads)

    def test_restart_reads_everything(self):
        first = self.new_map()
        self.lookup(first, self.a, self.b)
        # while no map runs, the placement changes; a new one (a restarted
        # scheduler) reads it all
        self.write_elsewhere(self.a, {'host': 'h3', 'node': 'h3'})
        del first
        pm = self.new_map()
        self.assertEqual({self.a['id']: 'h3', self.b['id']: 'h2'},
                         self.lookup(pm, self.a, self.b))
        self.assertEqual(1, pm.full_reads)

    def test_write_by_another_process_is_seen_on_next_request(self):
        pm = self.new_map()
        self.lookup(pm, self.a, self.b)
        self.write_elsewhere(self.a, {'host': 'h3', 'node': 'h3'})
        self.assertEqual('h3', self.lookup(pm, self.a, self.b)[self.a['id']])
        self.write_elsewhere(self.b, {'vm_state': 'deleted'})
        self.assertNotIn(self.b['id'], self.lookup(pm, self.a, self.b))
        self.assertEqual(1, pm.full_reads)

    def test_late_commit_within_the_overlap_is_seen(self):
        pm = self.new_map()
        self.lookup(pm, self.a, self.b)
        self.stamp_in_past(self.a, 'h3', placement_map.OVERLAP_S / 2)
        self.assertEqual('h3', self.lookup(pm, self.a, self.b)[self.a['id']])
        self.assertEqual(1, pm.full_reads)

    def test_skew_beyond_the_overlap_waits_for_the_full_read(self):
        # the documented bound: a stamp older than the overlap is missed by
        # the delta and found by the periodic full read
        pm = self.new_map(overlap_s=0)
        self.lookup(pm, self.a, self.b)
        self.stamp_in_past(self.a, 'h3', 60)
        self.assertEqual('h1', self.lookup(pm, self.a, self.b)[self.a['id']])
        pm.full_every_s = 0
        self.assertEqual('h3', self.lookup(pm, self.a, self.b)[self.a['id']])
        self.assertEqual(2, pm.full_reads)

    def test_new_servers_in_the_matrix_are_read_alone(self):
        pm = self.new_map()
        self.assertEqual({self.a['id']: 'h1'}, self.lookup(pm, self.a))
        c = self.boot('c', 'h3')
        self.assertEqual({self.a['id']: 'h1', self.b['id']: 'h2',
                          c['id']: 'h3'}, self.lookup(pm, self.a, self.b, c))
        self.assertEqual(1, pm.full_reads)

    def test_a_failed_read_reads_everything_next_time(self):
        pm = self.new_map()
        self.lookup(pm, self.a, self.b)
        real = placement_map.db_clock
        self.stub_out('nova_netaware.scheduler.placement_map.db_clock',
                      lambda *a: 1 / 0)
        self.assertRaises(ZeroDivisionError, self.lookup, pm, self.a)
        self.stub_out('nova_netaware.scheduler.placement_map.db_clock', real)
        self.assertEqual({self.a['id']: 'h1'}, self.lookup(pm, self.a))
        self.assertEqual(2, pm.full_reads)

    def test_server_metadata_is_read(self):
        self.api.post_server_metadata(self.a['id'],
                                      {'netaware:max_hops': '2'})
        pm = self.new_map()
        self.assertEqual({'netaware:max_hops': '2'},
                         pm.lookup(self.ctx, [self.a['id']])[1])

    def test_in_flight_migrations_are_one_query_per_cell(self):
        cells = self.new_map().cells(self.ctx)
        self.assertEqual([], placement_map.in_flight_migrations(
            self.ctx, cells))
        self._migrate_server(self.a)        # waits in VERIFY_RESIZE
        moves = placement_map.in_flight_migrations(self.ctx, cells)
        self.assertEqual([(self.a['id'], 'h1', self.host_of(self.a),
                           'finished')],
                         [(m['instance_uuid'], m['source_compute'],
                           m['dest_compute'], m['status']) for m in moves])
        self._confirm_resize(self.a)
        self.assertEqual([], placement_map.in_flight_migrations(
            self.ctx, cells))


class TestSchedulerSeesOtherProcesses(PredictMixin, MapTestCase):
    """The scheduler's own map (the runtime's) follows a move written by
    another process between two requests."""

    HOSTS = ['h1', 'h2', 'h3', 'h4']

    def test_move_by_another_scheduler_is_seen_on_next_request(self):
        self.stub_out('nova_netaware.scheduler.placement_map.ID_OVERLAP', 0)
        self.write_traffic([(self.a, self.b, 2000), (self.b, self.a, 2000)])
        self._migrate_server(self.a)          # next to b: h2
        self.assertEqual('h2', self.host_of(self.a))
        self._confirm_resize(self.a)
        pm = runtime.get_runtime()._placement_map
        self.assertEqual(1, pm.full_reads)
        # another scheduler process moved b to h3 (its record now says so)
        self.write_elsewhere(self.b, {'host': 'h3', 'node': 'h3'})
        ev = self.predict(self.a)
        self.assertEqual('h3', ev.winner)
        self._migrate_server(self.a)
        self.assertEqual('h3', self.host_of(self.a))
        self.assertEqual(1, pm.full_reads)
