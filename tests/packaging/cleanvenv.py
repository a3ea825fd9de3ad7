"""A clean virtualenv on a machine without a compiler, for install tests.

Shared by tests/packaging (the wheel and its metadata) and tests/e2e
(the README's install commands run verbatim): a copy of the checkout, a
PATH on which every C compiler is a stand-in that records its call and
fails, and a fresh virtualenv (no --system-site-packages, so no Nova).
pip reads the machine's own configuration (pip.conf: the local mirror).
"""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
COMPILERS = ('gcc', 'cc', 'c++', 'g++', 'clang', 'x86_64-linux-gnu-gcc')
# Not part of the build: VCS data, virtualenvs, build output, local state.
IGNORE = shutil.ignore_patterns('.git', '.venv', 'build', 'dist',
                                '*.egg-info', '__pycache__', '.pytest_cache',
                                'local-stack-state', 'tests', 'benchmarks')


def run(cmd, **kw):
    kw.setdefault('timeout', 600)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def copy_checkout(dest):
    """Copy the checkout's sources (see IGNORE) to ``dest``."""
    shutil.copytree(ROOT, dest, ignore=IGNORE)
    return dest


def build_wheel(tmp):
    """Build the wheel from a copy of the checkout; return its path."""
    src = copy_checkout(os.path.join(tmp, 'src'))
    dist = os.path.join(tmp, 'dist')
    r = run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
             '--no-build-isolation', '-w', dist, src])
    assert r.returncode == 0, r.stdout + r.stderr
    wheels = [f for f in os.listdir(dist) if f.endswith('.whl')]
    assert len(wheels) == 1, wheels
    return os.path.join(dist, wheels[0])


def no_compiler_env(tmp):
    """The environment for installs: every compiler on PATH (and $CC,
    $CXX) is a stand-in that appends its call to the returned file and
    fails; no PYTHONPATH. Returns (env, calls_file)."""
    nocc = os.path.join(tmp, 'nocc')
    os.mkdir(nocc)
    calls = os.path.join(tmp, 'compiler-calls')
    for name in COMPILERS:
        path = os.path.join(nocc, name)
        with open(path, 'w') as f:
            f.write('#!/bin/sh\necho "$0 $*" >> %s\n'
                    'echo "no compiler here: $0" >&2\nexit 1\n' % calls)
        os.chmod(path, 0o755)
    env = dict(os.environ, PATH=nocc + os.pathsep + os.environ['PATH'],
               CC=os.path.join(nocc, 'cc'), CXX=os.path.join(nocc, 'c++'))
    env.pop('PYTHONPATH', None)
    env.pop('VIRTUAL_ENV', None)
    return env, calls


def make_venv(path, env):
    """A fresh virtualenv at ``path`` from the base interpreter; returns
    its bin directory."""
    base = getattr(sys, '_base_executable', sys.executable)
    r = run([base, '-m', 'venv', path], env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return os.path.join(path, 'bin')
