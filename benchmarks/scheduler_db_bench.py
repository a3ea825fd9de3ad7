"""End to end against a real database: our whole request vs Nova's.

Creates a Nova API database and a cell database on MariaDB with Nova's own
schema (its migrations, as ``nova-manage db sync``), maps the cell, and loads the benchmark's
hosts (compute node, service and host mapping each) and servers (instance
and instance mapping each): the same topologies and traffic matrices as
``scheduler_bench.py``, with the servers' names turned into uuids.

Per request (median of N), in the same process and run:

* Nova: its per-request host-state read
  (``HostManager.get_host_states_by_uuids``, compute nodes and services,
  instance info as the computes report it) plus its default filters and
  weighers on those host states;
* ours: the placement lookup, then our filter and weigher on the same host
  states. "full" is the old lookup (every server of the matrix through
  InstanceMapping and Instance objects on each request), "map" the
  incremental placement map. Before each timed request another process
  moves one server (an UPDATE of its instance row), so the map's delta and
  the loads' incremental update do real work.

The breakdown splits our request into lookup, loads (the matrix's link
loads), checks (the constraints) and MIF; "rest" is the remainder (path
walks, pre-copy model, Nova's handlers around our filter and weigher).

    .venv/bin/python benchmarks/scheduler_db_bench.py             # 10k, 50k
    .venv/bin/python benchmarks/scheduler_db_bench.py --sizes 10000

Databases are named ``netaware_bench_*`` and dropped at the end.
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid as uuidlib
import warnings

warnings.simplefilter('ignore')

import sqlalchemy as sa  # noqa: E402

import scheduler_bench  # noqa: E402

DB_URL = 'mysql+pymysql://root@localhost/%s?unix_socket=%s&charset=utf8'
SOCKET = '/run/mysqld/mysqld.sock'
API_DB, CELL_DB = 'netaware_bench_api', 'netaware_bench_cell1'
BATCH = 5000


def server_uuid(name):
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, 'netaware-bench/' + name))


def url(db):
    return DB_URL % (db, SOCKET)


# -- databases -----------------------------------------------------------------
def create_databases():
    root = sa.create_engine(url(''))
    with root.begin() as c:
        for db in (API_DB, CELL_DB):
            c.execute(sa.text('DROP DATABASE IF EXISTS %s' % db))
            c.execute(sa.text('CREATE DATABASE %s CHARACTER SET utf8' % db))
    # Nova's own migrations (what nova-manage api_db sync / db sync run)
    from nova.db import migration
    migration.db_sync(database='api')
    migration.db_sync(database='main')


def drop_databases():
    root = sa.create_engine(url(''))
    with root.begin() as c:
        for db in (API_DB, CELL_DB):
            c.execute(sa.text('DROP DATABASE IF EXISTS %s' % db))


def configure_nova():
    from oslo_config import cfg

    import nova.conf  # noqa: F401
    from nova import config
    cfg.CONF.set_override('connection', url(API_DB), 'api_database')
    cfg.CONF.set_override('connection', url(CELL_DB), 'database')
    from oslo_messaging import transport
    cfg.CONF.register_opts(transport._transport_opts)   # CellMapping reads
    config.parse_args(['netaware-db-bench'], default_config_files=[],
                      configure_db=True, init_rpc=False)


def _insert(engine, table, rows):
    with engine.begin() as c:
        for i in range(0, len(rows), BATCH):
            c.execute(table.insert(), rows[i:i + BATCH])


def load(hosts, placement, cell_uuid):
    """Rows of Nova's schema for *hosts* and *placement* {uuid: host}."""
    from nova.db.api import models as am
    from nova.db.main import models as mm
    api, cell = sa.create_engine(url(API_DB)), sa.create_engine(url(CELL_DB))
    now = sa.func.utc_timestamp()
    with api.begin() as c:
        c.execute(am.CellMapping.__table__.insert(), dict(
            uuid=cell_uuid, name='cell1', transport_url='none:///',
            database_connection=url(CELL_DB), disabled=False))
        cell_id = c.execute(sa.select(am.CellMapping.id)).scalar()
    _insert(api, am.HostMapping.__table__,
            [dict(cell_id=cell_id, host=h) for h in hosts])
    _insert(api, am.InstanceMapping.__table__, [dict(
        instance_uuid=u, cell_id=cell_id, project_id='demo', user_id='demo',
        queued_for_delete=False) for u in placement])
    _insert(cell, mm.Service.__table__, [dict(
        uuid=str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, 'svc-' + h)), host=h,
        binary='nova-compute', topic='compute', report_count=1,
        disabled=False, forced_down=False, version=66, deleted=0)
        for h in hosts])
    with cell.begin() as c:
        svc = dict(c.execute(sa.select(mm.Service.host, mm.Service.id)).all())
    _insert(cell, mm.ComputeNode.__table__, [dict(
        uuid=str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, h)), host=h,
        service_id=svc[h], hypervisor_hostname=h, vcpus=64, memory_mb=262144,
        local_gb=1000, vcpus_used=8, memory_mb_used=32768, local_gb_used=0,
        hypervisor_type='fake', hypervisor_version=1000, cpu_info='{}',
        free_ram_mb=229376, free_disk_gb=1000, current_workload=0,
        running_vms=2, disk_available_least=1000, host_ip='10.0.0.1',
        supported_instances='[]', pci_stats=None, metrics='[]',
        extra_resources=None, stats='{}', numa_topology=None,
        ram_allocation_ratio=1.0, cpu_allocation_ratio=1.0,
        disk_allocation_ratio=1.0, mapped=1, deleted=0) for h in hosts])
    _insert(cell, mm.Instance.__table__, [dict(
        uuid=u, host=h, node=h, project_id='demo', user_id='demo',
        vm_state='active', power_state=1, memory_mb=4096, vcpus=2,
        root_gb=1, ephemeral_gb=0, instance_type_id=1, display_name=u[:8],
        availability_zone='nova', launched_on=h, locked=False, cleaned=0,
        hidden=False, deleted=0) for u, h in placement.items()])
    with cell.begin() as c:       # as if every row had been saved a while ago
        c.execute(mm.Instance.__table__.update().values(
            updated_at=sa.func.date_sub(now, sa.text('INTERVAL 1 DAY'))))


def load_migrations(placement, hosts, in_flight, history, rng):
    """*in_flight* unfinished live migrations of servers of *placement*
    (their destinations named) and *history* finished ones, as Nova's
    migrations table holds them; returns the moving servers' uuids."""
    from nova.db.main import models as mm
    servers = sorted(placement)
    moving = rng.sample(servers, in_flight)
    rows = []
    for i in range(in_flight + history):
        u = moving[i] if i < in_flight else rng.choice(servers)
        src = placement[u]
        dest = rng.choice(hosts)
        rows.append(dict(
            uuid=str(uuidlib.uuid4()), instance_uuid=u, source_compute=src,
            dest_compute=dest, source_node=src, dest_node=dest,
            status='running' if i < in_flight else rng.choice(
                ('completed', 'confirmed', 'error', 'done')),
            migration_type='live-migration' if i % 2 == 0 else 'migration',
            hidden=False, cross_cell_move=False, deleted=0))
    eng = sa.create_engine(url(CELL_DB))
    _insert(eng, mm.Migration.__table__, rows)
    with eng.begin() as c:
        c.execute(mm.Migration.__table__.update().values(
            created_at=sa.func.date_sub(sa.func.utc_timestamp(),
                                        sa.text('INTERVAL 1 HOUR')),
            updated_at=sa.func.date_sub(sa.func.utc_timestamp(),
                                        sa.text('INTERVAL 1 HOUR'))))
    return moving


def move_elsewhere(server, host):
    """Another process moves *server*: an UPDATE of its instance row."""
    from nova.db.main import models as mm
    inst = mm.Instance.__table__
    with sa.create_engine(url(CELL_DB)).begin() as c:
        c.execute(inst.update().where(inst.c.uuid == server).values(
            host=host, node=host, updated_at=sa.func.utc_timestamp()))


def services_seen():
    from nova.db.main import models as mm
    with sa.create_engine(url(CELL_DB)).begin() as c:
        c.execute(mm.Service.__table__.update().values(
            last_seen_up=sa.func.utc_timestamp()))


def explain_delta():
    """MariaDB's plan for the map's delta query (docs/architecture.md)."""
    from nova.db.main import models as mm
    from nova_netaware.scheduler import placement_map
    eng = sa.create_engine(url(CELL_DB))
    q = placement_map.changed_rows_query(
        mm.Instance.__table__, sa.func.date_sub(
            sa.func.utc_timestamp(), sa.text('INTERVAL 10 SECOND')),
        sa.select(sa.func.max(mm.Instance.id) - 100).scalar_subquery())
    sql = str(q.compile(eng, compile_kwargs={'literal_binds': True}))
    with eng.begin() as c:
        c.execute(sa.text('ANALYZE TABLE instances'))
        rows = c.execute(sa.text('EXPLAIN ' + sql)).mappings().all()
    return ['%s: type=%s key=%s rows=%s extra=%s' % (
        r['table'], r['type'], r['key'], r['rows'], r['Extra'])
        for r in rows]


# -- the two sides -------------------------------------------------------------
def host_manager(hosts):
    """Nova's HostManager with the instance info the computes report."""
    from nova import context as nova_context
    from nova import objects
    from nova.db.main import models as mm
    from nova.scheduler import host_manager as hm_mod
    from oslo_config import cfg
    cfg.CONF.set_override('track_instance_changes', False, 'filter_scheduler')
    hm = hm_mod.HostManager()
    ctx = nova_context.get_admin_context()
    # every compute reports its list, empty or not
    info = {h: {'instances': {}, 'updated': True} for h in hosts}
    inst = mm.Instance.__table__
    with sa.create_engine(url(CELL_DB)).begin() as c:
        for u, h in c.execute(sa.select(inst.c.uuid, inst.c.host)):
            info[h]['instances'][u] = objects.Instance(ctx, uuid=u)
    hm._instance_info = info
    hm.track_instance_changes = True
    return hm, ctx


class FullReadRuntime(object):
    """The lookup before the placement map: every server of the matrix, each time."""

    @staticmethod
    def lookup(spec_obj, uuids):
        from nova import context as nova_context
        from nova import objects
        ctx = nova_context.get_admin_context()
        mappings = objects.InstanceMappingList.get_by_instance_uuids(
            ctx, uuids)
        cells = {}
        for m in mappings:
            if m.cell_mapping is not None:
                cells.setdefault(m.cell_mapping.uuid, (m.cell_mapping, []))[
                    1].append(m.instance_uuid)
        placement, metadata = {}, {}
        for cell, cell_uuids in cells.values():
            with nova_context.target_cell(ctx, cell) as cctx:
                for inst in objects.InstanceList.get_by_filters(
                        cctx, {'uuid': cell_uuids, 'deleted': False},
                        expected_attrs=[]):
                    if inst.host:
                        placement[inst.uuid] = inst.host
                if uuids[0] in cell_uuids:
                    inst = objects.Instance.get_by_uuid(
                        cctx, uuids[0], expected_attrs=['metadata'])
                    metadata = dict(inst.metadata or {})
        return placement, metadata


class Stopwatch(object):
    """Adds the time spent in wrapped functions, by name."""

    def __init__(self):
        self.t = {}

    def wrap(self, owner, attr, name):
        fn = getattr(owner, attr)

        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.t[name] = self.t.get(name, 0.0) + (
                    time.perf_counter() - t0)
        setattr(owner, attr, timed)


def instrument(rt):
    from nova_netaware.core import constraints
    from nova_netaware.core import engine
    from nova_netaware.core import impact
    sw = Stopwatch()
    sw.wrap(rt, 'lookup', 'lookup')
    if hasattr(rt, 'in_flight'):
        sw.wrap(rt, 'in_flight', 'in_flight')
    sw.wrap(engine.Engine, 'base_loads', 'loads')
    sw.wrap(constraints, 'check', 'checks')
    sw.wrap(impact, 'terms', 'mif')        # all three terms and the MIF
    return sw


# -- one row, in its own process ----------------------------------------------
def uuid_traffic(placement):
    """Rewrite the traffic file with uuids; ``{uuid: host}``."""
    from oslo_config import cfg
    path = cfg.CONF.netaware.static_traffic_file
    with open(path) as f:
        data = json.load(f)             # scheduler_bench writes JSON
    for fl in data['flows']:
        fl['src'], fl['dst'] = server_uuid(fl['src']), server_uuid(fl['dst'])
    with open(path, 'w') as f:
        json.dump(data, f)
    return {server_uuid(s): h for s, h in placement.items()}


def med(xs):
    return statistics.median(xs) if xs else float('nan')


#: above this many servers the old full-read lookup is not timed (it took
#: 78 s per request at 20,201 servers here; it grows with the servers)
OLD_MAX_SERVERS = 30000


def row(kind, n, peers, reps, in_flight=0, history=0):
    from nova import objects
    from nova_netaware.cmd import sim as hoststates
    from nova_netaware.scheduler import runtime

    tmp = tempfile.mkdtemp(prefix='netaware-dbbench-')
    snap_hosts, real_n = scheduler_bench.setup(kind, n, peers, tmp)
    snap = runtime.get_runtime()
    vm_host = snap.placement['vm']
    hosts = [vm_host] + [h.host for h in snap_hosts]
    placement = uuid_traffic(snap.placement)
    bg = [server_uuid(s) for s in snap.placement if s.startswith('bg-')]
    vm = server_uuid('vm')
    t0 = time.perf_counter()
    configure_nova()
    create_databases()
    load(hosts, placement, hoststates.CELL.uuid)
    t_load = time.perf_counter() - t0
    plan = explain_delta()
    hm, ctx = host_manager(hosts)
    cell = objects.CellMapping.get_by_uuid(ctx, hoststates.CELL.uuid)
    cn_uuids = [str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, h)) for h in hosts]
    nova_default, ours = scheduler_bench.pipelines()

    def spec():
        s = hoststates.move_spec(vm, 4096, 2, source=vm_host)
        s.requested_destination = objects.Destination(cell=cell)
        return s

    out = {'kind': kind, 'hosts': real_n, 'peers': peers,
           'servers': len(placement), 'load_s': t_load, 'plan': plan}
    read, pipe = [], []
    for _ in range(reps):
        services_seen()
        s = spec()
        t0 = time.perf_counter()
        hs = list(hm.get_host_states_by_uuids(ctx, cn_uuids, s))
        t1 = time.perf_counter()
        nova_default(hs, s)
        t2 = time.perf_counter()
        read.append(t1 - t0)
        pipe.append(t2 - t1)
    out.update(nova_read=med(read), nova_pipe=med(pipe),
               nova=med([a + b for a, b in zip(read, pipe)]),
               candidates=len(hs))
    rng = random.Random(3)
    modes = [('map', reps)]
    if len(placement) <= OLD_MAX_SERVERS:
        modes.append(('full', max(2, reps // 2)))
    for mode, n_reps in modes:
        rt = runtime.NovaRuntime()
        if mode == 'full':
            rt.lookup = FullReadRuntime.lookup
        runtime.set_runtime(rt)
        sw = instrument(rt)
        t0 = time.perf_counter()
        w = ours(hs, spec())
        out[mode + '_first'] = time.perf_counter() - t0
        tot, parts = [], []
        for _ in range(n_reps):
            move_elsewhere(rng.choice(bg), rng.choice(hosts))
            sw.t = {}
            s = spec()
            t0 = time.perf_counter()
            w = ours(hs, s)
            tot.append(time.perf_counter() - t0)
            parts.append(dict(sw.t))
        out[mode] = med(tot)
        for k in ('lookup', 'in_flight', 'loads', 'checks', 'mif'):
            out['%s_%s' % (mode, k)] = med([p.get(k, 0.0) for p in parts])
        out[mode + '_winner'] = w[0].obj.host if w else None
        if mode == 'map':
            pm = rt._placement_map
            out['map_full_reads'] = pm.full_reads
    if in_flight:
        # the same request with moves in flight: *in_flight* unfinished
        # Migration rows among *history* finished ones, and as many
        # decisions in the ledger not yet in Nova's records
        moving = load_migrations(placement, hosts, in_flight, history, rng)
        rt = runtime.NovaRuntime()
        runtime.set_runtime(rt)
        led = rt.ledger()
        others = [u for u in bg if u not in set(moving)]
        for u in rng.sample(others, in_flight):
            led.record(u, rng.choice(hosts))
        sw = instrument(rt)
        w = ours(hs, spec())
        tot, parts = [], []
        for _ in range(reps):
            move_elsewhere(rng.choice(bg), rng.choice(hosts))
            sw.t = {}
            t0 = time.perf_counter()
            w = ours(hs, spec())
            tot.append(time.perf_counter() - t0)
            parts.append(dict(sw.t))
        out['moves'] = med(tot)
        out['moves_in_flight'] = med([p.get('in_flight', 0.0)
                                      for p in parts])
        out['moves_counted'] = in_flight
        out['moves_ledger'] = len(led.entries())
        out['history'] = history
        out['moves_winner'] = w[0].obj.host if w else None
    return out


HEAD = ('%-10s %6s %5s %7s | %8s %8s %8s | %8s %8s | %7s %7s %7s %7s %7s '
        '| %6s %6s')
LINE = ('%-10s %6d %5d %7d | %8.0f %8.0f %8.0f | %8.0f %8.0f | %7.1f %7.1f '
        '%7.1f %7.1f %7.1f | %6.3f %6.2f')


def print_row(r):
    for k in ('full', 'full_lookup', 'full_first'):
        r.setdefault(k, float('nan'))
    r.setdefault('full_winner', None)
    rest = r['map'] - sum(r['map_' + k] for k in ('lookup', 'loads',
                                                    'checks', 'mif'))
    print(LINE % (r['kind'], r['hosts'], r['peers'], r['servers'],
                  1000 * r['nova_read'], 1000 * r['nova_pipe'],
                  1000 * r['nova'], 1000 * r['full_lookup'],
                  1000 * r['map_lookup'], 1000 * r['map'],
                  1000 * r['map_loads'], 1000 * r['map_checks'],
                  1000 * r['map_mif'], 1000 * rest, r['map'] / r['nova'],
                  r['full'] / r['nova']))
    sys.stdout.flush()


def child_row(kind, n, peers, reps, *extra):
    """:func:`row` in a fresh process (its own databases and caches); the
    result dict, or ``None`` after printing why it failed."""
    import json
    import subprocess
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), '--child', kind, str(n),
         str(peers), str(reps)] + [str(x) for x in extra],
        capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines()
             if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
        print('%s %s: failed\n%s' % (kind, n, proc.stderr[-3000:]))
        return None
    return json.loads(lines[-1][7:])


def main():
    import json
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--sizes', default='10000,50000')
    ap.add_argument('--peers', type=int, default=200)
    ap.add_argument('--kinds', default='leaf-spine')
    ap.add_argument('--reps', type=int, default=0)
    ap.add_argument('--child', nargs='+', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, n, p, reps = args.child[:4]
        extra = [int(x) for x in args.child[4:]]
        try:
            r = row(kind, int(n), int(p), int(reps), *extra)
        finally:
            drop_databases()
        print('RESULT ' + json.dumps(r))
        return
    run(args.kinds.split(','), [int(x) for x in args.sizes.split(',')],
        args.peers, args.reps)


def run(kinds, sizes, peers, reps=0):
    """Print the end-to-end table (one child process per row) and the
    targets; ``scheduler_bench.py --db`` calls this too."""
    print('ms per request, median; nova = its host-state read + default '
          'pipeline; ours = lookup + our filter and weigher')
    print(HEAD % ('topology', 'hosts', 'peers', 'servers', 'nova rd',
                  'nova flt', 'nova', 'old lkup', 'map lkup', 'ours',
                  'loads', 'checks', 'MIF', 'rest', 'ratio', 'old'))
    targets = {10000: 0.25, 50000: 0.35}
    results = []
    for kind in kinds:
        for n in sizes:
            n_reps = reps or (5 if n <= 10000 else 3)
            r = child_row(kind, n, peers, n_reps)
            if r is None:
                continue
            r['target'] = targets.get(n)
            results.append(r)
            print_row(r)
    for r in results:
        print('%s %d hosts / %d servers: first request %.0f ms (map) vs '
              '%.0f ms (old); map full reads %d; DB load %.0f s' % (
                  r['kind'], r['hosts'], r['servers'],
                  1000 * r['map_first'], 1000 * r['full_first'],
                  r['map_full_reads'], r['load_s']))
        print('  delta query plan: ' + '; '.join(r['plan']))
        if r['target']:
            ok = r['map'] / r['nova'] <= r['target']
            print('  target ours <= %.2f x nova: %.3f -> %s; same winner '
                  'as the old lookup: %s' % (
                      r['target'], r['map'] / r['nova'],
                      'PASS' if ok else 'FAIL',
                      r['map_winner'] == r['full_winner']
                      if r['full_winner'] else 'old lookup not timed'))


if __name__ == '__main__':
    main()
