"""A real QEMU (TCG) guest on a libvirt hypervisor in a network namespace,
its tap on a Linux bridge, a client in another namespace
(:mod:`nova_netaware.replica.lab.guestbed`).

Skipped, with the reason, only when a piece is truly absent: root, QEMU,
libvirtd/virsh, libvirt-python, NetfilterQueue, the Debian kernel or
busybox-static (tools/setup.sh installs them). The bed boots one
guest for the module and removes every namespace and process at the end,
also when a test fails.
"""

import os
import subprocess

import pytest

from nova_netaware.replica.lab import guestbed

PROBLEM = guestbed.problem()


@pytest.fixture(scope='module')
def bed(tmp_path_factory):
    if PROBLEM:
        pytest.skip(PROBLEM)
    b = guestbed.GuestBed(str(tmp_path_factory.mktemp('guestbed')))
    try:
        b.build()
        b.start_guest()
        yield b
    finally:
        b.destroy()
        if os.environ.get('NNR_KEEP_LAB_LOGS'):
            subprocess.run(['cp', '-r', b.dir,
                            os.environ['NNR_KEEP_LAB_LOGS']], check=False)


@pytest.fixture
def port(bed):
    """The data plane on the guest's tap, in pass mode; stopped (rules
    removed) after the test."""
    ctl = bed.start_port('pass')
    try:
        yield ctl
    finally:
        ctl.close()
