"""The inter-cloud link of ``local-stack up --virt libvirt --clouds 2``.

Two clouds, each with its own lab (leaf-spine of namespaces, see
:mod:`.fabric`), are joined by one veth pair between their gateway
switches (``spine-1`` of each), as two sites are joined by a WAN link:

* addresses ``10.250.0.0/31`` (cloud a) and ``10.250.0.1/31`` (cloud b);
* each direction shaped with ``tbf`` to ``gbps`` (default
  :data:`DEFAULT_GBPS`; ``$NETAWARE_STACK_INTERCLOUD_GBPS``);
* routes: every switch of one cloud reaches the other cloud's underlay
  (``10.<net>.0.0/15``) through its shortest paths to its gateway switch
  (ECMP like the lab's own routes); hosts reach it by their default route.

Only the underlay is joined; each cloud's guest network stays its own L2
segment (as two Neutron deployments). The replica agents' peer channel,
and so each switchover's state, crosses this link.

State (``intercloud.json`` in cloud a's lab directory): both ends, the
shaped rate and the last measured throughput. :func:`measure` sends TCP
for ``seconds`` from a host of cloud a to a host of cloud b (real
packets through both fabrics and the link) and records Mbit/s.
:func:`cut` and :func:`restore` take the link down and up (both ends).
"""

import ipaddress
import json
import os
import subprocess
import sys
import time

import networkx as nx

from nova_netaware.deploy.exceptions import StackError
from nova_netaware.deploy.localstack.libvirt import fabric

GATEWAY = 'spine-1'
#: thinner than a host uplink (0.1), as a WAN link is: the link, not the
#: hypervisors' uplinks, is the bottleneck between the clouds
DEFAULT_GBPS = 0.05
ADDR_A = '10.250.0.0'
ADDR_B = '10.250.0.1'
IF_A = 'ic-to-b'
IF_B = 'ic-to-a'
MEASURE_PORT = 5201


class InterCloudError(StackError):
    """The link cannot be made, measured or changed; the message says why."""


def underlay(plan):
    """The underlay prefix of a lab plan: ``10.<net>.0.0/15`` (its host
    subnets and its switch links)."""
    return str(ipaddress.ip_network('10.%d.0.0/15' % plan['net']))


def _routes_to_gateway(plan, prefix):
    """``[(namespace, [(dev, via), ...])]``: each switch's next hops toward
    the gateway switch, for ``prefix``."""
    g = nx.Graph()
    ends = {}
    for link in plan['links']:
        g.add_edge(link['a'], link['b'])
        ends[(link['a'], link['b'])] = (link['a_if'], link['b_ip'])
        ends[(link['b'], link['a'])] = (link['b_if'], link['a_ip'])
    dist = nx.single_source_shortest_path_length(g, GATEWAY)
    out = []
    for name, sw in sorted(plan['switches'].items()):
        if name == GATEWAY or name not in dist:
            continue
        hops = sorted(ends[(name, peer)] for peer in g[name]
                      if dist[peer] == dist[name] - 1)
        out.append((sw['ns'], hops))
    return out


def commands(plan_a, plan_b, gbps=DEFAULT_GBPS):
    """The argv lists that make the link and its routes (no side effect)."""
    ns_a = plan_a['switches'][GATEWAY]['ns']
    ns_b = plan_b['switches'][GATEWAY]['ns']
    cmds = [['ip', 'link', 'add', IF_A, 'netns', ns_a, 'mtu',
             str(fabric.UNDERLAY_MTU), 'type', 'veth', 'peer', 'name', IF_B,
             'netns', ns_b, 'mtu', str(fabric.UNDERLAY_MTU)]]
    for ns, dev, ip, via, far in ((ns_a, IF_A, ADDR_A, ADDR_B, plan_b),
                                  (ns_b, IF_B, ADDR_B, ADDR_A, plan_a)):
        cmds += [['ip', '-n', ns, 'addr', 'add', ip + '/31', 'dev', dev],
                 ['ip', '-n', ns, 'link', 'set', dev, 'up'],
                 ['ip', 'netns', 'exec', ns] + fabric.tbf(dev, gbps),
                 ['ip', '-n', ns, 'route', 'replace', underlay(far), 'via',
                  via, 'dev', dev]]
    for near, far in ((plan_a, plan_b), (plan_b, plan_a)):
        for ns, hops in _routes_to_gateway(near, underlay(far)):
            route = ['ip', '-n', ns, 'route', 'replace', underlay(far)]
            for dev, via in hops:
                route += ['nexthop', 'via', via, 'dev', dev]
            cmds.append(route)
    return cmds


def _run(argv, log=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if log:
        with open(log, 'a') as f:
            f.write('$ %s\n%s%s' % (' '.join(argv), r.stdout, r.stderr))
    if r.returncode != 0:
        raise InterCloudError('%s: %s' % (' '.join(argv),
                                          (r.stderr or r.stdout).strip()))
    return r.stdout


class Link(object):
    """The link between two labs (their :class:`.lab.Lab` objects)."""

    def __init__(self, lab_a, lab_b=None):
        self.lab_a = lab_a
        self.lab_b = lab_b
        self.file = os.path.join(lab_a.s.state_dir, 'intercloud.json')

    def state(self):
        try:
            with open(self.file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _save(self, st):
        tmp = self.file + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(st, f, indent=1)
        os.replace(tmp, self.file)

    def make(self, gbps=None):
        gbps = float(gbps or os.environ.get('NETAWARE_STACK_INTERCLOUD_GBPS')
                     or DEFAULT_GBPS)
        pa, pb = self.lab_a.plan, self.lab_b.plan
        log = self.lab_a.s.log('intercloud')
        for argv in commands(pa, pb, gbps):
            _run(argv, log)
        st = {'a': {'ns': pa['switches'][GATEWAY]['ns'], 'if': IF_A,
                    'ip': ADDR_A, 'underlay': underlay(pa)},
              'b': {'ns': pb['switches'][GATEWAY]['ns'], 'if': IF_B,
                    'ip': ADDR_B, 'underlay': underlay(pb)},
              'gbps': gbps, 'up': True}
        self._save(st)
        return st

    def _set(self, updown):
        st = self.state()
        if not st:
            raise InterCloudError('no inter-cloud link (up --clouds 2 '
                                  'makes it)')
        for end in ('a', 'b'):
            _run(['ip', '-n', st[end]['ns'], 'link', 'set', st[end]['if'],
                  updown])
        if updown == 'up':
            # the kernel deleted the routes through the link when it went
            # down: each gateway's route to the far underlay again
            for end, far in (('a', 'b'), ('b', 'a')):
                _run(['ip', '-n', st[end]['ns'], 'route', 'replace',
                      st[far]['underlay'], 'via', st[far]['ip'], 'dev',
                      st[end]['if']])
        st['up'] = updown == 'up'
        self._save(st)
        return st

    def cut(self):
        """Take both ends down: nothing crosses between the clouds."""
        return self._set('down')

    def restore(self):
        return self._set('up')

    def measure(self, src_ns, dst_ns, dst_ip, seconds=2.0):
        """TCP throughput, Mbit/s, from namespace ``src_ns`` to ``dst_ip``
        (in ``dst_ns``), through the link; recorded in the state file."""
        sink = subprocess.Popen(
            ['ip', 'netns', 'exec', dst_ns, sys.executable, '-c', _SINK,
             dst_ip, str(MEASURE_PORT)], stdout=subprocess.PIPE, text=True)
        try:
            sink.stdout.readline()   # "ready"
            out = _run(['ip', 'netns', 'exec', src_ns, sys.executable, '-c',
                        _SOURCE, dst_ip, str(MEASURE_PORT), str(seconds)])
            sent = json.loads(out)
            got = json.loads(sink.stdout.readline())
        finally:
            sink.kill()
            sink.wait()
        mbps = got['bytes'] * 8 / got['seconds'] / 1e6
        st = self.state()
        st['measured'] = {'mbit_s': round(mbps, 2), 'bytes': got['bytes'],
                          'seconds': round(got['seconds'], 3),
                          'from': src_ns, 'to': dst_ip,
                          'sent_bytes': sent['bytes'],
                          'at': time.strftime('%Y-%m-%dT%H:%M:%S')}
        self._save(st)
        return st['measured']


# the receiver: accepts one connection, counts bytes from the first to the
# last byte received (the receiver's view, not the sender's buffer)
_SINK = r'''
import json, socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("ready", flush=True)
c, _ = s.accept(); n = 0; t0 = None
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    if t0 is None:
        t0 = time.monotonic()
    n += len(b); t1 = time.monotonic()
print(json.dumps({"bytes": n, "seconds": (t1 - t0) if t0 else 0}), flush=True)
'''

_SOURCE = r'''
import json, socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
buf = b"\0" * (1 << 16); n = 0; end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    n += c.send(buf)
c.close()
print(json.dumps({"bytes": n}))
'''
