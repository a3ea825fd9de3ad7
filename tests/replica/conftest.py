"""Fixtures of the replica agent tests.

Tests marked ``netns`` build a real test bed (network namespaces, veth,
iptables NFQUEUE, guest processes, agents) and need root; they are skipped
with the reason when not root or when a kernel/userspace piece is missing.
Every namespace (and so every veth and iptables rule) and every process is
removed by the fixture, also when the test fails.
"""

import importlib
import os
import shutil
import subprocess

import pytest


def _netns_problem():
    if os.geteuid() != 0:
        return 'needs root (network namespaces, veth, iptables NFQUEUE)'
    for tool in ('ip', 'iptables'):
        if not shutil.which(tool):
            return '%s is not installed (apt-get install iproute2 iptables)' \
                % tool
    try:
        importlib.import_module('netfilterqueue')
    except ImportError as e:
        return 'python NetfilterQueue missing (%s); apt-get install ' \
               'libnetfilter-queue-dev and pip install NetfilterQueue' % e
    return None


NETNS_PROBLEM = _netns_problem()


def pytest_configure(config):
    config.addinivalue_line('markers', 'netns: needs root and network '
                                       'namespaces (real kernel test bed)')


def pytest_collection_modifyitems(config, items):
    if not NETNS_PROBLEM:
        return
    skip = pytest.mark.skip(reason=NETNS_PROBLEM)
    for item in items:
        if 'netns' in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def lab(tmp_path):
    from nova_netaware.replica.lab import Lab
    lb = Lab(str(tmp_path / 'lab'))
    lb.build()
    try:
        yield lb
    finally:
        lb.destroy()
        if os.environ.get('NNR_KEEP_LAB_LOGS'):
            subprocess.run(['cp', '-r', lb.dir, os.environ[
                'NNR_KEEP_LAB_LOGS']], check=False)


@pytest.fixture
def pair(lab):
    """Both guests and both agents up: A active, B standby."""
    lab.start_guest('a')
    lab.start_guest('b')
    lab.start_agent('a')
    lab.start_agent('b')
    assert lab.wait_idle() == 'a'
    return lab
