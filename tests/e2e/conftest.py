"""The local stack for the end-to-end tests.

The session fixture brings the stack up with the launcher
(``devstack/local-stack up``) unless one is already running, and takes it
down afterwards if it started it (``NETAWARE_E2E_KEEP=1`` keeps it).
Set ``NETAWARE_E2E=0`` to skip these tests; on CI (``CI`` set) a missing
MariaDB/RabbitMQ is a failure, not a skip.

Tests marked ``watcher`` need OpenStack Watcher in the stack: when any is
collected, the fixture brings the stack up with ``up --with-watcher``
(``NETAWARE_E2E_WATCHER=0`` skips them and leaves Watcher out). A stack
already running without Watcher is not restarted behind the developer's
back: the watcher tests fail saying so.
"""

import json
import os
import shutil
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LAUNCHER = os.path.join(ROOT, 'devstack', 'local-stack')
TIMINGS = {}
#: whether the collected tests need Watcher (set at collection)
NEEDS = {'watcher': False}


def _venv_bin():
    import sys
    return os.path.dirname(sys.executable)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'watcher: needs OpenStack Watcher in the local stack '
        '(up --with-watcher)')


def pytest_collection_modifyitems(config, items):
    if os.environ.get('NETAWARE_E2E', '1') == '0':
        skip = pytest.mark.skip(reason='NETAWARE_E2E=0')
        for item in items:
            if 'tests/e2e/' in str(item.fspath):
                item.add_marker(skip)
        return
    watcher = [i for i in items if i.get_closest_marker('watcher')]
    if os.environ.get('NETAWARE_E2E_WATCHER', '1') == '0':
        skip = pytest.mark.skip(reason='NETAWARE_E2E_WATCHER=0')
        for item in watcher:
            item.add_marker(skip)
        return
    NEEDS['watcher'] = bool(watcher)


class Stack(object):
    def __init__(self, state_dir):
        from nova_netaware.deploy.localstack import settings as ls
        self.settings = ls.Settings(state_dir)
        self.clouds_yaml = self.settings.clouds_yaml
        self.topology_file = self.settings.topology_file
        self.traffic_file = self.settings.traffic_file
        self.nova_conf = os.path.join(self.settings.etc, 'nova', 'nova.conf')
        self.scheduler_log = self.settings.log('nova-scheduler')
        self.hosts = self.settings.hosts
        self.env = dict(os.environ, OS_CLIENT_CONFIG_FILE=self.clouds_yaml,
                        OS_CLOUD=ls.CLOUD,
                        PATH=_venv_bin() + os.pathsep + os.environ['PATH'])
        for var in list(self.env):
            if var.startswith('OS_') and var not in (
                    'OS_CLIENT_CONFIG_FILE', 'OS_CLOUD'):
                del self.env[var]
        self._conn = None
        from nova_netaware.deploy.localstack import processes
        self.with_watcher = processes.Procs(self.settings).get(
            'watcher-api') is not None

    def osc(self, *args, check=True, timeout=180):
        """``openstack <args>`` as an operator types it; JSON if -f json."""
        argv = ['openstack', '--os-compute-api-version', '2.latest'] + \
            list(args)
        res = subprocess.run(argv, env=self.env, capture_output=True,
                             text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError('%s failed (%d):\n%s%s' % (
                ' '.join(argv), res.returncode, res.stdout, res.stderr))
        if check and '-f' in args and 'json' in args:
            return json.loads(res.stdout)
        return res

    @property
    def conn(self):
        if self._conn is None:
            from nova_netaware.deploy.localstack import services
            self._conn = services.connect(self.settings)
        return self._conn


@pytest.fixture(scope='session')
def stack():
    sbin = os.environ.get('PATH', '') + ':/usr/sbin:/sbin'
    if not shutil.which('mariadbd', path=sbin) \
            or not shutil.which('rabbitmq-server', path=sbin):
        if os.environ.get('CI'):
            pytest.fail('MariaDB or RabbitMQ is not installed')
        pytest.skip('MariaDB or RabbitMQ is not installed')
    state_dir = os.environ.get('NETAWARE_STACK_DIR') or os.path.join(
        ROOT, 'local-stack-state')
    env = dict(os.environ, NETAWARE_STACK_DIR=state_dir)
    status = subprocess.run([LAUNCHER, 'status'], env=env,
                            capture_output=True, text=True, timeout=60)
    started = status.returncode != 0
    if started:
        if status.returncode == 1:   # partly running: start afresh
            subprocess.run([LAUNCHER, 'down'], env=env, timeout=120)
        t0 = time.monotonic()
        argv = [LAUNCHER, 'up'] + (['--with-watcher'] if NEEDS['watcher']
                                   else [])
        res = subprocess.run(argv, env=env, capture_output=True,
                             text=True, timeout=900)
        TIMINGS['stack up%s (s)' % (' with watcher' if NEEDS['watcher']
                                    else '')] = round(time.monotonic() - t0,
                                                      1)
        print(res.stdout)
        assert res.returncode == 0, 'local-stack up failed:\n%s%s' % (
            res.stdout, res.stderr)
    st = Stack(state_dir)
    yield st
    if started and os.environ.get('NETAWARE_E2E_KEEP') != '1':
        subprocess.run([LAUNCHER, 'down'], env=env, timeout=300)


@pytest.fixture(scope='session', autouse=True)
def _readme_install_in_background(request):
    """Start the README's install blocks (test_readme.py) now, in a
    thread, when that test is to run: pip's work overlaps the stack's
    bring-up instead of adding to it."""
    wanted = [i for i in request.session.items
              if i.name == 'test_install_blocks_in_a_clean_virtualenv'
              and not i.get_closest_marker('skip')]
    run = None
    if wanted:
        from tests.e2e.test_readme import InstallRun
        run = InstallRun.begin()
    yield
    if run is not None:
        try:
            run.result()     # waited for and reported by its test
        except BaseException:
            pass


@pytest.fixture(scope='session', autouse=True)
def _timings():
    t0 = time.monotonic()
    yield
    TIMINGS['e2e session (s)'] = round(time.monotonic() - t0, 1)
    if any(k.startswith('stack up') for k in TIMINGS) or len(TIMINGS) > 1:
        path = os.path.join(ROOT, 'local-stack-state')
        if os.path.isdir(path):
            with open(os.path.join(path, 'e2e-timings.json'), 'w') as f:
                json.dump(TIMINGS, f)


def pytest_terminal_summary(terminalreporter):
    """Stack start time and e2e time in every run's output (CI logs)."""
    if TIMINGS:
        terminalreporter.write_line('e2e timings: %s' % ', '.join(
            '%s: %s' % kv for kv in TIMINGS.items()))
