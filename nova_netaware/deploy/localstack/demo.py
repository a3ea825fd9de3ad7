"""``local-stack demo``: the plugin at work in a real OpenStack.

1. brings the local stack up (if it is not running);
2. boots a small workload on chosen hosts and writes its traffic file;
3. shows ``nova-netaware``'s verdicts and MIF table for the chatty server;
4. runs ``openstack server migrate --wait`` and ``openstack server
   migration confirm`` on it, as an operator would;
5. prints where it went, nova-scheduler's own log lines for the request
   (our filter's refusals, our weigher's ranking), and where Nova's default
   weighers alone would have sent it (their scores for the same request,
   read from nova-scheduler's log).

The workload stays in place afterwards (``openstack server list``); a new
``demo`` replaces it.
"""

import ast
import json
import os
import re
import subprocess
import time

import yaml

from nova_netaware.deploy.exceptions import StackError
from nova_netaware.deploy.localstack import services
from nova_netaware.deploy.localstack import snapshot
from nova_netaware.deploy.localstack.settings import CLOUD

PREFIX = 'demo-'
# name: (host index, role)
WORKLOAD = {
    'backup-src': (2, 'sends a 20 Gbit/s backup stream to backup-dst'),
    'backup-dst': (0, 'receives the backup stream'),
    'app': (1, 'the chatty server: 2 Gbit/s each way with cache, '
               '1 Gbit/s to db (0.5 back)'),
    'cache': (3, 'peer of app'),
    'db': (0, 'peer of app'),
    'monitor': (3, 'quiet; makes cache\'s host as full as db\'s, so that '
                   'Nova\'s spreading weighers prefer backup-src\'s host'),
}


def _flows(ids):
    return [
        {'src': ids['backup-src'], 'dst': ids['backup-dst'], 'mbps': 20000},
        {'src': ids['app'], 'dst': ids['cache'], 'mbps': 2000},
        {'src': ids['cache'], 'dst': ids['app'], 'mbps': 2000},
        {'src': ids['app'], 'dst': ids['db'], 'mbps': 1000},
        {'src': ids['db'], 'dst': ids['app'], 'mbps': 500},
    ]


def _env(s):
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    env.update(OS_CLIENT_CONFIG_FILE=s.clouds_yaml, OS_CLOUD=CLOUD,
               PATH=s.bindir + os.pathsep + os.environ.get('PATH', ''))
    return env


def _run(s, argv, check=True, show=True):
    if show:
        print('\n$ %s' % ' '.join(argv), flush=True)
    res = subprocess.run(argv, env=_env(s), capture_output=True, text=True,
                         timeout=600)
    if show and (res.stdout.strip() or res.stderr.strip()):
        print((res.stdout + res.stderr).rstrip(), flush=True)
    if check and res.returncode != 0:
        raise StackError('%s failed:\n%s%s' % (' '.join(argv), res.stdout,
                                                   res.stderr))
    return res


def _wait(conn, server_id, statuses, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        server = conn.compute.get_server(server_id)
        if server.status in statuses:
            return server
        if server.status == 'ERROR' or time.monotonic() > deadline:
            raise StackError('server %s is %s: %s' % (
                server.name, server.status, server.fault))
        time.sleep(0.5)


def nova_default_scores(log_path, offset, server_id):
    """Per-host totals of Nova's own weighers for the request that moved
    ``server_id`` (from nova-scheduler's debug log), without ours."""
    with open(log_path, errors='replace') as f:
        f.seek(offset)
        text = f.read()
    m = None
    for m in re.finditer(r'\[None (req-[0-9a-f-]+)[^\]]*\] '
                         r'MigrationImpactWeigher ranking for server %s'
                         % server_id, text):
        pass
    if m is None:
        return None, None
    req = m.group(1)
    totals, ours = {}, {}
    for line in text.splitlines():
        if req not in line or 'score (multiplier * weight)' not in line:
            continue
        wm = re.search(r'\] (\w+): score \(multiplier \* weight\) (\{.*\})',
                       line)
        if not wm:
            continue
        scores = ast.literal_eval(wm.group(2))
        for (host, _node), expr in scores.items():
            mult, weight = (float(x) for x in expr.split('*'))
            target = ours if wm.group(1) == 'MigrationImpactWeigher' \
                else totals
            target[host] = target.get(host, 0.0) + mult * weight
    return totals, ours


def _remove_old_workload(conn):
    for server in conn.compute.servers(all_projects=True):
        if server.name.startswith(PREFIX):
            conn.compute.delete_server(server, ignore_missing=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(
            x.name.startswith(PREFIX) for x in conn.compute.servers(
                all_projects=True)):
        time.sleep(1)


def _boot_workload(s, conn):
    """Step 1: the workload on its hosts and its traffic file; its ids."""
    print('\n=== 1. a small workload on chosen hosts ===')
    _remove_old_workload(conn)
    flavor = conn.compute.find_flavor('netaware-demo') or \
        conn.compute.create_flavor(name='netaware-demo', ram=512, vcpus=1,
                                   disk=1)
    image = conn.image.find_image('netaware-demo')
    if image is None:
        image = conn.image.create_image(
            name='netaware-demo', disk_format='raw', container_format='bare',
            data=b'\0' * 65536)
    conn.compute.default_microversion = '2.74'
    ids = {}
    for name, (idx, role) in WORKLOAD.items():
        server = conn.compute.create_server(
            name=PREFIX + name, flavor_id=flavor.id, image_id=image.id,
            networks='none', host=s.hosts[idx])
        ids[name] = server.id
    name_w = max(len(PREFIX + name) for name in ids)
    host_w = max(len(h) for h in s.hosts)
    for name, server_id in ids.items():
        server = _wait(conn, server_id, {'ACTIVE'})
        print('  %-*s on %-*s %s' % (name_w, PREFIX + name, host_w,
                                     server.compute_host, WORKLOAD[name][1]))
    with open(s.traffic_file + '.tmp', 'w') as f:
        yaml.safe_dump({'flows': _flows(ids)}, f)
    os.replace(s.traffic_file + '.tmp', s.traffic_file)
    print('  traffic file: %s (read by nova-scheduler on the next request)'
          % s.traffic_file)
    return ids


def _predict(s, conn, app):
    """Step 2: ``nova-netaware``'s verdicts on a snapshot of the cloud."""
    print('\n=== 2. what nova-netaware thinks of moving %sapp ===' % PREFIX)
    snap_file = os.path.join(s.netaware_dir, 'demo-placement.yaml')
    snapshot.write(conn, snap_file, hosts=s.hosts)
    nova_conf = os.path.join(s.etc, 'nova', 'nova.conf')
    cli = ['nova-netaware', '--topology', s.topology_file, '--traffic',
           s.traffic_file, '--placement', snap_file, '--server', app,
           '--config-file', nova_conf]
    _run(s, cli)
    return json.loads(_run(s, cli + ['-f', 'json'], show=False).stdout)


def _migrate(s, conn, app):
    """Step 3: migrate and confirm as an operator would.

    Returns the source and destination hosts, and the offset in
    nova-scheduler's log where the request's lines begin.
    """
    print('\n=== 3. the operator migrates it ===')
    source = conn.compute.get_server(app).compute_host
    offset = os.path.getsize(s.log('nova-scheduler'))
    _run(s, ['openstack', 'server', 'migrate', '--wait', PREFIX + 'app'])
    _wait(conn, app, {'VERIFY_RESIZE'})
    _run(s, ['openstack', 'server', 'migration', 'confirm', PREFIX + 'app'])
    dest = _wait(conn, app, {'ACTIVE'}).compute_host
    return source, dest, offset


def _show_scheduler_log(log_path, offset, app):
    """Step 4: our filter's refusals and our weigher's ranking."""
    print('\n=== 4. nova-scheduler\'s log for that request ===')
    with open(log_path, errors='replace') as f:
        f.seek(offset)
        for line in f:
            if app in line and ('NetworkAwareFilter refused' in line or
                                'MigrationImpactWeigher ranking' in line):
                msg = line.split('] ', 1)[-1].strip()
                print('  ' + msg)


def scores_table(totals, ours):
    """nova-scheduler's per-host scores as table lines, best first; the
    host column as wide as the longest host name."""
    w = max([len('host')] + [len(h) for h in totals])
    lines = ['  %-*s %14s %24s %7s' % (w, 'host', 'Nova weighers',
                                       'MigrationImpactWeigher', 'total')]
    for host in sorted(totals, key=lambda h: -(totals[h] +
                                                 ours.get(h, 0.0))):
        lines.append('  %-*s %14.3f %24.3f %7.3f' % (
            w, host, totals[host], ours.get(host, 0.0),
            totals[host] + ours.get(host, 0.0)))
    return lines


def _show_result(source, dest, predicted, totals, ours):
    print('\n=== result ===')
    print('%sapp moved %s -> %s: %s' % (
        PREFIX, source, dest, 'the lowest-MIF host, as nova-netaware '
        'predicted' if dest == predicted['winner'] else
        'NOT the host nova-netaware predicted (%s)' % predicted['winner']))
    refused = [r for r in predicted['hosts'] if not r['passed']]
    for r in refused:
        print('  refused %s: %s' % (r['host'], '; '.join(r['reasons'])))
    nova_choice = predicted['nova_default_choice']
    print('Nova\'s default weighers alone (no network filter or weigher) '
          'would have sent it to %s%s.' % (nova_choice, ' as well'
                                           if nova_choice == dest else
                                           '' if nova_choice not in
                                           [r['host'] for r in refused] else
                                           ', a host our filter refuses'))
    if totals:
        print('On this request, among the hosts our filter passed, '
              'nova-scheduler scored (from its log):')
        for line in scores_table(totals, ours):
            print(line)


def show_how_to_use(s, t0, what):
    """The demo's closing lines: its time and the shell lines to go on."""
    print('\n(demo took %.0f s; %s from a shell:)'
          % (time.monotonic() - t0, what))
    for line in s.shell_exports() + [
            'openstack server list --long',
            'openstack netaware explain %sapp' % PREFIX]:
        print('  ' + line)


def run(st):
    s = st.s
    t0 = time.monotonic()
    st.up()
    conn = services.connect(s)
    ids = _boot_workload(s, conn)
    app = ids['app']
    predicted = _predict(s, conn, app)
    source, dest, offset = _migrate(s, conn, app)
    log_path = s.log('nova-scheduler')
    _show_scheduler_log(log_path, offset, app)
    totals, ours = nova_default_scores(log_path, offset, app)
    _show_result(source, dest, predicted, totals, ours)
    show_how_to_use(s, t0, 'the workload stays. Use it')
    return 0
