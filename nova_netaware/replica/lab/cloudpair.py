"""A replica pair across the two clouds of ``local-stack up --virt libvirt
--clouds 2``: the test bed of the two-cloud end-to-end test and of
``replica_bench.py --two-clouds``.

* :meth:`CloudPair.boot` a server in a cloud (the lab guest image);
* :meth:`CloudPair.replicate`: the real ``nova-netaware-replica-agent
  replicate`` command, run on the replica's hypervisor (in its network,
  mount and UTS namespaces, where the agent runs: it pauses the replica
  through its libvirtd, and both clouds' APIs are reachable there);
* :meth:`CloudPair.start_agent` runs ``nova-netaware-replica-agent run``
  on a copy's hypervisor with the pair file ``replicate`` wrote, plus a
  per-side file for what two agents on one machine must not share
  (state directory, control socket); :meth:`CloudPair.kill_agent`;
* :class:`Domains` reads both copies' domain states from their libvirtds
  in one process (each libvirtd's socket through ``/proc/<holder>/root``),
  about a millisecond per read, for sampling "exactly one running";
* :class:`Client`: numbered requests (``/cgi-bin/req?c=ID&n=SEQ``, see
  :mod:`nova_netaware.deploy.localstack.libvirt.guest`) from a host
  namespace of one cloud to that cloud's copy, one at a time, each
  retried with the same number until it is answered.
"""

import json
import os
import subprocess
import sys
import threading
import time

from nova_netaware.deploy.localstack import settings as ls_settings
from nova_netaware.deploy.localstack import twoclouds
from nova_netaware.deploy.localstack.libvirt import hypervisor
from nova_netaware.deploy.localstack.libvirt import lab as lablib
from nova_netaware.deploy.localstack.libvirt import novastack

SIDES = ('a', 'b')
CLOUDS = {'a': twoclouds.CLOUD_A, 'b': twoclouds.CLOUD_B}
ROLE = {'a': 'active', 'b': 'standby'}


def _pythonpath():
    root = ls_settings.PKG_ROOT
    return os.pathsep.join(x for x in (root, os.environ.get('PYTHONPATH'))
                           if x)


class CloudPair(object):

    def __init__(self, state_dir, workdir):
        self.s = {'a': ls_settings.Settings(state_dir, virt='libvirt')}
        self.s['b'] = twoclouds.settings_b(self.s['a'])
        self.labs = {k: lablib.Lab(novastack.lab_settings(s))
                     for k, s in self.s.items()}
        self.clouds_yaml = self.s['a'].clouds_yaml
        self.workdir = workdir
        self.link = twoclouds.link(self.s['a'], self.s['b'])
        self.conn = {k: self._connect(CLOUDS[k]) for k in SIDES}
        self.agents = {}
        self.pair = None
        self.local_opts = {}   # more [replica] options for both agents

    def _connect(self, cloud):
        import openstack.config
        import openstack.connection
        region = openstack.config.OpenStackConfig(
            config_files=[self.clouds_yaml]).get_one(cloud=cloud)
        return openstack.connection.Connection(config=region)

    def env(self):
        return dict(os.environ, PYTHONPATH=_pythonpath(),
                    OS_CLIENT_CONFIG_FILE=self.clouds_yaml)

    def holder(self, side, host):
        return self.labs[side].holder(host)

    def ns(self, side, host):
        return self.labs[side].plan['hosts'][host]['ns']

    # -- servers ----------------------------------------------------------

    def boot(self, side, name, host, timeout=600, image=None):
        conn = self.conn[side]
        image = conn.image.find_image(image or novastack.IMAGE)
        flavor = conn.compute.find_flavor(novastack.FLAVOR)
        net = conn.network.find_network('guests')
        server = conn.compute.create_server(
            name=name, image_id=image.id, flavor_id=flavor.id,
            networks=[{'uuid': net.id}], availability_zone='nova:' + host)
        try:
            return server.id, self._wait_booted(side, server, host, timeout)
        except BaseException:
            # the caller never learns the server's id: delete it here, or
            # a failed boot leaves a running guest behind
            conn.compute.delete_server(server, ignore_missing=True)
            raise

    def _wait_booted(self, side, server, host, timeout):
        """``server`` ACTIVE and its guest's service answering; its
        address."""
        conn = self.conn[side]
        # 1 s, not openstacksdk's 2 s: a poll every 2 s can meet the
        # local stack's gunicorn closing the idle connection (keep-alive
        # 2 s) and fail with RemoteDisconnected (docs/local-stack.md)
        server = conn.compute.wait_for_server(server, interval=1,
                                              wait=timeout)
        ip = list(server.addresses.values())[0][0]['addr']
        # ACTIVE is before the guest has booted: wait for its service
        from nova_netaware.deploy.localstack.libvirt import ops
        deadline = time.monotonic() + timeout
        while ops.guest_get(self.labs[side], host, ip, '/cgi-bin/peek',
                            2) is None:
            if time.monotonic() > deadline:
                raise TimeoutError('%s (%s) never answered'
                                   % (server.name, ip))
            time.sleep(0.5)
        return ip

    def replicate(self, server, host_b, service, timeout=900, extra=()):
        """``replicate --from cloud-a:SERVER --to cloud-b`` on ``host_b``'s
        namespaces, libvirt fast path. Returns (exit code, result or
        None, stderr)."""
        argv = [sys.executable, '-m', 'nova_netaware.replica.cmd',
                'replicate', '--from', '%s:%s' % (CLOUDS['a'], server),
                '--to', CLOUDS['b'], '--config-dir',
                os.path.join(self.workdir, 'pair'),
                '--os-config-file', self.clouds_yaml, '--host', host_b,
                '--service-name', service, '--pause-control', 'libvirt',
                '--coordination-url', ls_settings.REDIS_URL] + list(extra)
        res = subprocess.run(hypervisor.nsenter(
            self.holder('b', host_b), *argv), capture_output=True,
            text=True, timeout=timeout, env=self.env())
        out = json.loads(res.stdout) if res.returncode == 0 else None
        if out:
            self.pair = out
        return res.returncode, out, res.stderr

    def power_state(self, side, server_id):
        s = self.conn[side].compute.get_server(server_id)
        return s.power_state, s.status

    # -- agents -----------------------------------------------------------

    def pair_file(self, side):
        return self.pair['config'][ROLE[side]]

    def host_of(self, side):
        key = 'source' if side == 'a' else 'replica'
        return self.pair[key]['host']

    def local_file(self, side, **opts):
        """The per-side file: state directory and control socket (two
        agents on one machine), the clouds.yaml."""
        d = os.path.join(self.workdir, 'agent-' + side)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, 'local.conf')
        values = {'state_dir': os.path.join(d, 'state'),
                  'control_socket': os.path.join(d, 'ctl.sock'),
                  'openstack_config_file': self.clouds_yaml}
        values.update(self.local_opts)
        values.update(opts)
        with open(path, 'w') as f:
            f.write('[replica]\n' + ''.join('%s = %s\n' % kv
                                            for kv in values.items()))
        return path

    def argv(self, side, *command):
        return [sys.executable, '-m', 'nova_netaware.replica.cmd',
                '--config-file', self.pair_file(side), '--config-file',
                self.local_file(side)] + list(command)

    def start_agent(self, side, timeout=120):
        """Start the side's agent; returns its "ready" line. Its output
        (oslo.log goes to stdout) is appended to ``agent-<side>.log``."""
        path = os.path.join(self.workdir, 'agent-%s.log' % side)
        proc = subprocess.Popen(hypervisor.nsenter(
            self.holder(side, self.host_of(side)),
            *self.argv(side, 'run')), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=self.env())
        ready = threading.Event()
        box = []

        def pump():
            with open(path, 'a') as log:
                for line in proc.stdout:
                    log.write(line)
                    log.flush()
                    if not box and ' ready: ' in line:
                        box.append(line.strip())
                        ready.set()
            ready.set()
        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or not box:
            proc.kill()
            raise RuntimeError('agent %s did not start; log %s'
                               % (side, path))
        self.agents[side] = proc
        return box[0]

    def kill_agent(self, side, sig=9):
        proc = self.agents.pop(side)
        proc.send_signal(sig)
        proc.wait(30)
        return proc.returncode

    def stop_agents(self):
        for side in list(self.agents):
            self.kill_agent(side, 15)

    def call(self, side, command, timeout=120):
        """``status`` or ``switchover`` through the agent's control socket
        (the real CLI); the reply's ``status`` / ``result`` part."""
        res = subprocess.run(self.argv(side, command), capture_output=True,
                             text=True, timeout=timeout, env=self.env())
        try:
            out = json.loads(res.stdout)
        except ValueError:
            raise RuntimeError('%s %s: exit %d: %s' % (
                side, command, res.returncode, res.stderr.strip()[-2000:]))
        return out.get('status', out)

    def domains(self):
        names = {side: self.pair[key]['domain']
                 for side, key in (('a', 'source'), ('b', 'replica'))}
        return Domains({side: (self.holder(side, self.host_of(side)),
                               names[side]) for side in SIDES})


class Domains(object):
    """Both copies' libvirt domain states, read in one process."""

    def __init__(self, where):
        import libvirt
        self.doms, self.uris = {}, {}
        for side, (holder, name) in where.items():
            uri = self.uris[side] = (
                'qemu:///system?socket=/proc/%d/root/run/libvirt/'
                'libvirt-sock' % holder)
            self.doms[side] = libvirt.open(uri).lookupByName(name)

    def running(self, side):
        import libvirt
        return self.doms[side].state()[0] == libvirt.VIR_DOMAIN_RUNNING

    def sample(self):
        """``(a running, b running, a running again)``: A is read before
        and after B, so two copies are proved running at once only when
        A runs at both reads and B at the read between them."""
        a1 = self.running('a')
        b = self.running('b')
        a2 = self.running('a')
        return a1, b, a2


class Sampler(threading.Thread):
    """Samples :class:`Domains` every ``interval`` s until stopped."""

    def __init__(self, domains, interval=0.002):
        super().__init__(daemon=True)
        self.domains = domains
        self.interval = interval
        self.samples = 0
        self.both = []       # times at which both ran
        self.none = 0        # samples with neither running
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            a1, b, a2 = self.domains.sample()
            self.samples += 1
            if a1 and b and a2:
                self.both.append(time.time())
            elif not (a1 or b or a2):
                self.none += 1
            time.sleep(self.interval)

    def stop(self):
        self.halt.set()
        self.join(10)


_CLIENT = r'''
import json, socket, sys, time
ip, cid, n, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
for seq in range(1, n + 1):
    t0 = time.time(); tries = 0
    while True:
        tries += 1
        try:
            s = socket.create_connection((ip, 80), timeout=300)
            s.settimeout(300)
            s.sendall(("GET /cgi-bin/req?c=%s&n=%d HTTP/1.0\r\nHost: x\r\n\r\n"
                       % (cid, seq)).encode())
            body = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                body += b
            s.close()
            # the service answers one line: the last line of the response
            # (busybox httpd ends the CGI's headers with a bare newline)
            lines = [l for l in body.decode(errors="replace").splitlines()
                     if l.strip()]
            text = lines[-1] if lines and body.startswith(b"HTTP/") and \
                b" 200 " in body.split(b"\n", 1)[0] else ""
            if text.strip():
                break
        except OSError as e:
            err = str(e)
        time.sleep(0.2)
    print(json.dumps({"seq": seq, "t0": t0, "t1": time.time(),
                      "tries": tries, "reply": text.strip()}), flush=True)
    time.sleep(gap)
'''


def pin_arp(ns, ip):
    """A permanent neighbour entry for the guest ``ip`` in a client host's
    namespace. In a cloud, Neutron's ARP responder (l2population) answers
    for a port's fixed IP whether its VM runs or not; the lab has no such
    responder, and a paused copy answers no ARP, so without this a client
    of the paused side could not even send the traffic its hypervisor is
    to buffer. The MAC is the port's (the lab derives it from the IP)."""
    from nova_netaware.deploy.localstack.libvirt import fabric
    from nova_netaware.deploy.localstack.libvirt import guest
    subprocess.run(['ip', '-n', ns, 'neigh', 'replace', ip, 'lladdr',
                    guest.mac_for_ip(ip), 'dev', fabric.GUEST_BRIDGE, 'nud',
                    'permanent'], check=True)


def forget_arp(ns, ip):
    """Delete a client host's neighbour entry for the guest ``ip``
    (pinned or learnt): its next packet to the copy needs an ARP answer,
    which for a paused copy only the agent's ``arp_responder`` gives."""
    from nova_netaware.deploy.localstack.libvirt import fabric
    subprocess.run(['ip', '-n', ns, 'neigh', 'del', ip, 'dev',
                    fabric.GUEST_BRIDGE], check=False, capture_output=True)


class Client(object):
    """Numbered requests from ``ns`` to ``ip``, one at a time; ``pin``:
    :func:`pin_arp` first."""

    def __init__(self, ns, ip, cid, n, gap=0.05, pin=True):
        if pin:
            pin_arp(ns, ip)
        self.cid = cid
        self.proc = subprocess.Popen(
            ['ip', 'netns', 'exec', ns, sys.executable, '-c', _CLIENT, ip,
             cid, str(n), str(gap)], stdout=subprocess.PIPE, text=True)
        self.replies = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.replies.append(json.loads(line))

    def wait(self, timeout):
        self.proc.wait(timeout)
        self.reader.join(10)
        return self.replies

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
