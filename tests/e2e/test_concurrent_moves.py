"""End to end: many moves at once (issue 11) on the local stack.

Topology (the launcher's): netaware-cmp1 and -cmp2 on leaf-1, -cmp3 and
-cmp4 on leaf-2, 2 spines, 25 Gbit/s host uplinks (100 Gbit/s fabric),
ceiling 90 % (22.5 Gbit/s each direction).

Workload (booted with ``openstack server create --host``):

* S1..S4 on cmp4, each exchanging 5 Gbit/s each way with P on cmp1
  (cmp4's uplink at 80 %);
* background: G (cmp2) and Y (cmp3) exchange 10 Gbit/s each way, so
  cmp2's and cmp3's uplinks start at 40 %;
* cmp1 (P's host) is disabled for maintenance: Nova's ComputeFilter keeps
  moves off it.

Moving an S: cmp2 (2 hops from P) beats cmp3 (4 hops) on every MIF term but
migration distance; cmp2's uplink fits two S (10 + 2 x 5 = 20 Gbit/s, 80 %)
but not three (25 Gbit/s, 100 %). A scheduler that does not count the moves
in flight sends all four to cmp2 (30 Gbit/s, 120 %); counting them, two go
to cmp2 and two to cmp3 (10 + 2 x 5 = 20 Gbit/s, 80 %).

The checks route the traffic file over the topology with the project's own
core (:mod:`nova_netaware.core.loads`) on the placement Nova reports after
the moves: no link whose load the moves raised is above the ceiling.
"""

import os
import re
import subprocess
import time

import pytest

from nova_netaware.core import loads as core_loads
from nova_netaware.core import routing
from nova_netaware.core import topology as core_topology
from nova_netaware.core import traffic as core_traffic
from nova_netaware.deploy import nova_conf
from tests.e2e import conftest
from tests.e2e.test_migrate import booted
from tests.e2e.test_migrate import request_id
from tests.e2e.test_migrate import SchedulerLog
from tests.e2e.test_migrate import write_traffic

CMP = ['netaware-cmp%d' % i for i in range(1, 5)]
FAILED, FAVOURITE, NEXT, MAINTENANCE = CMP[3], CMP[1], CMP[2], CMP[0]
MOVERS = ['S1', 'S2', 'S3', 'S4']
PEER_MBPS = 5000
BACKGROUND_MBPS = 10000
#: "nova-netaware ledger: the shared store <url> is unreachable (...);
#: using this process's own ledger. Guarantee lost until it is back: ..."
LEDGER_LOST = re.compile(r' WARNING \S+ .*nova-netaware ledger: the shared '
                         r'store (\S+) is unreachable .*Guarantee lost')


def launcher(stack, *args, timeout=300):
    """``devstack/local-stack <args>`` on the session's stack."""
    env = dict(stack.env, NETAWARE_STACK_DIR=stack.settings.state_dir)
    res = subprocess.run([conftest.LAUNCHER] + list(args), env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, 'local-stack %s failed:\n%s%s' % (
        ' '.join(args), res.stdout, res.stderr)
    return res.stdout


def ceiling(stack):
    """``[netaware] max_link_utilization`` of the stack's nova.conf (the
    option's default when it is not set)."""
    from nova_netaware import conf as na_conf
    raw = nova_conf.read_ini(stack.nova_conf).get('netaware', {})
    if 'max_link_utilization' in raw:
        return float(raw['max_link_utilization'][-1])
    return [o for o in na_conf.ALL_OPTS
            if o.dest == 'max_link_utilization'][0].default


def link_loads(stack, placement):
    """The traffic file routed over the topology with the core: ``{link
    name: (Mbit/s, capacity Mbit/s)}`` for every host uplink direction and
    every directed fabric link."""
    topo = core_topology.Topology.from_file(stack.topology_file)
    fabric = routing.Fabric(topo)
    matrix = core_traffic.TrafficMatrix.from_file(stack.traffic_file)
    got = core_loads.route_flows(
        fabric, core_loads.placement_flows(topo, matrix, placement))
    out = {}
    for i, host in enumerate(topo.host_names):
        out['%s uplink out' % host] = (got.up[i], topo.host_cap[i])
        out['%s uplink in' % host] = (got.down[i], topo.host_cap[i])
    for j in range(fabric.m):
        name = '%s -> %s' % (topo.switch_names[fabric.eu[j]],
                             topo.switch_names[fabric.ev[j]])
        out[name] = (got.links[j], fabric.cap[j])
    return out


def overloaded(stack, before, after):
    """Links whose load the moves raised and which are now above the
    ceiling, as readable strings."""
    limit = ceiling(stack)
    a, b = link_loads(stack, before), link_loads(stack, after)
    return ['%s: %.0f -> %.0f Mbit/s on %.0f = %.0f %% > %.0f %%' % (
        name, a[name][0], load, cap, 100.0 * load / cap, 100 * limit)
        for name, (load, cap) in b.items()
        if load > a[name][0] + 1e-6 and load > limit * cap + 1e-6]


def placement_of(stack, ids):
    return {server_id: stack.conn.compute.get_server(server_id).compute_host
            for server_id in ids.values()}


def service_set(stack, host, *flags):
    stack.osc('compute', 'service', 'set', *flags, host, 'nova-compute')


@pytest.fixture
def crowd(stack):
    """The workload above, its traffic file, and cmp1 disabled; all undone
    afterwards."""
    layout = {name: FAILED for name in MOVERS}
    layout.update({'P': MAINTENANCE, 'G': FAVOURITE, 'Y': NEXT})
    with booted(stack, layout, 'crowd') as ids:
        flows = [{'src': ids['G'], 'dst': ids['Y'], 'mbps': BACKGROUND_MBPS},
                 {'src': ids['Y'], 'dst': ids['G'], 'mbps': BACKGROUND_MBPS}]
        for name in MOVERS:
            flows += [{'src': ids[name], 'dst': ids['P'], 'mbps': PEER_MBPS},
                      {'src': ids['P'], 'dst': ids[name], 'mbps': PEER_MBPS}]
        write_traffic(stack, flows)
        service_set(stack, MAINTENANCE, '--disable', '--disable-reason',
                    'maintenance (e2e)')
        try:
            yield ids
        finally:
            service_set(stack, MAINTENANCE, '--enable')
            write_traffic(stack, [])


def run_parallel(stack, argvs):
    """Start every ``openstack`` command at once; wait for all; return
    their results (the CLI's own exit codes and output)."""
    procs = [subprocess.Popen(
        ['openstack', '--os-compute-api-version', '2.latest'] + argv,
        env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for argv in argvs]
    out = []
    for argv, proc in zip(argvs, procs):
        stdout, stderr = proc.communicate(timeout=300)
        out.append((argv, proc.returncode, stdout, stderr))
    return out


def check_landing(stack, log, ids, action, before, after):
    """Each mover left its host for a host our filter passed (per
    nova-scheduler's log of its own request), and no link the moves
    loaded is above the ceiling."""
    text = log.text()
    for name in MOVERS:
        server_id = ids[name]
        dest = after[server_id]
        assert dest not in (before[server_id], MAINTENANCE), (name, dest)
        req = request_id(stack, server_id, action)
        refused = {m.group(1) for m in re.finditer(
            r'NetworkAwareFilter refused host (\S+) for server %s:' %
            server_id, '\n'.join(line for line in text.splitlines()
                                 if req in line))}
        assert dest not in refused, (name, dest, refused)
    landed = {after[ids[n]] for n in MOVERS}
    bad = overloaded(stack, before, after)
    assert not bad, 'links above the ceiling after the moves (landed on %s)' \
        ':\n  %s' % (sorted(landed), '\n  '.join(bad))


def test_evacuation_storm(stack, crowd):
    """cmp4 fails (its nova-compute killed, the service forced down); its
    four servers are evacuated at once with ``openstack server evacuate``,
    one CLI process per server, all started together."""
    ids = crowd
    before = placement_of(stack, ids)
    log = SchedulerLog(stack.scheduler_log)
    launcher(stack, 'compute', 'stop', FAILED, '--kill')
    try:
        service_set(stack, FAILED, '--down')
        t0 = time.monotonic()
        results = run_parallel(stack, [['server', 'evacuate', ids[name]]
                                       for name in MOVERS])
        for argv, rc, stdout, stderr in results:
            assert rc == 0, (argv, stdout, stderr)
        for name in MOVERS:
            # microversion >= 2.95 leaves an evacuated server SHUTOFF
            server = wait_settled(stack, ids[name], {'ACTIVE', 'SHUTOFF'},
                                  migration_type='evacuation')
            assert server.compute_host != FAILED, '%s stayed on %s:\n%s' % (
                name, FAILED, move_story(stack, ids[name]))
        took = time.monotonic() - t0
        conftest.TIMINGS['evacuation storm, %d servers (s)'
                         % len(MOVERS)] = round(took, 1)
        print('evacuation storm: %d servers in %.1f s' % (len(MOVERS), took))
        after = placement_of(stack, ids)
        print('landed: %s' % {n: after[ids[n]] for n in MOVERS})
        check_landing(stack, log, ids, 'evacuate', before, after)
    finally:
        launcher(stack, 'compute', 'start', FAILED)
        service_set(stack, FAILED, '--up')
        wait_compute_up(stack, FAILED)


def move_story(stack, server_id):
    """What Nova says about a server's moves, for a failure message: its
    fault, its Migration records, and every log line of the conductor,
    the scheduler and the computes that names it."""
    server = stack.conn.compute.get_server(server_id)
    out = ['server %s: status %s, task %s, host %s, fault %s' % (
        server_id, server.status, server.task_state, server.compute_host,
        server.fault)]
    for m in stack.conn.compute.migrations(instance_uuid=server_id):
        out.append('migration %s: %s %s -> %s, status %s' % (
            m.id, m.migration_type, m.source_compute, m.dest_compute,
            m.status))
    for action in stack.conn.compute.server_actions(server_id):
        full = stack.conn.compute.get_server_action(action.request_id,
                                                    server_id)
        for e in full.events or []:
            e = e if isinstance(e, dict) else e.to_dict()
            out.append('action %s %s: event %s on %s: %s %s' % (
                action.action, action.request_id, e.get('event'),
                e.get('host'), e.get('result'),
                (e.get('traceback') or '').strip()[-600:]))
    services = ['nova-conductor', 'nova-scheduler'] + [
        'nova-compute-%s' % h for h in CMP]
    for service in services:
        path = stack.settings.log(service)
        if not os.path.exists(path):
            continue
        with open(path, errors='replace') as f:
            lines = [line.rstrip() for line in f if server_id in line]
        out += ['%s: %s' % (service, line[:400]) for line in lines[-40:]]
    return '\n'.join(out)


def wait_compute_up(stack, host, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for svc in stack.conn.compute.services(binary='nova-compute',
                                               host=host):
            if svc.state == 'up' and svc.status == 'enabled':
                return
        time.sleep(1)
    raise AssertionError('%s did not come back up' % host)


@pytest.fixture
def two_schedulers(stack):
    """nova-scheduler with ``[scheduler] workers = 2`` and the ledger on
    the local Redis (tooz); one worker and the in-process ledger after."""
    try:
        yield lambda **kw: launcher(stack, 'scheduler', '--workers', '2',
                                    '--ledger-backend', 'tooz', *sum(
                                        (['--' + k.replace('_', '-'), v]
                                         for k, v in kw.items()), []))
    finally:
        launcher(stack, 'scheduler', '--workers', '1', '--ledger-backend',
                 'memory')


def scheduler_pids(log, stack, ids, action):
    """The nova-scheduler processes (pids in its log lines) that handled
    each mover's request."""
    text = log.text().splitlines()
    out = {}
    for name in MOVERS:
        req = request_id(stack, ids[name], action)
        # oslo.log: "<date> <time> <pid> <LEVEL> <logger> [<request> ..."
        pids = {line.split()[2] for line in text if req in line}
        out[name] = pids
    return out


def wait_settled(stack, server_id, statuses, timeout=300,
                 migration_type=None):
    """Until the server has no task (its move ended) and is in one of
    ``statuses``; fails on ERROR.

    With ``migration_type``, also until the server's newest Migration record
    of that type has ended (done, failed, error, cancelled). An evacuation
    needs it: Nova's compute clears the task state when the rebuild ends,
    but moves ``instance.host`` to the destination only afterwards, in
    ``ResourceTracker.finish_evacuation`` (behind the compute's resource
    lock), which also marks the migration done. In between the server reads
    as settled on its failed host."""
    deadline = time.monotonic() + timeout
    while True:
        server = stack.conn.compute.get_server(server_id)
        if server.status in statuses and not server.task_state and (
                migration_type is None or
                _migration_ended(stack, server_id, migration_type)):
            return server
        if server.status == 'ERROR' or time.monotonic() > deadline:
            raise AssertionError('server %s is %s, task %s (waited for %s): '
                                 '%s\n%s' % (server_id, server.status,
                                             server.task_state, statuses,
                                             server.fault,
                                             move_story(stack, server_id)))
        time.sleep(0.5)


MIGRATION_ENDED = {'done', 'completed', 'confirmed', 'reverted', 'failed',
                   'error', 'cancelled'}


def _migration_ended(stack, server_id, migration_type):
    """True when the newest Migration record of ``migration_type`` for the
    server is in a final status (False while there is none yet)."""
    ms = [m for m in stack.conn.compute.migrations(instance_uuid=server_id)
          if m.migration_type == migration_type]
    if not ms:
        return False
    return max(ms, key=lambda m: m.id).status in MIGRATION_ENDED


def live_migrate_all(stack, ids):
    t0 = time.monotonic()
    results = run_parallel(stack, [
        ['server', 'migrate', '--live-migration', ids[name]]
        for name in MOVERS])
    for argv, rc, stdout, stderr in results:
        assert rc == 0, (argv, stdout, stderr)
    for name in MOVERS:
        wait_settled(stack, ids[name], {'ACTIVE'})
    return time.monotonic() - t0


def test_two_scheduler_workers_share_the_ledger(stack, crowd,
                                                two_schedulers):
    """Four concurrent live migrations, split between two nova-scheduler
    workers that share the tooz ledger on Redis: the ceiling holds."""
    ids = crowd
    log = SchedulerLog(stack.scheduler_log)
    out = two_schedulers()
    assert 'ledger_backend = tooz' in out, out
    before = placement_of(stack, ids)
    took = live_migrate_all(stack, ids)
    conftest.TIMINGS['4 live migrations, 2 schedulers (s)'] = round(took, 1)
    after = placement_of(stack, ids)
    print('landed: %s' % {n: after[ids[n]] for n in MOVERS})
    pids = scheduler_pids(log, stack, ids, 'live-migration')
    assert all(len(p) == 1 for p in pids.values()), pids
    # the burst really was split between the two worker processes
    assert len(set.union(*pids.values())) == 2, pids
    check_landing(stack, log, ids, 'live-migration', before, after)
    assert not LEDGER_LOST.search(log.text())


def test_two_scheduler_workers_with_the_store_down(stack, crowd,
                                                   two_schedulers):
    """The same with the ledger's Redis unreachable (a closed port):
    every move is still scheduled, and each worker logs which guarantee
    is lost."""
    import socket
    with socket.socket() as sock:   # a port nothing listens on
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    ids = crowd
    log = SchedulerLog(stack.scheduler_log)
    out = two_schedulers(ledger_url='redis://127.0.0.1:%d' % port)
    assert 'ledger_url = redis://127.0.0.1:%d' % port in out, out
    before = placement_of(stack, ids)
    live_migrate_all(stack, ids)
    after = placement_of(stack, ids)
    print('landed: %s' % {n: after[ids[n]] for n in MOVERS})
    for name in MOVERS:
        assert after[ids[name]] not in (before[ids[name]], MAINTENANCE), name
    pids = scheduler_pids(log, stack, ids, 'live-migration')
    lost = [line for line in log.text().splitlines()
            if LEDGER_LOST.search(line)]
    assert lost, 'no WARNING about the unreachable ledger store'
    assert all(':%d' % port in line for line in lost), lost
    # each worker that handled a request says so in its own lines
    warned = {line.split()[2] for line in lost}
    assert set.union(*pids.values()) <= warned, (pids, lost)
