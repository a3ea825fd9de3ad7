"""The replica agent's ``openstack`` cloud driver on a real Nova server of
the libvirt local stack, through the real CLI
(``nova-netaware-replica-agent --config-file F copy pause|unpause|state``).

1. ``openstack_control = api`` from the root namespace: Nova's pause and
   unpause; the record's status follows (PAUSED / ACTIVE), the domain is
   paused / running in its libvirtd, the guest's counter stops / goes on.
2. ``openstack_control = libvirt`` (the fast path) run on the server's
   hypervisor (inside its namespaces, as the agent runs there): the domain
   is suspended / resumed directly; Nova's record stays ACTIVE and its
   power_state follows libvirt's lifecycle events (3 then 1), which the
   driver waits for off the critical path ("settle").
"""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import ROOT
from tests.libvirt_e2e.conftest import TIMINGS
from tests.libvirt_e2e.test_libvirt_migrate import boot
from tests.libvirt_e2e.test_libvirt_migrate import count
from tests.libvirt_e2e.test_libvirt_migrate import peek

from nova_netaware.deploy.localstack import settings as ls
from nova_netaware.deploy.localstack.libvirt import hypervisor

HOST = 'lvcmp1'


@pytest.fixture(scope='module')
def copy(lvstack):
    sid, ip = boot(lvstack, 'replica-copy', HOST)
    server = lvstack.conn.compute.get_server(sid)
    yield {'id': sid, 'ip': ip, 'domain': server.instance_name}
    lvstack.osc('server', 'delete', '--wait', sid, check=False, timeout=300)


def _conf(tmp_path, st, copy, control):
    path = tmp_path / ('replica-%s.conf' % control)
    path.write_text(
        '[replica]\nagent_id = test-%s\ncloud_driver = openstack\n'
        'openstack_cloud = %s\nopenstack_config_file = %s\n'
        'openstack_server = %s\nopenstack_control = %s\n'
        'libvirt_uri = qemu:///system\nstate_dir = %s\n'
        'control_socket = %s\n' % (control, ls.CLOUD, st.clouds_yaml,
                                   copy['id'], control, tmp_path,
                                   tmp_path / 'ctl.sock'))
    return str(path)


def _copy_cmd(conf, action, on_host=None, st=None):
    argv = [sys.executable, '-m', 'nova_netaware.replica.cmd',
            '--config-file', conf, 'copy', action]
    if on_host:
        argv = hypervisor.nsenter(st.lab.holder(on_host), *argv)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        x for x in (ROOT, os.environ.get('PYTHONPATH')) if x))
    t0 = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                         env=env)
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    out['wall_s'] = took
    return out


def _domstate(st, copy):
    return hypervisor.virsh(st.lab.holder(HOST), 'domstate',
                            copy['domain']).strip()


def test_api_pause_and_unpause_real_server(lvstack, copy, tmp_path):
    st = lvstack
    conf = _conf(tmp_path, st, copy, 'api')
    c0 = count(st, copy['ip'])
    assert c0 is not None
    out = _copy_cmd(conf, 'pause')
    assert out['running'] is False
    assert out['api_view'] == ['PAUSED', 3, None], out
    assert _domstate(st, copy) == 'paused'
    assert peek(st, copy['ip']) is None     # the paused guest is silent
    TIMINGS['openstack driver api pause (s)'] = out['seconds']
    out = _copy_cmd(conf, 'unpause')
    assert out['running'] is True
    assert out['api_view'] == ['ACTIVE', 1, None], out
    assert _domstate(st, copy) == 'running'
    assert count(st, copy['ip']) == c0 + 1  # its RAM state survived
    TIMINGS['openstack driver api unpause (s)'] = out['seconds']


def test_fast_path_on_the_hypervisor_and_nova_follows(lvstack, copy,
                                                      tmp_path):
    st = lvstack
    conf = _conf(tmp_path, st, copy, 'libvirt')
    c0 = count(st, copy['ip'])
    out = _copy_cmd(conf, 'pause', on_host=HOST, st=st)
    assert out['running'] is False
    assert _domstate(st, copy) == 'paused'
    assert peek(st, copy['ip']) is None
    # Nova's record: still ACTIVE, power_state PAUSED from the lifecycle
    # event, no task
    assert out['settle']['ok'] is True, out
    assert out['api_view'] == ['ACTIVE', 3, None], out
    server = st.conn.compute.get_server(copy['id'])
    assert (server.status, server.power_state) == ('ACTIVE', 3)
    TIMINGS['openstack driver fast pause (s)'] = out['seconds']
    TIMINGS['nova power_state followed pause (s)'] = round(
        out['settle']['seconds'], 2)

    out = _copy_cmd(conf, 'unpause', on_host=HOST, st=st)
    assert out['running'] is True
    assert _domstate(st, copy) == 'running'
    assert out['settle']['ok'] is True, out
    assert out['api_view'] == ['ACTIVE', 1, None], out
    assert count(st, copy['ip']) == c0 + 1
    TIMINGS['openstack driver fast unpause (s)'] = out['seconds']
    TIMINGS['nova power_state followed unpause (s)'] = round(
        out['settle']['seconds'], 2)
    # the state query through the driver agrees with libvirt
    out = _copy_cmd(conf, 'state', on_host=HOST, st=st)
    assert out['running'] is True
