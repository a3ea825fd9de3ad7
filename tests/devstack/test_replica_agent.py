"""The devstack plugin's replica agent phase (``stack extra`` / ``unstack``
with ``enable_service netaware-replica-agent`` on a compute node).

plugin.sh runs with the stand-in devstack functions of ``ini_standins.sh``
(``run_process`` and ``enable_service`` are recorded); each written agent
configuration is loaded with the agent's own loader,
``nova_netaware.replica.cmd.make_conf``.
"""

import os
import socket
import stat
import threading

import pytest

from nova_netaware.replica import cmd
from test_plugin import run_plugin  # same directory (rootdir import)

# A side's file as "nova-netaware-replica-agent replicate" writes it
# (replicate.Replicator._config), on a machine whose clouds.yaml names the
# clouds cloud-a and cloud-b, with the default --pause-control api.
REPLICATE_STANDBY = """\
# written by nova-netaware-replica-agent replicate: cloud-a:1111 -> cloud-b:2222 (standby side, on hypervisor cmp-b1)
[replica]
agent_id = web-cloud-b-cmp-b1
service_name = web
initial_role = standby
cloud_driver = openstack
openstack_cloud = cloud-b
openstack_config_file = /home/operator/clouds.yaml
openstack_server = 2222
openstack_control = api
libvirt_uri = qemu:///system
copy_name = web-replica
coordination_url = redis://10.0.0.9:6379
peer_host = 10.0.0.1
peer_hmac_key = 0123456789abcdef0123456789abcdef
guest_endpoint_host = 192.168.0.7
state_dir = /var/lib/nova-netaware/replica/web
control_socket = /run/nova-netaware/replica-web.sock
guest_interface = tap2222
guest_mac = fa:16:3e:00:00:02
"""
# A hand-written pair file that leaves the defaults to the plugin.
HAND_WRITTEN_ACTIVE = """\
[replica]
agent_id = db-a
service_name = db
initial_role = active
openstack_server = 3333
peer_host = 10.0.0.2
peer_hmac_key = fedcba9876543210fedcba9876543210
"""


def closed_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def node(tmp_path):
    """A compute node with the agent installed and two pair files."""
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    agent = bindir / 'nova-netaware-replica-agent'
    agent.write_text('#!/bin/sh\nexit 0\n')
    agent.chmod(0o755)
    pairs = tmp_path / 'replica.d'
    pairs.mkdir()
    (pairs / 'web.standby.conf').write_text(REPLICATE_STANDBY)
    (pairs / 'db.active.conf').write_text(HAND_WRITTEN_ACTIVE)
    (pairs / 'README').write_text('not a pair file\n')
    env = {'STANDIN_ENABLED_SERVICES': 'n-cpu,netaware-replica-agent',
           'PATH': '%s:%s' % (bindir, os.environ['PATH']),
           'NETAWARE_REPLICA_CONFIG_DIR': str(pairs),
           'NETAWARE_REPLICA_STATE_DIR': str(tmp_path / 'state'),
           'NETAWARE_REPLICA_RUN_DIR': str(tmp_path / 'run'),
           'SERVICE_HOST': '127.0.0.1',
           'NETAWARE_REPLICA_REDIS_PORT': str(closed_port())}
    return tmp_path, agent, env


def agent_confs(tmp_path):
    return tmp_path / 'data' / 'nova-netaware' / 'replica-agents'


def calls(tmp_path):
    path = tmp_path / 'calls'
    return path.read_text().splitlines() if path.exists() else []


def load(path):
    return cmd.make_conf(['--config-file', str(path), 'run']).replica


def test_one_agent_per_pair_file(node):
    tmp_path, agent, env = node
    env['NETAWARE_REPLICA_GUEST_INTERFACE_KIND'] = 'bridge-port'
    env['NETAWARE_REPLICA_EXTRA_OPTS'] = 'overflow_policy=drop-newest'
    res = run_plugin(tmp_path, 'stack', 'extra', env=env)
    assert res.returncode == 0, res.stderr
    assert 'PLUGIN-RETURNED' in res.stdout
    confs = agent_confs(tmp_path)
    web, db = confs / 'web-standby.conf', confs / 'db-active.conf'
    lines = calls(tmp_path)
    for name, conf in (('web-standby', web), ('db-active', db)):
        service = 'netaware-replica-agent-' + name
        assert 'enable_service ' + service in lines
        # run_process SERVICE COMMAND GROUP USER: as root, one config file
        assert ('run_process %s %s --config-file %s run  root'
                % (service, agent, conf)) in lines, lines
        # the pair's secret stays readable by its owner only
        assert stat.S_IMODE(os.stat(conf).st_mode) == 0o600
    assert len([x for x in lines if x.startswith('run_process')]) == 2

    w = load(web)
    # this node's settings replace the pair file's
    assert w.cloud_driver == 'openstack'
    assert w.openstack_cloud == 'devstack-admin'
    assert w.openstack_config_file == '/etc/openstack/clouds.yaml'
    assert w.openstack_control == 'libvirt'
    assert w.libvirt_uri == 'qemu:///system'
    # what only the pair knows is kept, its defaults too
    assert w.agent_id == 'web-cloud-b-cmp-b1'
    assert w.initial_role == 'standby'
    assert w.openstack_server == '2222'
    assert w.peer_host == '10.0.0.1'
    assert w.peer_hmac_key == '0123456789abcdef0123456789abcdef'
    assert w.guest_interface == 'tap2222'
    assert w.coordination_url == 'redis://10.0.0.9:6379'
    assert w.state_dir == '/var/lib/nova-netaware/replica/web'
    assert w.control_socket == '/run/nova-netaware/replica-web.sock'
    # the operator's NETAWARE_REPLICA_* settings win
    assert w.guest_interface_kind == 'bridge-port'
    assert w.overflow_policy == 'drop-newest'

    d = load(db)
    assert d.cloud_driver == 'openstack'
    assert d.openstack_cloud == 'devstack-admin'
    assert d.openstack_control == 'libvirt'
    assert d.agent_id == 'db-a'
    assert d.initial_role == 'active'
    # defaults, one state_dir and socket per agent; no Redis: file://
    assert d.state_dir == str(tmp_path / 'state' / 'db-active')
    assert d.control_socket == str(tmp_path / 'run' / 'db-active.sock')
    assert d.coordination_url == 'file://%s/coordination' % (
        tmp_path / 'state')
    assert 'fences agents on this host only' in res.stderr
    assert d.guest_interface_kind == 'bridge-port'

    # a second run writes the same files
    first = {p.name: p.read_text() for p in confs.iterdir()}
    res = run_plugin(tmp_path, 'stack', 'extra', env=env)
    assert res.returncode == 0, res.stderr
    assert {p.name: p.read_text() for p in confs.iterdir()} == first

    # unstack stops both, even with the service no longer enabled
    (tmp_path / 'calls').unlink()
    env['STANDIN_ENABLED_SERVICES'] = 'n-cpu'
    res = run_plugin(tmp_path, 'unstack', env=env)
    assert res.returncode == 0, res.stderr
    lines = calls(tmp_path)
    assert 'stop_process netaware-replica-agent-web-standby' in lines
    assert 'stop_process netaware-replica-agent-db-active' in lines
    assert len([x for x in lines if x.startswith('stop_process')]) == 2
    # and only once
    (tmp_path / 'calls').unlink()
    res = run_plugin(tmp_path, 'unstack', env=env)
    assert res.returncode == 0, res.stderr
    assert not any(x.startswith('stop_process') for x in calls(tmp_path))


class FakeRedis:
    """Answers PING with +PONG on a loopback port (a stand-in for Redis,
    enough for the plugin's probe)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                if conn.recv(64).startswith(b'PING'):
                    conn.sendall(b'+PONG\r\n')


def test_coordination_url_redis_on_the_controller(node):
    tmp_path, agent, env = node
    redis = FakeRedis()
    env['NETAWARE_REPLICA_REDIS_PORT'] = str(redis.port)
    res = run_plugin(tmp_path, 'stack', 'extra', env=env)
    assert res.returncode == 0, res.stderr
    confs = agent_confs(tmp_path)
    assert load(confs / 'db-active.conf').coordination_url == \
        'redis://127.0.0.1:%d' % redis.port
    # a pair's own URL is kept
    assert load(confs / 'web-standby.conf').coordination_url == \
        'redis://10.0.0.9:6379'
    # the operator's URL beats the probe
    env['NETAWARE_REPLICA_COORDINATION_URL'] = 'redis://10.0.0.5:6379'
    res = run_plugin(tmp_path, 'stack', 'extra', env=env)
    assert res.returncode == 0, res.stderr
    assert load(confs / 'db-active.conf').coordination_url == \
        'redis://10.0.0.5:6379'
    redis.sock.close()


@pytest.mark.parametrize('extra, message', [
    ({'NETAWARE_REPLICA_NO_SUCH_OPTION': '1'},
     'NETAWARE_REPLICA_NO_SUCH_OPTION: [replica] has no option '
     'no_such_option'),
    ({'NETAWARE_REPLICA_EXTRA_OPTS': 'overflow_policy'},
     "[replica] has no option 'overflow_policy'"),
    ({'NETAWARE_REPLICA_OVERFLOW_POLICY': 'evict-oldest'},
     'overflow_policy'),
])
def test_bad_setting_stops_stack(node, extra, message):
    tmp_path, agent, env = node
    env.update(extra)
    res = run_plugin(tmp_path, 'stack', 'extra', env=env)
    assert res.returncode != 0
    assert 'PLUGIN-RETURNED' not in res.stdout
    assert message in res.stderr, res.stderr
    assert not any(x.startswith('run_process') for x in calls(tmp_path))


def test_bad_pair_file_stops_stack(node):
    tmp_path, agent, env = node
    (tmp_path / 'replica.d' / 'db.active.conf').write_text(
        HAND_WRITTEN_ACTIVE.replace('initial_role = active',
                                    'initial_role = boss'))
    res = run_plugin(tmp_path, 'stack', 'extra', env=env)
    assert res.returncode != 0
    assert 'initial_role' in res.stderr
    assert 'db.active.conf' in res.stderr
    assert not any(x.startswith('run_process netaware-replica-agent-db')
                   for x in calls(tmp_path))


def test_colliding_names_stop_stack(node):
    tmp_path, agent, env = node
    (tmp_path / 'replica.d' / 'db-active.conf').write_text(
        HAND_WRITTEN_ACTIVE)
    res = run_plugin(tmp_path, 'stack', 'extra', env=env)
    assert res.returncode != 0
    assert 'both give agent name db-active' in res.stderr
    assert not any(x.startswith('run_process') for x in calls(tmp_path))


def test_nothing_started_and_why(node):
    tmp_path, agent, env = node
    # not a compute node
    res = run_plugin(tmp_path, 'stack', 'extra', env=dict(
        env, STANDIN_ENABLED_SERVICES='n-api,netaware-replica-agent'))
    assert res.returncode == 0, res.stderr
    assert 'n-cpu is not enabled here' in res.stdout
    # service not enabled: silent
    res = run_plugin(tmp_path, 'stack', 'extra', env=dict(
        env, STANDIN_ENABLED_SERVICES='n-cpu'))
    assert res.returncode == 0, res.stderr
    assert 'nova-netaware' not in res.stdout
    # no pair file
    empty = tmp_path / 'empty.d'
    empty.mkdir()
    res = run_plugin(tmp_path, 'stack', 'extra', env=dict(
        env, NETAWARE_REPLICA_CONFIG_DIR=str(empty)))
    assert res.returncode == 0, res.stderr
    assert 'no replica pair file (*.conf) in %s' % empty in res.stdout
    # agent not installed
    res = run_plugin(tmp_path, 'stack', 'extra', env=dict(
        env, PATH=os.environ['PATH']))
    assert res.returncode == 0, res.stderr
    assert 'nova-netaware-replica-agent is not installed' in res.stdout
    assert not any(x.startswith(('run_process', 'enable_service'))
                   for x in calls(tmp_path))
    # unstack with nothing started: nothing stopped
    res = run_plugin(tmp_path, 'unstack', env=env)
    assert res.returncode == 0, res.stderr
    assert not any(x.startswith('stop_process') for x in calls(tmp_path))


def fake_systemctl(tmp_path, env, units):
    """A stand-in ``systemctl`` that knows *units* and records its calls.
    Not the real one: systemd is not PID 1 on this machine (the agent's
    own test of the SCHED_FIFO class is in tests/replica)."""
    bindir = tmp_path / 'bin'
    log = tmp_path / 'systemctl.log'
    script = bindir / 'systemctl'
    script.write_text(
        '#!/bin/sh\necho "$*" >> %s\n'
        'if [ "$1" = cat ]; then\n'
        '  case " %s " in *" $2 "*) exit 0;; esac\n  exit 1\nfi\n'
        'exit 0\n' % (log, ' '.join(units)))
    script.chmod(0o755)
    env['NETAWARE_SYSTEMD_UNIT_DIR'] = str(tmp_path / 'systemd')
    return log


def test_libvirt_daemon_in_sched_fifo_and_back(node):
    tmp_path, agent, env = node
    log = fake_systemctl(tmp_path, env, ['virtqemud.service'])
    env['NETAWARE_LIBVIRT_REALTIME_PRIORITY'] = '2'
    env['NETAWARE_REPLICA_REALTIME_PRIORITY'] = '1'
    res = run_plugin(tmp_path, 'stack', 'extra', env=env)
    assert res.returncode == 0, res.stderr
    assert 'virtqemud.service runs in SCHED_FIFO 2' in res.stdout
    dropin = (tmp_path / 'systemd' / 'virtqemud.service.d'
              / 'nova-netaware-realtime.conf')
    text = dropin.read_text()
    assert '[Service]\nCPUSchedulingPolicy=fifo\nCPUSchedulingPriority=2\n' \
        in text
    # only the unit systemd has; reloaded before the restart
    assert not (tmp_path / 'systemd' / 'libvirtd.service.d').exists()
    done = [x for x in log.read_text().splitlines()
            if not x.startswith('cat ')]
    assert done == ['daemon-reload', 'restart virtqemud.service']
    # the agents get their own priority through [replica]
    confs = agent_confs(tmp_path)
    assert load(confs / 'web-standby.conf').realtime_priority == 1

    log.write_text('')
    res = run_plugin(tmp_path, 'unstack', env=env)
    assert res.returncode == 0, res.stderr
    assert not dropin.exists()
    assert log.read_text().splitlines() == ['daemon-reload',
                                            'restart virtqemud.service']
    # a second unstack has nothing to undo
    log.write_text('')
    res = run_plugin(tmp_path, 'unstack', env=env)
    assert res.returncode == 0, res.stderr
    assert log.read_text() == ''


def test_libvirt_realtime_off_by_default_and_checked(node):
    tmp_path, agent, env = node
    log = fake_systemctl(tmp_path, env, ['libvirtd.service'])
    res = run_plugin(tmp_path, 'stack', 'extra', env=env)
    assert res.returncode == 0, res.stderr
    assert not log.exists()
    assert not (tmp_path / 'systemd').exists()
    for bad in ('100', 'fifo', '-1'):
        res = run_plugin(tmp_path, 'stack', 'extra', env=dict(
            env, NETAWARE_LIBVIRT_REALTIME_PRIORITY=bad))
        assert res.returncode != 0
        assert ('NETAWARE_LIBVIRT_REALTIME_PRIORITY=%s: expected 0 (off) '
                'or a SCHED_FIFO priority 1-99' % bad) in res.stderr
    assert not log.exists()
    # no libvirt unit known to systemd: said, and the agents still start
    fake_systemctl(tmp_path, env, [])
    res = run_plugin(tmp_path, 'stack', 'extra', env=dict(
        env, NETAWARE_LIBVIRT_REALTIME_PRIORITY='1'))
    assert res.returncode == 0, res.stderr
    assert 'systemd has no libvirtd.service or virtqemud.service' \
        in res.stderr
    assert any(x.startswith('run_process') for x in calls(tmp_path))
