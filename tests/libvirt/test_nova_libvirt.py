"""Nova on the libvirt lab, for real, with the openstack CLI: the local
stack's control plane, three nova-computes on Nova's LibvirtDriver in
their namespaces, a guest booted with ``openstack server create`` on a
chosen host, then ``openstack server migrate --live-migration --host``
to another: a real libvirt block + memory migration over the shaped
leaf-spine. The guest's counter must keep counting.

Needs root, the Debian packages of docs/libvirt.md and about 10 minutes
(it brings up the whole local stack). Runs only with
NETAWARE_LIBVIRT_TESTS=1; holds /tmp/netaware-localstack.lock.
"""

import fcntl
import json
import os
import shutil
import subprocess
import time

import pytest

from nova_netaware.deploy.localstack.libvirt import lab as lablib
from nova_netaware.deploy.localstack.libvirt import novastack
from nova_netaware.deploy.localstack.libvirt import ops
from nova_netaware.deploy.localstack import settings
from nova_netaware.deploy.localstack import stack

pytestmark = pytest.mark.skipif(
    os.environ.get('NETAWARE_LIBVIRT_TESTS') != '1' or os.geteuid() != 0
    or not shutil.which('libvirtd'),
    reason='set NETAWARE_LIBVIRT_TESTS=1 (root, libvirt and QEMU needed)')


@pytest.fixture(scope='module')
def cloud(tmp_path_factory):
    state = str(tmp_path_factory.mktemp('stack'))
    with open('/tmp/netaware-localstack.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        s = settings.Settings(state, computes=2)
        st = stack.Stack(s)
        lab = lablib.Lab(lablib.LabSettings(os.path.join(state, 'lab')))
        try:
            st.up()
            times = novastack.up(s, lab)
            env = dict(os.environ, OS_CLIENT_CONFIG_FILE=s.clouds_yaml,
                       OS_CLOUD=settings.CLOUD)
            yield s, lab, env, times
        finally:
            lab.down()
            st.down()


def _os(env, *args):
    res = subprocess.run(['openstack'] + list(args), env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _server(env, name):
    return json.loads(_os(env, 'server', 'show', name, '-f', 'json'))


def test_boot_and_live_migrate_a_real_guest(cloud):
    s, lab, env, times = cloud
    print('bring-up: %s' % times)
    t0 = time.monotonic()
    _os(env, 'server', 'create', '--image', novastack.IMAGE, '--flavor',
        novastack.FLAVOR, '--network', 'guests', '--availability-zone',
        'nova:lvcmp1', '--property', 'netaware:dirty_rate_mbps=20',
        '--wait', 'vm1')
    srv = _server(env, 'vm1')
    ip = srv['addresses']['guests'][0]
    assert srv['OS-EXT-SRV-ATTR:host'] == 'lvcmp1'
    while ops.guest_get(lab, 'lvcmp3', ip, '/cgi-bin/peek') is None:
        assert time.monotonic() - t0 < 180
        time.sleep(0.5)
    print('vm1 %s answers %.1f s after create' % (ip, time.monotonic() - t0))
    _, took, points, gap, end = ops.probed(
        lab, 'lvcmp3', ip, lambda: _os(
            env, 'server', 'migrate', '--live-migration', '--host',
            'lvcmp2', '--wait', 'vm1'))
    print('live migration lvcmp1 -> lvcmp2: %.1f s (CLI), longest reply '
          'gap %.2f s, counter %d -> %d' % (took, gap, points[0][1],
                                            points[-1][1]))
    assert _server(env, 'vm1')['OS-EXT-SRV-ATTR:host'] == 'lvcmp2'
    # still answering at the end, and the count went on
    assert end - points[-1][0] < 2.0
    after = ops.guest_get(lab, 'lvcmp3', ip, '/cgi-bin/peek')
    assert after and int(after.split()[1]) >= points[-1][1] > 10
    _os(env, 'server', 'delete', '--wait', 'vm1')
