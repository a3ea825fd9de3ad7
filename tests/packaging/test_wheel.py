"""The wheel, built and installed as the README says, in a clean virtualenv.

Builds the wheel from a copy of the checkout, installs it into a fresh
virtualenv (no --system-site-packages, so no Nova) with a PATH on which every
C compiler is a stand-in that records its call and fails, and runs the
``nova-netaware`` command from there. Also reads the wheel's METADATA: the
base install is the scheduler plugin, the extras carry the rest.

About a minute: pip fetches numpy, scipy, openstacksdk, ... (wheels).
"""

import email.parser
import os
import shutil
import tempfile
import unittest
import zipfile

from tests.packaging.cleanvenv import build_wheel
from tests.packaging.cleanvenv import make_venv
from tests.packaging.cleanvenv import no_compiler_env
from tests.packaging.cleanvenv import run as _run


class TestWheel(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='netaware-wheel-')
        try:
            cls._build_and_install()
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def _build_and_install(cls):
        cls.wheel = build_wheel(cls.tmp)
        cls.env, cls.calls = no_compiler_env(cls.tmp)
        cls.venv = os.path.join(cls.tmp, 'venv')
        cls.bin = make_venv(cls.venv, cls.env)
        cls.install = _run([os.path.join(cls.bin, 'pip'), 'install', '-q',
                            '--no-cache-dir', cls.wheel], env=cls.env)

    def _venv(self, *cmd):
        return _run([os.path.join(self.bin, cmd[0])] + list(cmd[1:]),
                    env=self.env, cwd=self.tmp)

    def test_installs_without_a_compiler(self):
        self.assertEqual(0, self.install.returncode,
                         self.install.stdout + self.install.stderr)
        self.assertFalse(os.path.exists(self.calls),
                         'a compiler was called during the install')

    def test_base_install_has_no_replica_or_osc_dependency(self):
        r = self._venv('python', '-c', 'import importlib.util as u, sys; '
                       'print(" ".join(m for m in sys.argv[1:] '
                       'if u.find_spec(m)))', 'netfilterqueue', 'tooz',
                       'prometheus_client', 'osc_lib', 'cliff', 'nova')
        self.assertEqual(0, r.returncode, r.stderr)
        self.assertEqual('', r.stdout.strip())

    def test_command_help(self):
        r = self._venv('nova-netaware', '--help')
        self.assertEqual(0, r.returncode, r.stderr)
        self.assertIn('usage: nova-netaware', r.stdout)
        self.assertIn('--placement', r.stdout)

    def test_flow_meter_command(self):
        r = self._venv('nova-netaware-flow-meter', '--help')
        self.assertEqual(0, r.returncode, r.stderr)
        self.assertIn('usage: nova-netaware-flow-meter', r.stdout)
        self.assertIn('--guest-ports', r.stdout)
        # the base install has no prometheus-client: one clear line
        r = self._venv('nova-netaware-flow-meter', '--port', '1')
        self.assertEqual(2, r.returncode, r.stderr)
        self.assertEqual('nova-netaware-flow-meter needs prometheus-client '
                         '(pip install nova-netaware[meter])',
                         r.stderr.strip())

    def test_guest_state_endpoint_source_is_package_data(self):
        # image.py compiles it into the guest image
        import zipfile
        names = zipfile.ZipFile(self.wheel).namelist()
        self.assertIn('nova_netaware/deploy/localstack/libvirt/na_state.c',
                      names)

    def test_example_datacenter_is_package_data(self):
        r = self._venv('python', '-c',
                       'from nova_netaware.cmd import cli; '
                       'print(cli.example_dir())')
        self.assertEqual(0, r.returncode, r.stderr)
        found = r.stdout.strip()
        self.assertTrue(found.startswith(self.venv), found)
        self.assertEqual(['placement.yaml', 'topology.yaml', 'traffic.yaml'],
                         sorted(os.listdir(found)))
        # The command gets past the example lookup, then says in one line
        # that it needs Nova: no traceback.
        r = self._venv('nova-netaware')
        self.assertNotIn('no example datacenter found', r.stderr)
        self.assertEqual(2, r.returncode, r.stderr)
        self.assertNotIn('Traceback', r.stderr)
        self.assertIn('Nova is not importable', r.stderr)
        self.assertEqual(1, len(r.stderr.strip().splitlines()), r.stderr)


class TestWheelMetadata(unittest.TestCase):
    """Requires-Dist of the built wheel: base vs. extras."""

    @classmethod
    def setUpClass(cls):
        tmp = tempfile.mkdtemp(prefix='netaware-wheel-')
        try:
            with zipfile.ZipFile(build_wheel(tmp)) as z:
                [meta] = [n for n in z.namelist()
                          if n.endswith('.dist-info/METADATA')]
                msg = email.parser.Parser().parsestr(z.read(meta).decode())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        cls.requires = {}
        cls.lines = msg.get_all('Requires-Dist')
        for line in cls.lines:
            req, _, marker = line.partition(';')
            extra = None
            if 'extra ==' in marker:
                extra = marker.split('extra ==')[1].strip().strip('"\'')
            name = req.strip().split('[')[0]
            for sep in '<>=!~ (':
                name = name.split(sep)[0]
            cls.requires.setdefault(extra, set()).add(name.lower())

    def test_base_is_the_scheduler_plugin(self):
        base = self.requires[None]
        for name in ('netfilterqueue', 'tooz', 'prometheus-client', 'cliff',
                     'osc-lib', 'python-openstackclient', 'matplotlib',
                     'nova', 'python-watcher', 'python-watcherclient'):
            self.assertNotIn(name, base)
        for name in ('networkx', 'numpy', 'stevedore', 'oslo.config'):
            self.assertIn(name, base)

    def test_replica_extra(self):
        self.assertEqual({'netfilterqueue', 'tooz', 'prometheus-client'},
                         self.requires['replica'])

    def test_meter_extra(self):
        self.assertEqual({'prometheus-client'}, self.requires['meter'])

    def test_ledger_extra(self):
        self.assertEqual({'tooz', 'redis'}, self.requires['ledger'])

    def test_osc_extra(self):
        self.assertEqual({'cliff', 'osc-lib', 'python-openstackclient',
                          'matplotlib'}, self.requires['osc'])

    def test_watcher_extra(self):
        self.assertEqual({'python-watcher', 'python-watcherclient'},
                         self.requires['watcher'])

    def test_nova_extra_pins_nova(self):
        self.assertIn('nova', self.requires['nova'])

    def test_test_extra_brings_every_part(self):
        self.assertIn(
            'nova-netaware[ledger,meter,nova,osc,replica,watcher]; '
            'extra == "test"', self.lines)
