"""A real guest behind a real bridge port, for the replica data plane
(root only; used by ``tests/replica_guest`` and ``benchmarks/replica_bench.py
--real-guest``).

::

    <p>-cl (client)                 <p>-hv (hypervisor: libvirtd, agent)
      cl0 10.204.0.20/16 --veth-- cl<p> --+
                                          br<p> (Linux bridge, no address)
      guest 10.204.0.10/16 == tap ------+   (libvirt <interface type='bridge'>)

* the hypervisor is a libvirtd in its own network, mount and UTS namespaces,
  made exactly as the libvirt local stack makes one
  (:mod:`nova_netaware.deploy.localstack.libvirt.hypervisor`: holder
  process, private libvirt directories, ``virtlogd`` and ``libvirtd``);
  its management address (libvirtd's ``listen_addr``) sits on ``lo``, so
  the bridge carries no address of the hypervisor;
* the guest is the project's Debian-built image
  (:mod:`nova_netaware.deploy.localstack.libvirt.image`, direct kernel boot,
  QEMU TCG) with its counter service (:mod:`..libvirt.guest`: HTTP
  ``/cgi-bin/count`` and ``/cgi-bin/peek``); its address follows its MAC;
* the data plane runs in the hypervisor's namespaces as
  ``python -m nova_netaware.replica.lab.portctl`` (:class:`PortCtl`), on the
  guest's tap, with the ``libvirt`` cloud driver.

The client's neighbour entry for the guest is permanent: a paused guest
does not answer ARP, and the data plane answers for it (``arp_responder``)
only when it is given the guest's address (``guest_endpoint_host``); the
test of that responder deletes the entry (docs/replica.md, "Data plane at
a real guest's port").

Every name starts with a random prefix; :meth:`GuestBed.destroy` destroys
the domain, stops every process the bed started (and the QEMU its libvirtd
started) and deletes both namespaces.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

from nova_netaware.deploy.localstack.libvirt import guest as lv_guest
from nova_netaware.deploy.localstack.libvirt import hypervisor
from nova_netaware.deploy.localstack.libvirt import image
from nova_netaware.replica.errors import LabError
from nova_netaware.replica.lab.netns import InNetns, is_root, ns_socket, sh

PY = sys.executable
#: the checkout this module comes from (the port controller imports it)
_SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
NET = '10.204'
GUEST_IP = NET + '.0.10'
CLIENT_IP = NET + '.0.20'
MGMT_IP = NET + '.255.1'


def problem():
    """Why a real guest cannot run here (None if it can)."""
    if not is_root():
        return 'needs root (namespaces, libvirtd, iptables)'
    for tool in ('qemu-system-x86_64', 'libvirtd', 'virtlogd', 'virsh',
                 'iptables', 'nsenter', 'unshare'):
        if not shutil.which(tool):
            return ('%s is not installed (tools/setup.sh installs it; or '
                    'apt-get install qemu-system-x86 libvirt-daemon-system '
                    'libvirt-clients)' % tool)
    try:
        import libvirt  # noqa: F401
    except ImportError as e:
        return 'libvirt-python is missing: %s' % e
    try:
        import netfilterqueue  # noqa: F401
    except ImportError as e:
        return 'python NetfilterQueue is missing: %s' % e
    try:
        image.kernel_version()
    except image.ImageError as e:
        return str(e)
    if not os.path.exists(image.BUSYBOX):
        return '%s is missing: apt-get install busybox-static' % image.BUSYBOX
    return None


class GuestBed:

    def __init__(self, workdir, prefix=None, mem_mib=128):
        if not is_root():
            raise LabError('the guest bed needs root')
        self.p = prefix or 'g' + secrets.token_hex(2)
        self.dir = os.path.abspath(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.hv = self.p + '-hv'
        self.cl = self.p + '-cl'
        self.bridge = 'br' + self.p
        self.domain = 'nnr-' + self.p
        self.mem_mib = mem_mib
        self.guest_ip = GUEST_IP
        self.guest_mac = lv_guest.mac_for_ip(GUEST_IP)
        self.namespaces = []
        self.procs = {}
        self.holder = None
        self.tap = None
        self.timings = {}

    # ------------------------------------------------------------ build
    def _log(self, name):
        os.makedirs(os.path.join(self.dir, 'logs'), exist_ok=True)
        return os.path.join(self.dir, 'logs', name + '.log')

    def spawn(self, name, argv, env=None, **kw):
        f = open(self._log(name), 'ab')
        p = subprocess.Popen(argv, stdout=kw.pop('stdout', f), stderr=f,
                             start_new_session=True, env=env, **kw)
        f.close()
        self.procs[name] = p
        return p

    def build(self, timeout=60):
        t0 = time.monotonic()
        try:
            self._build(timeout)
        except BaseException:
            self.destroy()
            raise
        self.timings['hypervisor_up_s'] = time.monotonic() - t0

    def _build(self, timeout):
        for ns in (self.hv, self.cl):
            sh('ip', 'netns', 'add', ns)
            self.namespaces.append(ns)
        hv = ('ip', '-n', self.hv)
        sh(*hv, 'link', 'set', 'lo', 'up')
        sh('ip', '-n', self.cl, 'link', 'set', 'lo', 'up')
        sh(*hv, 'link', 'add', self.bridge, 'type', 'bridge')
        sh(*hv, 'link', 'set', self.bridge, 'up')
        # no dummy driver in this kernel: the management address is on lo
        sh(*hv, 'addr', 'add', MGMT_IP + '/32', 'dev', 'lo')
        port = 'cl' + self.p
        sh('ip', 'link', 'add', 'cl0', 'netns', self.cl, 'type', 'veth',
           'peer', 'name', port, 'netns', self.hv)
        sh(*hv, 'link', 'set', port, 'master', self.bridge, 'up')
        sh('ip', '-n', self.cl, 'addr', 'add', CLIENT_IP + '/16', 'dev',
           'cl0')
        sh('ip', '-n', self.cl, 'link', 'set', 'cl0', 'up')
        sh('ip', '-n', self.cl, 'neigh', 'replace', GUEST_IP, 'lladdr',
           self.guest_mac, 'dev', 'cl0', 'nud', 'permanent')
        root = os.path.join(self.dir, 'hv')
        mounts = hypervisor.prepare_dirs(root, self.hv, MGMT_IP)
        hp = self.spawn('holder', hypervisor.holder_argv(self.hv, self.hv,
                                                         mounts))
        self.holder = hp.pid
        self._wait(lambda: hypervisor.holder_ready(hp.pid, self.hv),
                   timeout, 'the hypervisor namespaces', hp)
        self.spawn('virtlogd', hypervisor.virtlogd_argv(hp.pid))
        lv = self.spawn('libvirtd', hypervisor.libvirtd_argv(hp.pid))
        self._wait(lambda: hypervisor.libvirtd_ready(hp.pid), timeout,
                   'libvirtd', lv, interval=0.3)

    def _wait(self, cond, timeout, what, proc=None, interval=0.1):
        deadline = time.monotonic() + timeout
        while not cond():
            if proc is not None and proc.poll() is not None:
                raise LabError('%s: process exited with %s (log in %s)'
                               % (what, proc.returncode, self.dir))
            if time.monotonic() > deadline:
                raise LabError('%s not ready after %.0f s' % (what, timeout))
            time.sleep(interval)

    def virsh(self, *args, **kw):
        return hypervisor.virsh(self.holder, *args, **kw)

    # ------------------------------------------------------------ guest
    def start_guest(self, timeout=240):
        """Define and start the domain, learn its tap, wait until its
        counter service answers. Returns the seconds to the first answer."""
        img = image.build()
        xml = hypervisor.domain_xml(self.domain, self.guest_mac, img,
                                    self.bridge, mem_mib=self.mem_mib)
        path = os.path.join(self.dir, self.domain + '.xml')
        with open(path, 'w') as f:
            f.write(xml)
        t0 = time.monotonic()
        self.virsh('define', path)
        self.virsh('start', self.domain)
        for line in self.virsh('domiflist', self.domain).splitlines():
            if self.guest_mac in line.lower():
                self.tap = line.split()[0]
        if not self.tap:
            raise LabError('no tap of %s in virsh domiflist' % self.domain)

        def up():
            try:
                return self.http('/cgi-bin/peek', timeout=2).startswith(
                    'count')
            except OSError:
                return False
        self._wait(up, timeout, 'the guest\'s counter service', interval=1)
        self.timings['guest_boot_s'] = time.monotonic() - t0
        return self.timings['guest_boot_s']

    def domain_state(self):
        return self.virsh('domstate', self.domain).strip()

    # ------------------------------------------------------------ client
    def client_socket(self, stype=socket.SOCK_STREAM, proto=0):
        """A socket in the client's namespace."""
        return ns_socket(self.cl, socket.AF_INET, stype, proto)

    def http(self, path, timeout=10.0):
        """GET ``path`` from the guest's service (from the client
        namespace); returns the body."""
        s = self.client_socket()
        with s:
            s.settimeout(timeout)
            s.connect((self.guest_ip, lv_guest.HTTP_PORT))
            s.sendall(('GET %s HTTP/1.0\r\nHost: guest\r\n\r\n'
                       % path).encode())
            data = b''
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        # httpd's status line, then the CGI's own "Header\n\nbody"
        head, _, body = data.decode('latin-1').replace(
            '\r\n', '\n').partition('\n\n')
        status = head.split('\n', 1)[0]
        if ' 200 ' not in status + ' ':
            raise OSError('guest answered %r' % status)
        return body.strip()

    def count(self):
        """One request to the counter service; returns the new count."""
        return int(self.http('/cgi-bin/count').split()[1])

    def peek(self):
        return int(self.http('/cgi-bin/peek').split()[1])

    def req(self, client, seq, timeout=10.0):
        """One numbered request ``GET /cgi-bin/req?c=&n=``; returns the
        reply line (``ok <c> <n> total <T> client <C> last <L> <how>``)."""
        return self.http('/cgi-bin/req?c=%s&n=%d' % (client, seq), timeout)

    # ------------------------------------------------------------ state
    def route_from_hv(self):
        """Let the hypervisor's namespace reach the guest, as an agent on
        the hypervisor does: a host route over the bridge from the
        management address (on ``lo``; the bridge answers the guest's ARP
        for it). The bridge itself stays without an address."""
        sh('ip', '-n', self.hv, 'route', 'replace', self.guest_ip + '/32',
           'dev', self.bridge, 'src', MGMT_IP)

    def state_driver(self, **overrides):
        """The shipped ``guest_endpoint`` state driver aimed at the guest's
        state endpoint, every call made from the hypervisor's network
        namespace (call :meth:`route_from_hv` first)."""
        from nova_netaware.replica.drivers.guest_endpoint import \
            GuestEndpointStateDriver
        from nova_netaware.replica.lab.portctl import build_conf
        opts = {'agent_id': 'state-' + self.p,
                'guest_endpoint_host': self.guest_ip,
                'guest_endpoint_port': lv_guest.STATE_PORT}
        opts.update(overrides)
        return InNetns(self.hv, GuestEndpointStateDriver(build_conf(opts)))

    # ------------------------------------------------------------ data plane
    def start_port(self, mode='pass', **overrides):
        """The data plane on the guest's tap (in the hypervisor's
        namespaces), with the libvirt cloud driver on the domain; returns a
        :class:`PortCtl`."""
        conf = {'agent_id': 'port-' + self.p, 'guest_interface': self.tap,
                'guest_mac': self.guest_mac, 'copy_name': self.domain,
                'cloud_driver': 'libvirt',
                'state_dir': os.path.join(self.dir, 'port-state'),
                'service_name': 'svc-' + self.p}
        conf.update(overrides)
        argv = hypervisor.nsenter(self.holder, PY, '-m',
                                  'nova_netaware.replica.lab.portctl',
                                  json.dumps(conf))
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            x for x in (_SRC, env.get('PYTHONPATH')) if x)
        p = self.spawn('portctl', argv, env=env, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE)
        ctl = PortCtl(p)
        ctl.call('start', mode=mode)
        return ctl

    # ------------------------------------------------------------ teardown
    def destroy(self):
        if self.holder and 'libvirtd' in self.procs and \
                self.procs['libvirtd'].poll() is None:
            try:
                hypervisor.destroy_all(self.holder)
            except (subprocess.SubprocessError, OSError):
                pass
        for name in ('portctl', 'libvirtd', 'virtlogd', 'holder'):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        for ns in self.namespaces:
            out = sh('ip', 'netns', 'pids', ns, check=False).stdout.split()
            for pid in out:  # QEMU, daemonised by this bed's libvirtd
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh('ip', 'netns', 'del', ns, check=False)
        self.namespaces = []


class PortCtl:
    """Client of :mod:`.portctl`: one JSON line per command."""

    def __init__(self, proc):
        self.proc = proc

    def call(self, op, timeout=120, **args):
        req = dict(args, op=op)
        try:
            self.proc.stdin.write((json.dumps(req) + '\n').encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise LabError('portctl exited (%s)' % self.proc.poll())
        line = self.proc.stdout.readline()
        if not line:
            raise LabError('portctl exited (%s) on %s' % (self.proc.poll(),
                                                          op))
        rep = json.loads(line)
        if not rep.get('ok'):
            raise LabError('portctl %s failed: %s' % (op, rep.get('error')))
        return rep

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call('quit')
            except LabError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
