"""The processes of the local stack: start, record, probe, stop, triage.

``procs.json`` in the state directory records every process ``up`` started
(pid and kernel start time), so that ``down`` stops those and nothing else,
even when a pid has been reused. Each process writes to its own
``logs/<service>.log``; when one fails, :func:`why` picks the log line that
says why, and :func:`fail` raises :class:`StackError` quoting it.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from nova_netaware.deploy.exceptions import StackError
from nova_netaware.deploy.localstack.settings import PKG_ROOT

# -- output -------------------------------------------------------------------

_T0 = time.monotonic()


def say(msg):
    print('[%6.1fs] %s' % (time.monotonic() - _T0, msg), flush=True)


# -- the process table --------------------------------------------------------

def write_json(path, obj, **kw):
    """Write ``obj`` as JSON to ``path`` atomically (a temporary file
    renamed over it): a reader never sees half a file."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, **kw)
    os.replace(tmp, path)


def _env(extra=None):
    """Environment of the stack's processes: this checkout's nova_netaware
    first on the path (nova-scheduler loads the plugin from it), no OS_*
    client variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (PKG_ROOT, os.environ.get('PYTHONPATH')) if p)
    env.update(extra or {})
    return env


def _open_log(log, argv):
    """``log`` opened for appending, with this run's "starting" marker."""
    out = open(log, 'ab')
    out.write(('\n==== %s: starting %s\n' % (
        time.strftime('%Y-%m-%d %H:%M:%S'), ' '.join(argv))).encode())
    out.flush()
    return out


def _proc_start_time(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(')', 1)[1].split()[19])


def _alive(rec):
    """The recorded process is still the one we started (pid not reused)."""
    start = _proc_start_time(rec['pid'])
    if start is None or start != rec['start_time']:
        return False
    with open('/proc/%d/stat' % rec['pid']) as f:
        state = f.read().rsplit(')', 1)[1].split()[0]
    return state != 'Z'


class Procs(object):
    """procs.json: the processes the launcher started."""

    def __init__(self, settings):
        self.s = settings
        self.records = []
        if os.path.exists(settings.procs_file):
            with open(settings.procs_file) as f:
                self.records = json.load(f)

    def save(self):
        write_json(self.s.procs_file, self.records, indent=1)

    def start(self, name, argv, env=None):
        log = self.s.log(name)
        full_env = _env(env)
        with _open_log(log, argv) as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=full_env,
                                    cwd=self.s.state_dir,
                                    start_new_session=True)
        rec = {'name': name, 'pid': proc.pid,
               'start_time': _proc_start_time(proc.pid), 'argv': argv,
               'log': log}
        self.records.append(rec)
        self.save()
        return rec

    def get(self, name):
        for rec in self.records:
            if rec['name'] == name:
                return rec
        return None

    def alive(self):
        return [r for r in self.records if _alive(r)]

    def stop(self, name, sig=signal.SIGTERM, timeout=30):
        """Stop the recorded process ``name`` (its process group: nova's
        forked workers too) with ``sig``, SIGKILL after ``timeout``, and
        drop its record. Returns the record, or None if there was none."""
        rec = self.get(name)
        if rec is None:
            return None
        if _alive(rec):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(rec['pid'], sig)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(rec):
                time.sleep(0.2)
            if _alive(rec):
                say('%s did not stop in %ds: SIGKILL' % (name, timeout))
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(rec['pid'], signal.SIGKILL)
        self.records = [r for r in self.records if r is not rec]
        self.save()
        return rec

    def dead(self):
        return [r for r in self.records if not _alive(r)]

    def stop_all(self, timeout=30):
        live = self.alive()
        for rec in live:
            # Each service runs in its own session/process group (gunicorn
            # master and workers together); signal that group only.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(rec['pid'], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(r) for r in live):
            time.sleep(0.3)
        for rec in live:
            if _alive(rec):
                say('%s did not stop in %ds: SIGKILL' % (rec['name'], timeout))
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(rec['pid'], signal.SIGKILL)
        self.records = []
        self.save()
        return live


def run(argv, log, timeout=300, env=None, check=True, input=None):
    """Run a set-up command, its output appended to ``log``."""
    full_env = _env(env)
    with _open_log(log, argv) as out:
        try:
            res = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.PIPE if input else
                                 subprocess.DEVNULL, input=input,
                                 env=full_env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StackError('%s timed out after %ds (log: %s)'
                             % (' '.join(argv), timeout, log))
    if check and res.returncode != 0:
        raise StackError('%s failed (exit %d).\n  log: %s\n  why: %s'
                         % (' '.join(argv[:3]), res.returncode, log, why(log)))
    return res.returncode


# -- probes -------------------------------------------------------------------

def http_status(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def port_open(port, host='127.0.0.1'):
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def wait_for(what, check, timeout, interval=0.5, proc=None, log=None):
    """Wait until ``check()`` is true; fail naming ``what`` and quoting the
    log when it is not, or when the process ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if proc is not None and not _alive(proc):
            fail(what, log or proc['log'], 'its process exited')
        if time.monotonic() > deadline:
            fail(what, log or (proc and proc['log']),
                 'no answer within %ds' % timeout)
        time.sleep(interval)


# -- failure reporting --------------------------------------------------------

_BAD = re.compile(r'\b(ERROR|CRITICAL)\b|Traceback|Error:|Exception:|'
                  r'error:|refused|denied', re.I)


_GUNICORN_NOISE = re.compile(
    r'\[(ERROR|INFO|WARNING)\] (Shutting down|Reason: |Worker \(pid|'
    r'Worker exiting|Booting worker|Handling signal|Starting gunicorn|'
    r'Listening at|Using worker)')


def _this_run(lines):
    """The lines after the last "starting" marker, without gunicorn's
    own chatter and blank lines."""
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith('==== ') and ': starting ' in lines[i]:
            lines = lines[i + 1:]
            break
    return [line for line in lines
            if line.strip() and not _GUNICORN_NOISE.search(line)]


def why(log, max_lines=4000):
    """The log line that best says why a service failed."""
    try:
        with open(log, errors='replace') as f:
            lines = f.read().splitlines()[-max_lines:]
    except OSError:
        return '(no log at %s)' % log
    lines = _this_run(lines)
    if not lines:
        return '(log %s is empty)' % log
    # oslo.log: a CRITICAL record is what killed the service
    for line in reversed(lines):
        if re.search(r' CRITICAL \S+ \[', line):
            return line.strip()
    # a plain Python traceback: its closing exception line
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith('Traceback'):
            for line in lines[i + 1:]:
                if re.match(r'^[A-Za-z_.]+(Error|Exception|Exit)\b.*', line):
                    return line.strip()
    # oslo.log ERROR records (the first line of a record has its context
    # "[-]" or "[req-..."; traceback continuation lines do not)
    for line in reversed(lines):
        if re.search(r' (ERROR|CRITICAL) \S+ \[', line):
            return line.strip()
    for line in reversed(lines):
        if re.search(r'\b(CRITICAL|ERROR)\b', line):
            return line.strip()
    for line in reversed(lines):
        if _BAD.search(line):
            return line.strip()
    return lines[-1].strip()


def fail(service, log, what):
    raise StackError('%s did not start: %s.\n  log: %s\n  why: %s'
                     % (service, what, log, why(log)))
