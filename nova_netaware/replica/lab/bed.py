"""The test bed: two clouds built from network namespaces (see
:mod:`nova_netaware.replica.lab`)."""

import json
import os
import secrets
import signal
import subprocess
import sys
import time

from nova_netaware.replica import states
from nova_netaware.replica.control import control_call
from nova_netaware.replica.errors import AgentError
from nova_netaware.replica.errors import LabError
from nova_netaware.replica.lab.netns import (CLIENT_NET, CTL_PORT, DATA_PORT,
                                             HV_VM_IP, LINK_IP, PEER_PORT,
                                             VM_IP, guest_call, is_root, sh)

PY = sys.executable


class Lab:
    """One test bed in ``workdir``; every namespace name starts with
    ``prefix`` (random by default). Agents and guests run at ``nice``."""

    def __init__(self, workdir, prefix=None, coordination_url=None,
                 hmac_key=None, nice=0):
        if not is_root():
            raise LabError('the replica test bed needs root (network '
                           'namespaces, veth, iptables)')
        self.p = prefix or 'r' + secrets.token_hex(2)
        self.dir = os.path.abspath(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.coordination_url = coordination_url or \
            'file://' + os.path.join(self.dir, 'coord')
        self.key = hmac_key or secrets.token_hex(24)
        self.service = 'svc-' + self.p
        self.procs = {}
        self.namespaces = []
        if not -20 <= int(nice) <= 19:
            raise LabError('nice must be within -20..19, got %r' % (nice,))
        self.nice = int(nice)

    # ----------------------------------------------------------- names
    def ns(self, role, x):
        return '%s-%s%s' % (self.p, role, x)

    def ifname(self, kind, x, end):
        return '%s%s%s%d' % (self.p, kind, x, end)

    @property
    def link_if(self):
        return {'a': self.ifname('l', 'a', 0), 'b': self.ifname('l', 'b', 0)}

    # ----------------------------------------------------------- build
    def _ip(self, ns, *args):
        return sh('ip', '-n', ns, *args)

    def build(self):
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise
        return self

    def _build(self):
        for x in 'ab':
            for role in ('hv', 'vm', 'cl'):
                n = self.ns(role, x)
                sh('ip', 'netns', 'add', n)
                self.namespaces.append(n)
                self._ip(n, 'link', 'set', 'lo', 'up')
            hv, vm, cl = self.ns('hv', x), self.ns('vm', x), self.ns('cl', x)
            sh('ip', 'netns', 'exec', hv, 'sysctl', '-qw',
               'net.ipv4.ip_forward=1')
            # client <-> hypervisor
            c0, c1 = self.ifname('c', x, 0), self.ifname('c', x, 1)
            sh('ip', 'link', 'add', c0, 'netns', cl, 'type', 'veth',
               'peer', 'name', c1, 'netns', hv)
            self._ip(cl, 'addr', 'add', CLIENT_NET[x] + '.2/24', 'dev', c0)
            self._ip(hv, 'addr', 'add', CLIENT_NET[x] + '.1/24', 'dev', c1)
            self._ip(cl, 'link', 'set', c0, 'up')
            self._ip(hv, 'link', 'set', c1, 'up')
            self._ip(cl, 'route', 'add', 'default', 'via',
                     CLIENT_NET[x] + '.1')
            # hypervisor <-> copy
            v0, v1 = self.ifname('v', x, 0), self.ifname('v', x, 1)
            sh('ip', 'link', 'add', v0, 'netns', hv, 'type', 'veth',
               'peer', 'name', v1, 'netns', vm)
            self._ip(hv, 'addr', 'add', HV_VM_IP + '/24', 'dev', v0)
            self._ip(vm, 'addr', 'add', VM_IP + '/24', 'dev', v1)
            self._ip(hv, 'link', 'set', v0, 'up')
            self._ip(vm, 'link', 'set', v1, 'up')
            self._ip(vm, 'route', 'add', 'default', 'via', HV_VM_IP)
        # inter-cloud link between the two hypervisors
        la, lb = self.link_if['a'], self.link_if['b']
        sh('ip', 'link', 'add', la, 'netns', self.ns('hv', 'a'), 'type',
           'veth', 'peer', 'name', lb, 'netns', self.ns('hv', 'b'))
        for x in 'ab':
            self._ip(self.ns('hv', x), 'addr', 'add', LINK_IP[x] + '/30',
                     'dev', self.link_if[x])
            self._ip(self.ns('hv', x), 'link', 'set', self.link_if[x], 'up')

    def set_link(self, up):
        for x in 'ab':
            self._ip(self.ns('hv', x), 'link', 'set', self.link_if[x],
                     'up' if up else 'down')

    # ----------------------------------------------------------- processes
    def spawn(self, name, ns, argv, log, env=None, nice=False):
        """Start ``argv`` inside namespace ``ns`` as process ``name``
        (output appended to ``log`` in the lab directory, ``env`` added to
        the environment, at the lab's nice value if ``nice``); the lab kills
        it in :meth:`destroy`. Returns the Popen."""
        f = open(os.path.join(self.dir, log), 'ab')
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.setdefault('PYTHONWARNINGS', 'ignore')
        if nice and self.nice:
            argv = ['nice', '-n', str(self.nice)] + argv
        p = subprocess.Popen(['ip', 'netns', 'exec', ns] + argv, stdout=f,
                             stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=full_env)
        f.close()
        self.procs[name] = p
        return p

    def guest_pid_file(self, x):
        return os.path.join(self.dir, 'guest-%s.pid' % x)

    def start_guest(self, x, pad_bytes=0):
        pf = self.guest_pid_file(x)
        if os.path.exists(pf):
            os.unlink(pf)
        self.spawn('guest-' + x, self.ns('vm', x),
                    [PY, '-m', 'nova_netaware.replica.guest', '--port',
                     str(DATA_PORT), '--control-port', str(CTL_PORT),
                     '--pad-bytes', str(pad_bytes), '--pid-file', pf],
                    'guest-%s.log' % x, nice=True)
        self.wait_for(lambda: os.path.exists(pf), 10,
                      'guest %s pid file' % x)
        self.wait_for(lambda: self._guest_up(x), 10,
                      'guest %s endpoint' % x)

    def _guest_up(self, x):
        try:
            return guest_call(self.ns('vm', x), {'op': 'stats'},
                              timeout=1)['ok']
        except OSError:
            return False

    def guest_pid(self, x):
        with open(self.guest_pid_file(x)) as f:
            return int(f.read())

    def guest_stats(self, x):
        return guest_call(self.ns('vm', x), {'op': 'stats'})

    def control_socket(self, x):
        return os.path.join(self.dir, 'agent-%s.sock' % x)

    def write_agent_config(self, x, **overrides):
        other = 'b' if x == 'a' else 'a'
        opts = {
            'agent_id': 'agent-' + x,
            'service_name': self.service,
            'initial_role': 'active' if x == 'a' else 'standby',
            'state_dir': os.path.join(self.dir, 'state-' + x),
            'control_socket': self.control_socket(x),
            'coordination_url': self.coordination_url,
            'guest_interface': self.ifname('v', x, 0),
            'nfqueue_num': 10 if x == 'a' else 11,
            'peer_listen_host': LINK_IP[x],
            'peer_listen_port': PEER_PORT,
            'peer_host': LINK_IP[other],
            'peer_port': PEER_PORT,
            'peer_hmac_key': self.key,
            'peer_timeout': 2.0,
            'handoff_timeout': 5.0,
            'copy_name': 'copy-' + x,
            'local_pid_file': self.guest_pid_file(x),
            'guest_endpoint_host': VM_IP,
            'guest_endpoint_port': CTL_PORT,
            # the stand-in "VM" is a process reading a large socket
            # buffer, not a guest kernel: replay at line rate
            'replay_rate': 0,
            'replay_window': 0,
        }
        opts.update(overrides)
        path = os.path.join(self.dir, 'agent-%s.conf' % x)
        with open(path, 'w') as f:
            f.write('[DEFAULT]\ndebug = false\nlog_file = %s\n\n[replica]\n'
                    % os.path.join(self.dir, 'agent-%s.log' % x))
            for k, v in opts.items():
                f.write('%s = %s\n' % (k, v))
        return path

    def start_agent(self, x, wait=True, env=None, **overrides):
        path = self.write_agent_config(x, **overrides)
        sock = self.control_socket(x)
        if os.path.exists(sock):
            os.unlink(sock)
        p = self.spawn('agent-' + x, self.ns('hv', x),
                        [PY, '-m', 'nova_netaware.replica.cmd',
                         '--config-file', path, 'run'],
                        'agent-%s.out' % x, env=env, nice=True)
        if wait:
            self.wait_for(lambda: self._agent_up(x, p), 30, 'agent %s' % x)
        return p

    def _agent_up(self, x, p):
        if p.poll() is not None:
            raise LabError('agent %s exited with %s; see %s' % (
                x, p.returncode, os.path.join(self.dir, 'agent-%s.*' % x)))
        try:
            return self.status(x, timeout=2)['state'] in (
                states.ACTIVE, states.STANDBY)
        except AgentError:
            return False

    def status(self, x, timeout=30):
        r = control_call(self.control_socket(x), 'status', timeout=timeout)
        if not r.get('ok'):
            raise LabError('status of %s: %s' % (x, r))
        return r['status']

    def switchover(self, x, timeout=60):
        return control_call(self.control_socket(x), 'switchover',
                            timeout=timeout)

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs.get(name)
        if p and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def active_side(self):
        roles = {x: self.status(x)['state'] for x in 'ab'}
        act = [x for x, s in roles.items() if s == states.ACTIVE]
        if len(act) != 1:
            raise LabError('expected exactly one active agent: %s' % roles)
        return act[0]

    def wait_idle(self, timeout=20):
        """Both agents in a stable role (ACTIVE/STANDBY), one of each."""
        end = time.monotonic() + timeout
        while True:
            try:
                return self.active_side()
            except LabError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.02)

    def start_client(self, x, cid, count, rate, timeout=60.0, start=1,
                     expect=None):
        out = os.path.join(self.dir, 'client-%s.json' % cid)
        for f in (out, out + '.sent', out + '.started'):
            if os.path.exists(f):
                os.unlink(f)
        p = self.spawn('client-' + cid, self.ns('cl', x),
                        [PY, '-m', 'nova_netaware.replica.lab', 'client',
                         '--server', VM_IP, '--port', str(DATA_PORT),
                         '--id', cid, '--count', str(count), '--start',
                         str(start), '--rate', str(rate), '--timeout',
                         str(timeout), '--out', out] +
                        (['--expect', str(expect)] if expect is not None
                         else []),
                        'client-%s.log' % cid)
        p.out = out
        return p

    @classmethod
    def wait_started(cls, p, timeout=120):
        """Wait until client ``p`` has sent its first request."""
        cls.wait_for(lambda: os.path.exists(p.out + '.started') or
                  p.poll() is not None, timeout, 'client to start')

    @classmethod
    def wait_sent(cls, p, timeout=120):
        """Wait until client ``p`` has sent all its requests."""
        cls.wait_for(lambda: os.path.exists(p.out + '.sent') or
                  p.poll() is not None, timeout, 'client to send')

    @staticmethod
    def client_result(p, timeout=120):
        p.wait(timeout)
        with open(p.out) as f:
            return json.load(f)

    @staticmethod
    def wait_for(cond, timeout, what):
        """Poll ``cond()`` every 20 ms until it is true; raise
        :class:`LabError` naming ``what`` after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while True:
            if cond():
                return
            if time.monotonic() > end:
                raise LabError('timed out waiting for %s' % what)
            time.sleep(0.02)

    # ----------------------------------------------------------- teardown
    def destroy(self):
        for name in list(self.procs):
            p = self.procs[name]
            if p.poll() is None:
                try:  # a stopped guest must be resumed to die promptly
                    os.kill(p.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                p.kill()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        for n in self.namespaces:
            # kill anything left inside (e.g. a guest whose ip-netns-exec
            # wrapper already exited)
            pids = sh('ip', 'netns', 'pids', n, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGCONT)
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh('ip', 'netns', 'del', n, check=False)
        self.namespaces = []
