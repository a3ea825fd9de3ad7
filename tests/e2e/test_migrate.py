"""End to end: the real ``openstack`` CLI against the local stack.

Topology (the launcher's, written by nova_netaware.deploy.topology): 4
computes on a leaf-spine with 2 spines; netaware-cmp1 and -cmp2 on leaf-1,
-cmp3 and -cmp4 on leaf-2; 25 Gbit/s uplinks, ceiling 90 % (22.5 Gbit/s).

Workload (booted on chosen hosts with ``openstack server create --host``):

* background: B1 (cmp3) sends 20 Gbit/s to B2 (cmp1), so cmp3's uplink out
  and cmp1's uplink in are at 80 %;
* the chatty server C (cmp2) talks with P1 (cmp4; 2 Gbit/s each way) and
  sends 1 Gbit/s to P2 (cmp1), which answers with 0.5 Gbit/s;
* N (cmp1) exchanges 30 Gbit/s with B2 on the same host: off its host
  that fits no 25 Gbit/s uplink, so no host can take N.

The expected verdicts and the lowest-MIF host are not written here: they
are computed by the project's own ``nova-netaware`` command on the same
topology, traffic file, placement and [netaware] options (``expected``).
"""

import concurrent.futures
import contextlib
import json
import os
import re
import subprocess
import time
import uuid

import pytest
import yaml

from nova_netaware.deploy.localstack import snapshot

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
    """Verdicts and ranking for moving ``server_id``, by ``nova-netaware``.

    The project's own command, run as a subprocess on the same inputs as
    nova-scheduler: the stack's topology and traffic files, its nova.conf
    ([netaware] options) and a placement snapshot of the live cloud (where
    every server is now, its flavor and metadata, each host's usage).
    """
    snap_file = os.path.join(os.path.dirname(stack.traffic_file),
                             'e2e-placement-%s.yaml' % RUN)
    snapshot.write(stack.conn, snap_file, hosts=stack.hosts)
    res = subprocess.run(
        ['nova-netaware', '--topology', stack.topology_file, '--traffic',
         stack.traffic_file, '--placement', snap_file, '--server', server_id,
         '--config-file', stack.nova_conf, '-f', 'json'],
        env=stack.env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    rows = out['hosts']
    ranked = sorted((r for r in rows if r['rank']), key=lambda r: r['rank'])
    return {
        'source': out['server']['host'],
        'winner': out['winner'],
        'ranking': [r['host'] for r in ranked],
        'refused': {r['host']: r['reasons'] for r in rows if not r['passed']},
        'nova_default_choice': out.get('nova_default_choice'),
        'rows': rows,
    }


def request_id(stack, server_id, action):
    """The request id of the server's latest instance action ``action``."""
    actions = [a for a in stack.conn.compute.server_actions(server_id)
               if a.action == action]
    assert actions, 'no %s action on %s' % (action, server_id)
    return max(actions, key=lambda a: a.start_time).request_id


class SchedulerLog(object):
    """nova-scheduler's log lines written since creation, optionally only
    those of one request (its request id is in every line)."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path)
        self.request = None

    def text(self):
        with open(self.path, errors='replace') as f:
            f.seek(self.offset)
            text = f.read()
        if self.request:
            text = '\n'.join(line for line in text.splitlines()
                              if self.request in line)
        return text

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


@contextlib.contextmanager
def booted(stack, layout, tag):
    """A flavor, an image and servers ``{name: host}`` booted with
    ``openstack server create --host``; yields ``{name: id}`` and deletes
    them all afterwards."""
    flavor = image = 'na-%s-%s' % (tag, RUN)
    ids = {}
    try:
        stack.osc('flavor', 'create', '--ram', '512', '--vcpus', '1',
                  '--disk', '1', flavor, '-f', 'json')
        image_file = os.path.join(os.path.dirname(stack.traffic_file),
                                  '%s-image.raw' % tag)
        with open(image_file, 'wb') as f:
            f.write(b'\0' * 65536)
        stack.osc('image', 'create', '--disk-format', 'raw',
                  '--container-format', 'bare', '--file', image_file, image,
                  '-f', 'json')
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = {name: pool.submit(
                stack.osc, 'server', 'create', '--flavor', flavor, '--image',
                image, '--nic', 'none', '--host', host, '%s-%s' % (name, RUN),
                '-f', 'json') for name, host in layout.items()}
            for name, fut in futures.items():
                try:
                    ids[name] = fut.result()['id']
                except AssertionError:
                    pass
            for fut in futures.values():
                fut.result()   # raise the first failure
        for name, server_id in ids.items():
            server = wait_status(stack, server_id, {'ACTIVE'})
            assert server.compute_host == layout[name], name
        yield ids
    finally:
        conn = stack.conn
        for server_id in ids.values():
            conn.compute.delete_server(server_id, ignore_missing=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(
                conn.compute.find_server(i) for i in ids.values()):
            time.sleep(1)
        found = conn.image.find_image(image)
        if found:
            conn.image.delete_image(found, ignore_missing=True)
        found = conn.compute.find_flavor(flavor)
        if found:
            conn.compute.delete_flavor(found, ignore_missing=True)


@pytest.fixture(scope='module')
def world(stack):
    """Servers on chosen hosts, and the traffic file."""
    layout = {'B1': CMP[2], 'B2': CMP[0], 'C': CMP[1], 'P1': CMP[3],
              'P2': CMP[0], 'N': CMP[0]}
    with booted(stack, layout, 'e2e') as ids:
        try:
            write_traffic(stack, [
                {'src': ids['B1'], 'dst': ids['B2'], 'mbps': 20000},
                {'src': ids['C'], 'dst': ids['P1'], 'mbps': 2000},
                {'src': ids['P1'], 'dst': ids['C'], 'mbps': 2000},
                {'src': ids['C'], 'dst': ids['P2'], 'mbps': 1000},
                {'src': ids['P2'], 'dst': ids['C'], 'mbps': 500},
                {'src': ids['N'], 'dst': ids['B2'], 'mbps': 30000},
                {'src': ids['B2'], 'dst': ids['N'], 'mbps': 30000},
            ])
            yield ids
        finally:
            write_traffic(stack, [])


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
    log.request = request_id(stack, c, 'migrate')
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
    log.request = request_id(stack, c, 'live-migration')
    check_scheduler_log(log, c, exp, exp['winner'])


def test_no_passing_host_fails_with_no_valid_host(stack, world):
    """Cold and live migration of N: no host passes the filter."""
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
    log.request = migrate[0]['Request ID']
    refusals = log.refusals(n)
    assert set(refusals) == set(exp['refused']), log.text()[-3000:]
    assert 'MigrationImpactWeigher ranking' not in log.text()

    # live migration: the API answers 400 NoValidHost at once
    log = SchedulerLog(stack.scheduler_log)
    res = stack.osc('server', 'migrate', '--live-migration', '--wait', n,
                    check=False, timeout=300)
    assert res.returncode != 0, res.stdout
    assert 'No valid host' in res.stderr, res.stderr
    log.request = request_id(stack, n, 'live-migration')
    assert set(log.refusals(n)) == set(exp['refused']), log.text()[-3000:]
    server = wait_status(stack, n, {'ACTIVE'})
    assert server.compute_host == exp['source']
