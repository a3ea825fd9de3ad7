"""The README's commands, run as written, so that the README cannot drift
from the truth.

The blocks run are the README's fenced code blocks preceded by an HTML
comment ``<!-- verbatim-test: NAME ... -->`` (invisible to readers). Each
block runs in one bash process, line after line, as if pasted into a
shell; every line must exit 0, and the lines this test knows must print
what an operator expects. The test fails if a marked block disappears or
loses one of these commands.

* ``install-checkout``, ``install-git-url``, ``install-wheel``: in a
  clean virtualenv (activated: its bin first on PATH) with every compiler
  replaced by a failing stand-in, from an empty directory. The README's
  placeholders are the only substitutions: the git URL is this checkout
  (``file://``; so the committed tree is installed), the branch or tag
  its HEAD commit. Then ``nova-netaware`` from that virtualenv, which has
  no Nova: one line saying so, as the README says.
* ``demo``: its ``devstack/local-stack`` line (the other line is
  ``bash tools/run-tests.sh``, i.e. this test run).
* ``after-demo``: from the checkout, against the stack and the workload
  the demo left, with a PATH and environment that do not yet point at the
  stack (no virtualenv on PATH, no ``OS_*``, no ``NETAWARE_CONFIG_FILE``):
  the ``eval "$(devstack/local-stack env)"`` line has to do that.

Cost (2 cores): installs about 40 s, the demo 25-30 s, the after-demo
block about 20 s.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from tests.e2e.conftest import TIMINGS
from tests.packaging.cleanvenv import make_venv
from tests.packaging.cleanvenv import no_compiler_env
from tests.packaging.cleanvenv import ROOT

README = os.path.join(ROOT, 'README.md')
MARKED = re.compile(r'<!--\s*verbatim-test:\s*([\w-]+)[^>]*?-->\s*\n'
                    r'```[^\n]*\n(.*?)\n```', re.S)
GIT_URL = '<git url of this repository>'
GIT_REF = '<branch or tag>'
DEMO_SERVERS = ('demo-app', 'demo-cache', 'demo-db', 'demo-backup-src',
                'demo-backup-dst', 'demo-monitor')

# after-demo: a command's first words -> what its output must contain
AFTER_DEMO = {
    'eval "$(devstack/local-stack env)"': (),
    'openstack server list --long': DEMO_SERVERS + ('ACTIVE',),
    'openstack netaware explain demo-app': (
        'Server demo-app', 'Winner', 'current host'),
    'openstack netaware rebalance': ('Planned migrations:',),
    'openstack netaware topology validate': (),
    'openstack netaware topology plot': (),
    'nova-netaware': ('winner:', "Nova's default weighers"),
}


def readme_blocks():
    """{name: [command line, ...]} of the README's marked blocks; a line
    ending in a backslash is joined with the next, blank and comment-only
    lines are left out."""
    with open(README) as f:
        text = f.read()
    blocks = {}
    for m in MARKED.finditer(text):
        assert m.group(1) not in blocks, 'two blocks marked %s' % m.group(1)
        lines, cont = [], ''
        for line in m.group(2).splitlines():
            if line.rstrip().endswith('\\'):
                cont += line.rstrip()[:-1] + ' '
                continue
            line, cont = cont + line, ''
            if line.strip() and not line.strip().startswith('#'):
                lines.append(line)
        blocks[m.group(1)] = lines
    return blocks


def run_block(lines, cwd, env, timeout=900):
    """Run the lines in one bash, as pasted into a shell; return one
    (line, exit status, output) per line."""
    script = ['exec 2>&1']
    for i, line in enumerate(lines):
        script += ['echo "@@@ start %d"' % i, line,
                   'echo "@@@ exit %d $?"' % i]
    res = subprocess.run(['bash', '-c', '\n'.join(script)], cwd=cwd,
                         env=env, capture_output=True, text=True,
                         timeout=timeout)
    results = []
    for i, line in enumerate(lines):
        m = re.search(r'@@@ start %d\n(.*?)@@@ exit %d (\d+)\n' % (i, i),
                      res.stdout, re.S)
        assert m, 'the block stopped at %r:\n%s' % (line, res.stdout)
        results.append((line, int(m.group(2)), m.group(1)))
    return results


def check_all_succeed(results):
    for line, rc, out in results:
        assert rc == 0, '%r exited %d:\n%s' % (line, rc, out)


INSTALL_BLOCKS = {'install-checkout', 'install-git-url', 'install-wheel'}


@pytest.fixture(scope='module')
def blocks():
    found = readme_blocks()
    missing = {'demo', 'after-demo'} - set(found)
    assert not missing, 'README.md lost its marked block(s) %s' % missing
    return found


def _git(*args):
    r = subprocess.run(['git', '-C', ROOT] + list(args), capture_output=True,
                       text=True)
    assert r.returncode == 0, (
        'the install blocks clone this checkout, which must be a git '
        'checkout: git %s: %s' % (' '.join(args), r.stderr))
    return r.stdout.strip()


def _direct_url(bindir, env):
    """Where pip installed nova-netaware from (PEP 610 direct_url.json).

    Isolated (``-I``) and from ``/``: the test's own directory is the
    checkout, whose ``nova_netaware.egg-info`` (left by ``pip install -e``)
    would otherwise be found first on ``sys.path`` and has no
    direct_url.json."""
    r = subprocess.run(
        [os.path.join(bindir, 'python'), '-I', '-c',
         'import importlib.metadata as m; print(m.distribution('
         '"nova-netaware").read_text("direct_url.json"))'],
        env=env, cwd='/', capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() != 'None', (
        'the installed nova-netaware has no direct_url.json')
    return json.loads(r.stdout)


def uninstall(bindir, env):
    r = subprocess.run([os.path.join(bindir, 'pip'), 'uninstall', '-y',
                        'nova-netaware'], env=env, cwd='/',
                       capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def install_blocks(blocks, tmp):
    """Run the three install blocks in a clean virtualenv under ``tmp``,
    then ``nova-netaware`` from it; raise AssertionError on the first
    thing that is not as the README says."""
    t0 = time.monotonic()
    env, calls = no_compiler_env(tmp)
    venv = os.path.join(tmp, 'venv')
    bindir = make_venv(venv, env)
    env.update(VIRTUAL_ENV=venv, PATH=bindir + os.pathsep + env['PATH'])
    work = os.path.join(tmp, 'work')
    os.mkdir(work)
    commit = _git('rev-parse', 'HEAD')

    def substituted(name):
        lines = [line.replace(GIT_URL, 'file://' + ROOT)
                 .replace(GIT_REF, commit) for line in blocks[name]]
        assert lines, 'the README block %s is empty' % name
        return lines

    # from a checkout: the clone, installed from its directory
    lines = substituted('install-checkout')
    assert any(line.startswith('git clone ') for line in lines), lines
    check_all_succeed(run_block(lines, work, env))
    url = _direct_url(bindir, env)
    assert 'dir_info' in url and url['url'].endswith('/nova-netaware'), url

    # from a git URL at the commit; each block starts without the package
    # (pip would keep an installed 0.1.0), the dependencies stay
    uninstall(bindir, env)
    check_all_succeed(run_block(substituted('install-git-url'), work, env))
    url = _direct_url(bindir, env)
    assert url.get('vcs_info', {}).get('commit_id') == commit, url

    # from the wheel the project builds
    uninstall(bindir, env)
    lines = substituted('install-wheel')
    assert any('-m build' in line for line in lines), lines
    check_all_succeed(run_block(lines, work, env))
    url = _direct_url(bindir, env)
    assert url['url'].endswith('.whl'), url

    assert not os.path.exists(calls), 'a compiler was called: %s' % (
        open(calls).read())

    # nova-netaware from that virtualenv: no Nova there, and it says so
    [(_, rc, out)] = run_block(['nova-netaware'], work, env)
    assert rc == 2, out
    assert 'Nova is not importable' in out and 'Traceback' not in out, out
    assert len(out.strip().splitlines()) == 1, out
    TIMINGS['README install blocks (s)'] = round(time.monotonic() - t0, 1)


class InstallRun(threading.Thread):
    """``install_blocks`` in a thread. The e2e conftest starts one at the
    beginning of the session, so that the installs (pip, about 40 s)
    overlap the stack's bring-up; the test waits for its result."""

    started = None

    def __init__(self):
        super().__init__(daemon=True)
        self.tmp = tempfile.mkdtemp(prefix='netaware-readme-')
        self.error = None

    @classmethod
    def begin(cls):
        cls.started = cls()
        cls.started.start()
        return cls.started

    def run(self):
        try:
            found = readme_blocks()
            missing = INSTALL_BLOCKS - set(found)
            assert not missing, 'README.md lost its marked block(s) %s' % (
                missing)
            install_blocks(found, self.tmp)
        except BaseException as e:   # re-raised in the test
            self.error = e

    def result(self):
        self.join()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.error is not None:
            raise self.error


def test_install_blocks_in_a_clean_virtualenv():
    (InstallRun.started or InstallRun.begin()).result()


def _operator_env(stack):
    """A shell that does not yet point at the stack: no virtualenv bin on
    PATH, no OS_* variables, no NETAWARE_CONFIG_FILE."""
    venv_bins = {os.path.realpath(os.path.dirname(sys.executable)),
                 os.path.realpath(stack.settings.bindir)}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('OS_') and k not in (
               'NETAWARE_CONFIG_FILE', 'VIRTUAL_ENV')}
    env['PATH'] = os.pathsep.join(
        p for p in os.environ['PATH'].split(os.pathsep)
        if os.path.realpath(p) not in venv_bins)
    env['NETAWARE_STACK_DIR'] = stack.settings.state_dir
    return env


@pytest.fixture
def plot_file():
    """``topology plot -o topology.png`` writes into the checkout: keep a
    file of that name that was there before, remove ours after."""
    path = os.path.join(ROOT, 'topology.png')
    saved = path + '.before-test-readme'
    if os.path.exists(path):
        shutil.move(path, saved)
    yield path
    if os.path.exists(path):
        os.remove(path)
    if os.path.exists(saved):
        shutil.move(saved, path)


def test_demo_then_the_after_demo_block(stack, blocks, plot_file):
    env = _operator_env(stack)
    assert shutil.which('openstack', path=env['PATH']) is None, \
        'openstack is on PATH before the env line: the test proves nothing'

    demo = [line for line in blocks['demo']
            if line.startswith('devstack/local-stack')]
    others = set(blocks['demo']) - set(demo)
    assert demo and others <= {'bash tools/run-tests.sh'}, blocks['demo']
    t0 = time.monotonic()
    [(line, rc, out)] = run_block(demo, ROOT, env)
    TIMINGS['README demo (s)'] = round(time.monotonic() - t0, 1)
    assert rc == 0, '%r exited %d:\n%s' % (line, rc, out)
    assert 'demo-app moved' in out, out

    t0 = time.monotonic()
    results = run_block(blocks['after-demo'], ROOT, env)
    TIMINGS['README after-demo block (s)'] = round(time.monotonic() - t0, 1)
    check_all_succeed(results)
    outputs = {}
    for line, _, out in results:
        command = line.split('#')[0].strip()
        known = [k for k in AFTER_DEMO if command.startswith(k)]
        if known:
            outputs[max(known, key=len)] = out
    missing = set(AFTER_DEMO) - set(outputs)
    assert not missing, 'README after-demo block lost %s' % missing
    for command, markers in AFTER_DEMO.items():
        for marker in markers:
            assert marker in outputs[command], '%r printed no %r:\n%s' % (
                command, marker, outputs[command])
    with open(plot_file, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n', 'topology.png is no PNG'
