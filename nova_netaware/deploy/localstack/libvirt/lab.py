"""Bring the libvirt lab up and down: namespaces, fabric, hypervisors.

State (``<stack state dir>/libvirt`` unless given):

* ``lab.json``: the topology, the plan, the namespaces this lab created
  and the holder pid of each host, written *before* each thing is made so
  that ``down`` can undo a half-made lab;
* ``procs.json``: the processes started (the stack's :class:`Procs`);
* ``logs/``, ``hosts/<host>/``: logs and private libvirt and ssh
  directories; ``ssh/``: the lab's key pair (hosts copy disks over ssh).

``down`` destroys the domains of each hypervisor, stops the recorded
processes, kills what is left inside the lab's namespaces (the QEMU
processes libvirtd daemonised) and deletes the namespaces, which removes
every veth, bridge and VXLAN device in them. Nothing else is touched.
"""

import json
import os
import shutil
import subprocess
import time

from nova_netaware.core.exceptions import NetawareError
from nova_netaware.core.topology import leaf_spine
from nova_netaware.deploy.localstack.libvirt import fabric
from nova_netaware.deploy.localstack.libvirt import hypervisor
from nova_netaware.deploy.localstack.libvirt import image
from nova_netaware.deploy.localstack import processes
from nova_netaware.deploy.localstack import settings


class LabError(NetawareError):
    """The lab cannot be brought up or down; the message says why."""


#: the lab host whose uplink is thin: 5 Mbit/s, shaped with tbf like every
#: link. A chatty guest's traffic does not fit it, so the plugin refuses it
#: for a physical reason (the demo and tests/libvirt_e2e show that).
THIN_HOST = 'lvcmp2'
THIN_UPLINK_GBPS = 0.005


def default_topology(hosts=4, uplink_gbps=0.1, fabric_gbps=0.4,
                     thin=((THIN_HOST, THIN_UPLINK_GBPS),),
                     host_prefix=settings.LIBVIRT_HOST_PREFIX):
    """Two spines, two leaves, ``hosts`` hosts spread over the leaves
    (leaf-1 gets the odd one). Capacities are small on purpose: guests
    under TCG can fill a 100 Mbit/s uplink. The hosts named in ``thin``
    get that uplink capacity instead."""
    per_leaf = -(-hosts // 2)
    topo = leaf_spine(2, 2, per_leaf, uplink_gbps=uplink_gbps,
                      fabric_gbps=fabric_gbps,
                      host_prefix=host_prefix)
    topo['hosts'] = topo['hosts'][:hosts]
    for h in topo['hosts']:
        h['uplink_gbps'] = dict(thin).get(h['name'], h['uplink_gbps'])
    return topo


class LabSettings(object):
    """Paths of the lab; duck-types what :class:`processes.Procs` needs."""

    def __init__(self, state_dir=None, logs=None):
        if state_dir is None:
            state_dir = settings.Settings(virt='libvirt').lab_dir
        self.state_dir = os.path.abspath(state_dir)
        self.logs = logs or os.path.join(self.state_dir, 'logs')
        self.procs_file = os.path.join(self.state_dir, 'procs.json')
        self.lab_file = os.path.join(self.state_dir, 'lab.json')
        #: the instances directory: the same path on every host, bind-
        #: mounted from hosts/<host>/instances in the host's mount namespace
        self.instances = os.path.join(self.state_dir, 'instances')

    def log(self, name):
        return os.path.join(self.logs, name + '.log')

    def host_dir(self, host):
        return os.path.join(self.state_dir, 'hosts', host)


class Lab(object):
    def __init__(self, settings=None):
        self.s = settings or LabSettings()
        self.state = {}
        if os.path.exists(self.s.lab_file):
            with open(self.s.lab_file) as f:
                self.state = json.load(f)

    def save(self):
        processes.write_json(self.s.lab_file, self.state, indent=1)

    def procs(self):
        return processes.Procs(self.s)

    def holder(self, host):
        return self.state['holders'][host]

    @property
    def plan(self):
        return self.state['plan']

    # -- up ---------------------------------------------------------------

    def up(self, topo=None, timeout=60, ns_prefix=fabric.NS_PREFIX, net=0):
        if self.state.get('namespaces'):
            raise LabError('the lab is already up (or half up): run down '
                           'first (state %s)' % self.s.lab_file)
        t0 = time.monotonic()
        os.makedirs(self.s.state_dir, exist_ok=True)
        os.makedirs(self.s.logs, exist_ok=True)
        topo = topo or default_topology()
        plan = fabric.plan(topo, ns_prefix=ns_prefix, net=net)
        existing = set(subprocess.run(['ip', 'netns', 'list'],
                                      capture_output=True, text=True)
                       .stdout.split())
        clash = sorted(set(fabric.namespaces(plan)) & existing)
        if clash:
            raise LabError('namespaces already exist: %s' % ', '.join(clash))
        self.state = {'topology': topo, 'plan': _jsonable(plan),
                      'namespaces': [], 'holders': {},
                      'image': image.build()}
        self.save()
        try:
            self._up(plan, timeout)
        except BaseException:
            processes.say('lab start failed: taking down what was made')
            self.down()
            raise
        self.state['up_seconds'] = round(time.monotonic() - t0, 1)
        self.save()
        processes.say('libvirt lab up in %.1f s: %s' % (
            self.state['up_seconds'], ', '.join(sorted(plan['hosts']))))
        return self.state

    def _up(self, plan, timeout):
        log = self.s.log('fabric')
        for ns in fabric.namespaces(plan):
            self.state['namespaces'].append(ns)
            self.save()
            processes.run(['ip', 'netns', 'add', ns], log, timeout=60)
        for argv in fabric.commands(plan):
            processes.run(argv, log, timeout=60)
        processes.say('fabric: %d namespaces, %d fabric links, shaped with tbf'
                  % (len(self.state['namespaces']), len(plan['links'])))
        procs = self.procs()
        key = hypervisor.lab_key(os.path.join(self.s.state_dir, 'ssh'))
        for host, h in sorted(plan['hosts'].items()):
            mounts = hypervisor.prepare_dirs(self.s.host_dir(host), host,
                                             h['ip'])
            # one path, private content per host (as on separate machines)
            private = os.path.join(self.s.host_dir(host), 'instances')
            os.makedirs(private, exist_ok=True)
            os.makedirs(self.s.instances, exist_ok=True)
            mounts[self.s.instances] = private
            mounts['/etc/hosts'] = self._hosts_file(plan)
            mounts.update(hypervisor.prepare_ssh(
                self.s.host_dir(host), h['ip'], *key))
            rec = procs.start('holder-' + host,
                              hypervisor.holder_argv(h['ns'], host, mounts))
            self.state['holders'][host] = rec['pid']
            self.save()
            processes.wait_for('namespaces of ' + host,
                           lambda: hypervisor.holder_ready(rec['pid'], host),
                           timeout, proc=rec)
        for host in sorted(plan['hosts']):
            pid = self.holder(host)
            procs.start('virtlogd-' + host, hypervisor.virtlogd_argv(pid))
            procs.start('sshd-' + host, hypervisor.sshd_argv(
                pid, self.s.host_dir(host)))
            rec = procs.start('libvirtd-' + host,
                              hypervisor.libvirtd_argv(pid))
            processes.wait_for('libvirtd on ' + host,
                           lambda: hypervisor.libvirtd_ready(pid), timeout,
                           interval=0.5, proc=rec)
        processes.say('libvirtd answers on %d hypervisors' % len(plan['hosts']))

    def _hosts_file(self, plan):
        """/etc/hosts of every lab host: the hosts' names resolve to their
        underlay addresses. Without it libvirt's hostname lookup
        (getaddrinfo of the unresolvable host name, DNS unreachable from
        the namespace) waited for the resolver's 5 s timeout in the
        switch-over of every live migration: 5.2-5.5 s of downtime."""
        path = os.path.join(self.s.state_dir, 'hosts.txt')
        lines = ['127.0.0.1 localhost']
        lines += ['%s %s' % (h['ip'], name)
                  for name, h in sorted(plan['hosts'].items())]
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        return path

    # -- down -------------------------------------------------------------

    def down(self):
        if not self.state.get('namespaces') and not self.procs().records:
            processes.say('the libvirt lab is not up')
            return []
        procs = self.procs()
        alive = {r['name'] for r in procs.alive()}
        for host, pid in sorted(self.state.get('holders', {}).items()):
            if 'libvirtd-' + host in alive:
                names = hypervisor.destroy_all(pid)
                if names:
                    processes.say('%s: destroyed %s' % (host, ', '.join(names)))
        stopped = procs.stop_all(timeout=20)
        existing = set(subprocess.run(['ip', 'netns', 'list'],
                                      capture_output=True, text=True)
                       .stdout.split())
        for ns in self.state.get('namespaces', []):
            if ns not in existing:
                continue
            _kill_ns_pids(ns)
            subprocess.run(['ip', 'netns', 'del', ns], check=False)
        gone = list(self.state.get('namespaces', []))
        self.state = {}
        if os.path.exists(self.s.lab_file):
            os.remove(self.s.lab_file)
        for sub in ('hosts', 'ssh'):
            shutil.rmtree(os.path.join(self.s.state_dir, sub),
                          ignore_errors=True)
        processes.say('libvirt lab down: %d processes stopped, namespaces %s '
                  'deleted' % (len(stopped), ', '.join(gone)))
        return gone


def _kill_ns_pids(ns, timeout=10):
    """Stop what still runs inside a lab namespace (QEMU processes that
    libvirtd daemonised): TERM, then KILL."""
    def pids():
        out = subprocess.run(['ip', 'netns', 'pids', ns],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]
    for sig in ('TERM', 'KILL'):
        left = pids()
        if not left:
            return
        subprocess.run(['kill', '-' + sig] + [str(p) for p in left],
                       check=False, capture_output=True)
        deadline = time.monotonic() + timeout
        while pids() and time.monotonic() < deadline:
            time.sleep(0.2)


def _jsonable(plan):
    return json.loads(json.dumps(plan, default=sorted))
