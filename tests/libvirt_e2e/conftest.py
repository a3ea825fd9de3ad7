"""The local stack on Nova's libvirt driver for the libvirt end-to-end tests.

The module fixture brings up ``devstack/local-stack up --virt libvirt`` in a
state directory of its own (four nova-computes on LibvirtDriver/QEMU, each
in its own namespaces with its own libvirtd, on the lab's shaped
leaf-spine) and takes it down afterwards (``NETAWARE_E2E_KEEP=1`` keeps it).
It needs root, the Debian packages and libvirt-python that tools/setup.sh
installs, and the local stack's ports: like tests/e2e, run it under
``flock /tmp/netaware-localstack.lock``. ``NETAWARE_LIBVIRT_E2E=0`` skips
it; on CI (``CI`` set) a missing prerequisite is a failure, not a skip.
"""

import os
import shutil
import subprocess
import time

import pytest

from tests.e2e.conftest import LAUNCHER
from tests.e2e.conftest import Stack

TIMINGS = {}


def _missing():
    if os.geteuid() != 0:
        return 'not root'
    sbin = os.environ.get('PATH', '') + ':/usr/sbin:/sbin'
    for b in ('libvirtd', 'qemu-system-x86_64', 'mariadbd',
              'rabbitmq-server', 'sshd'):
        if not shutil.which(b, path=sbin):
            return '%s is not installed' % b
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return 'libvirt-python is not installed'
    return None


class LibvirtStack(Stack):
    """The e2e Stack helper, plus the libvirt lab (guest access)."""

    def __init__(self, state_dir):
        super().__init__(state_dir)
        from nova_netaware.deploy.localstack.libvirt import lab
        from nova_netaware.deploy.localstack.libvirt import novastack
        from nova_netaware.osc.data import CONFIG_ENV
        self.lab = lab.Lab(novastack.lab_settings(self.settings))
        # openstack netaware ... reads the scheduler's [netaware] options
        # (the measured matrix: Prometheus, ports API of clouds.yaml)
        self.env[CONFIG_ENV] = self.nova_conf


def require_libvirt():
    """Skip (or, on CI, fail) when the libvirt stack cannot run here."""
    if os.environ.get('NETAWARE_LIBVIRT_E2E', '1') == '0':
        pytest.skip('NETAWARE_LIBVIRT_E2E=0')
    why = _missing()
    if why:
        if os.environ.get('CI'):
            pytest.fail('libvirt e2e: %s (tools/setup.sh installs it)' % why)
        pytest.skip('libvirt e2e: %s' % why)


@pytest.fixture(scope='module')
def lvstack(tmp_path_factory):
    require_libvirt()
    state_dir = str(tmp_path_factory.mktemp('libvirt-stack'))
    env = dict(os.environ, NETAWARE_STACK_DIR=state_dir)
    t0 = time.monotonic()
    res = subprocess.run([LAUNCHER, 'up', '--virt', 'libvirt'], env=env,
                         capture_output=True, text=True, timeout=900)
    TIMINGS['stack up --virt libvirt (s)'] = round(time.monotonic() - t0, 1)
    print(res.stdout)
    try:
        assert res.returncode == 0, 'local-stack up --virt libvirt ' \
            'failed:\n%s%s' % (res.stdout, res.stderr)
        yield LibvirtStack(state_dir)
    finally:
        if os.environ.get('NETAWARE_E2E_KEEP') != '1':
            t0 = time.monotonic()
            subprocess.run([LAUNCHER, 'down'], env=env, timeout=600)
            TIMINGS['stack down (s)'] = round(time.monotonic() - t0, 1)


def pytest_terminal_summary(terminalreporter):
    """Bring-up, migration times and reply gaps in every run's output."""
    if TIMINGS:
        terminalreporter.write_line('libvirt e2e timings: %s' % ', '.join(
            '%s: %s' % kv for kv in TIMINGS.items()))
