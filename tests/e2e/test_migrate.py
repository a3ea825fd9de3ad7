"""End to end: the real ``openstack`` CLI against the local stack.

Topology (the launcher's, written by nova_netaware.deploy): 4 computes on a
leaf-spine with 2 spines; netaware-cmp1 and -cmp2 on leaf-1, -cmp3 and -cmp4
on leaf-2; 25 Gbit/s uplinks, ceiling 90 % (22.5 Gbit/s).

Workload (booted on chosen hosts with ``openstack server create --host``):

* background: B1 (cmp3) sends 20 Gbit/s to B2 (cmp1), so cmp3's uplink out
  and cmp1's uplink in are at 80 %;
* the chatty server C (cmp2) talks with P1 (cmp4; 2 Gbit/s each way) and
  sends 1 Gbit/s to P2 (cmp1), which answers with 0.5 Gbit/s;
* N (cmp2) exchanges 30 Gbit/s with R on the same host: off its host that
  fits no 25 Gbit/s uplink, so no host can take N.

The expected verdicts and the lowest-MIF host are not written here: they
are computed by the project's own core on the same topology, traffic file,
placement and [netaware] options (see ``expected``).
"""

import concurrent.futures
import os
import re
import time
import uuid

import pytest
import yaml

from nova_netaware import conf as na_conf

RUN = uuid.uuid4().hex[:6]
CMP = ['netaware-cmp%d' % i for i in range(1, 5)]


def write_traffic(stack, flows):
    tmp = stack.traffic_file + '.tmp'
    with open(tmp, 'w') as f:
        yaml.safe_dump({'flows': flows}, f)
    os.replace(tmp, stack.traffic_file)


def wait_status(stack, server_id, statuses, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        server = stack.conn.compute.get_server(server_id)
        if server.status in statuses:
            return server
        if server.status == 'ERROR' or time.monotonic() > deadline:
            raise AssertionError('server %s is %s (waited for %s): %s' % (
                server_id, server.status, statuses, server.fault))
        time.sleep(0.5)


def host_of(stack, server_id):
    return stack.conn.compute.get_server(server_id).compute_host


def expected(stack, server_id):
    """Verdicts and ranking for moving ``server_id``, by the core.

    Same inputs as nova-scheduler: the stack's topology and traffic files,
    its nova.conf [netaware] options, where every server is now (from the
    API) and the server's flavor and metadata. The candidates are the other
    hosts (Nova ignores the source on a move).
    """
    from oslo_config import cfg

    from nova_netaware.core import engine
    from nova_netaware.core.topology import Topology
    from nova_netaware.core.traffic import TrafficMatrix

    conf = cfg.ConfigOpts()
    na_conf.register_opts(conf)
    conf(['--config-file', stack.nova_conf], project='netaware-e2e',
         default_config_files=[], default_config_dirs=[])
    # read with openstacksdk: the same records the CLI shows, faster
    placement = {s.id: s.compute_host
                 for s in stack.conn.compute.servers(all_projects=True)
                 if s.compute_host}
    show = stack.conn.compute.get_server(server_id)
    flavor = show.flavor
    meta = show.metadata or {}

    def num(key, cast):
        value = meta.get(key, (flavor.extra_specs or {}).get(key))
        return None if value is None else cast(value)

    server = engine.Server(
        uuid=server_id, memory_mb=int(flavor.ram),
        vcpus=int(flavor.vcpus),
        dirty_rate_mbps=num('netaware:dirty_rate_mbps', float),
        max_hops=num('netaware:max_hops', int),
        max_latency_us=num('netaware:max_latency_us', float))
    source = placement[server_id]
    cands = [engine.Candidate(h) for h in stack.hosts if h != source]
    topo = Topology.from_file(stack.topology_file,
                              conf.netaware.default_link_latency_us)
    traffic = TrafficMatrix.from_file(stack.traffic_file)
    ev = engine.Engine(topo).evaluate(traffic, placement, server, cands,
                                      engine.Params.from_conf(conf.netaware))
    rows = [ev.row(i) for i in range(len(ev.hosts))]
    return {
        'source': source,
        'winner': ev.winner,
        'ranking': [ev.hosts[i] for i in ev.ranking()],
        'refused': {r['host']: r['reasons'] for r in rows if not r['passed']},
        'rows': rows,
    }


class SchedulerLog(object):
    """The part of nova-scheduler's log written after ``mark()``."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path)

    def text(self):
        with open(self.path, errors='replace') as f:
            f.seek(self.offset)
            return f.read()

    def refusals(self, server_id):
        return {m.group(1): m.group(2) for m in re.finditer(
            r'NetworkAwareFilter refused host (\S+) for server %s: (.*)'
            % server_id, self.text())}

    def ranking(self, server_id):
        m = None
        for m in re.finditer(r'MigrationImpactWeigher ranking for server %s '
                             r'\([^)]*\): (.*)' % server_id, self.text()):
            pass
        if m is None:
            return None
        return [part.split(':')[0].strip()
                for part in m.group(1).split(', ')]


@pytest.fixture(scope='module')
def world(stack):
    """Flavor, image, servers on chosen hosts, and the traffic file."""
    flavor = 'na-e2e-%s' % RUN
    stack.osc('flavor', 'create', '--ram', '512', '--vcpus', '1', '--disk',
              '1', flavor, '-f', 'json')
    image_file = os.path.join(os.path.dirname(stack.traffic_file),
                              'e2e-image.raw')
    with open(image_file, 'wb') as f:
        f.write(b'\0' * 65536)
    image = 'na-e2e-%s' % RUN
    stack.osc('image', 'create', '--disk-format', 'raw',
              '--container-format', 'bare', '--file', image_file, image,
              '-f', 'json')
    layout = {'B1': CMP[2], 'B2': CMP[0], 'C': CMP[1], 'P1': CMP[3],
              'P2': CMP[0], 'N': CMP[1], 'R': CMP[1]}
    # "openstack server create --host" for each, several at once
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = {name: pool.submit(
            stack.osc, 'server', 'create', '--flavor', flavor, '--image',
            image, '--nic', 'none', '--host', host, '%s-%s' % (name, RUN),
            '-f', 'json') for name, host in layout.items()}
        ids = {name: fut.result()['id'] for name, fut in futures.items()}
    for name, server_id in ids.items():
        server = wait_status(stack, server_id, {'ACTIVE'})
        assert server.compute_host == layout[name], name
    write_traffic(stack, [
        {'src': ids['B1'], 'dst': ids['B2'], 'mbps': 20000},
        {'src': ids['C'], 'dst': ids['P1'], 'mbps': 2000},
        {'src': ids['P1'], 'dst': ids['C'], 'mbps': 2000},
        {'src': ids['C'], 'dst': ids['P2'], 'mbps': 1000},
        {'src': ids['P2'], 'dst': ids['C'], 'mbps': 500},
        {'src': ids['N'], 'dst': ids['R'], 'mbps': 30000},
        {'src': ids['R'], 'dst': ids['N'], 'mbps': 30000},
    ])
    yield ids
    write_traffic(stack, [])
    conn = stack.conn
    for server_id in ids.values():
        conn.compute.delete_server(server_id, ignore_missing=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(
            conn.compute.find_server(i) for i in ids.values()):
        time.sleep(1)
    conn.image.delete_image(conn.image.find_image(image),
                            ignore_missing=True)
    conn.compute.delete_flavor(conn.compute.find_flavor(flavor),
                               ignore_missing=True)


def check_scheduler_log(log, server_id, exp, chosen):
    """Our filter's refusals and our weigher's ranking for this request."""
    refusals = log.refusals(server_id)
    for host, reasons in exp['refused'].items():
        assert host in refusals, (host, log.text()[-3000:])
        # the same constraint the core names (e.g. "uplink: ...")
        assert reasons[0].split(':')[0] in refusals[host]
    assert set(refusals) == set(exp['refused'])
    ranking = log.ranking(server_id)
    assert ranking is not None, 'no MigrationImpactWeigher ranking logged'
    assert ranking == exp['ranking']
    assert ranking[0] == chosen


def test_cold_migrate_lands_on_lowest_mif_host(stack, world):
    c = world['C']
    exp = expected(stack, c)
    # the data make this a real choice: a refused host and >= 2 passing
    assert exp['refused'], exp
    assert len(exp['ranking']) >= 2, exp
    log = SchedulerLog(stack.scheduler_log)
    stack.osc('server', 'migrate', '--wait', c, timeout=300)
    server = wait_status(stack, c, {'VERIFY_RESIZE'})
    assert server.compute_host == exp['winner']
    assert server.compute_host not in exp['refused']
    stack.osc('server', 'migration', 'confirm', c)
    server = wait_status(stack, c, {'ACTIVE'})
    assert server.compute_host == exp['winner'] == host_of(stack, c)
    migrations = stack.osc('server', 'migration', 'list', '--server', c,
                           '-f', 'json')
    assert any(m['Status'] == 'confirmed' for m in migrations), migrations
    check_scheduler_log(log, c, exp, exp['winner'])


def test_live_migrate_lands_on_lowest_mif_host(stack, world):
    c = world['C']
    exp = expected(stack, c)
    assert exp['refused'], exp
    assert len(exp['ranking']) >= 2, exp
    log = SchedulerLog(stack.scheduler_log)
    stack.osc('server', 'migrate', '--live-migration', '--wait', c,
              timeout=300)
    server = wait_status(stack, c, {'ACTIVE'})
    assert server.compute_host == exp['winner'] == host_of(stack, c)
    assert server.compute_host not in exp['refused']
    check_scheduler_log(log, c, exp, exp['winner'])


def test_no_passing_host_fails_with_no_valid_host(stack, world):
    n = world['N']
    exp = expected(stack, n)
    assert exp['winner'] is None and exp['ranking'] == [], exp
    assert set(exp['refused']) == set(stack.hosts) - {exp['source']}
    log = SchedulerLog(stack.scheduler_log)
    res = stack.osc('server', 'migrate', '--wait', n, check=False,
                    timeout=300)
    # Nova casts the cold migration to the conductor: the API may accept it
    # (202) and the scheduler's NoValidHost then lands in the instance
    # action; an older path answers 400 "No valid host was found".
    if res.returncode != 0:
        assert 'No valid host' in res.stderr, res.stderr
    actions = stack.osc('server', 'event', 'list', n, '-f', 'json')
    migrate = [a for a in actions if a['Action'] == 'migrate']
    assert migrate, actions
    event = stack.osc('server', 'event', 'show', n,
                      migrate[0]['Request ID'], '-f', 'json')
    assert event['message'] == 'Error', event
    text = repr(event['events'])
    assert 'NoValidHost' in text or 'No valid host' in text, event
    migrations = stack.osc('server', 'migration', 'list', '--server', n,
                           '-f', 'json')
    assert [m['Status'] for m in migrations] == ['error'], migrations
    # and the server stays where it was
    server = wait_status(stack, n, {'ACTIVE'})
    assert server.compute_host == exp['source'] == host_of(stack, n)
    refusals = log.refusals(n)
    assert set(refusals) == set(exp['refused']), log.text()[-3000:]
