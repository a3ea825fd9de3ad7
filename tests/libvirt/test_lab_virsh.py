"""The libvirt lab for real: namespaced libvirtd hypervisors on a shaped
leaf-spine, guests booted with plain virsh, guest-to-guest traffic across
leaves, a live migration between two namespaces, and a clean ``down``.

Needs root, the Debian packages of docs/libvirt.md and a few minutes of
CPU (guests run under TCG). Runs only with NETAWARE_LIBVIRT_TESTS=1.
"""

import os
import shutil
import subprocess

import pytest

from nova_netaware.deploy.localstack.libvirt import lab as lablib
from nova_netaware.deploy.localstack.libvirt import ops

pytestmark = pytest.mark.skipif(
    os.environ.get('NETAWARE_LIBVIRT_TESTS') != '1' or os.geteuid() != 0
    or not shutil.which('libvirtd'),
    reason='set NETAWARE_LIBVIRT_TESTS=1 (root, libvirt and QEMU needed)')


def _netns():
    return set(subprocess.run(['ip', 'netns', 'list'], capture_output=True,
                              text=True).stdout.split())


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    before = _netns()
    the_lab = lablib.Lab(lablib.LabSettings(
        str(tmp_path_factory.mktemp('libvirtlab'))))
    the_lab.up(lablib.default_topology(3, thin=()))
    yield the_lab
    gone = the_lab.down()
    assert set(gone) == set(the_lab.state.get('namespaces', gone))
    assert _netns() == before
    for ns in gone:
        assert not subprocess.run(['ip', 'netns', 'pids', ns],
                                  capture_output=True).stdout


def test_guests_talk_across_leaves_and_survive_a_live_migration(lab):
    name1, boot1 = ops.boot(lab, 'lvcmp1', '10.100.1.1')
    name3, boot3 = ops.boot(lab, 'lvcmp3', '10.100.3.1')
    print('boot to first answer: %.1f s, %.1f s' % (boot1, boot3))
    # guest to guest, lvcmp1 (leaf-1) to lvcmp3 (leaf-2), ICMP
    out = ops.guest_get(lab, 'lvcmp1', '10.100.1.1',
                        '/cgi-bin/ping?peer=10.100.3.1', timeout=15)
    assert out and '0% packet loss' in out, out
    (took, downtime), _, points, gap, end = ops.probed(
        lab, 'lvcmp3', '10.100.1.1',
        lambda: ops.migrate(lab, name1, 'lvcmp1', 'lvcmp2'))
    print('live migration lvcmp1 -> lvcmp2: %.1f s, downtime %s ms, '
          'longest reply gap %.2f s' % (took, downtime, gap))
    assert name1 in lab_domains(lab, 'lvcmp2')
    assert name1 not in lab_domains(lab, 'lvcmp1')
    # the counter kept counting: state survived the move
    after = ops.guest_get(lab, 'lvcmp3', '10.100.1.1', '/cgi-bin/peek')
    assert after and int(after.split()[1]) >= points[-1][1] >= 1
    # the guest answered after the move (no gap up to the probe's end)
    assert end - points[-1][0] < 2.0


def lab_domains(lab, host):
    from nova_netaware.deploy.localstack.libvirt import hypervisor
    return hypervisor.virsh(lab.holder(host), 'list', '--name').split()
