"""The lab's network: a leaf-spine (any switch graph) of network namespaces
joined by veth links, built from a topology dict in the plugin's topology
file format (:mod:`nova_netaware.core.topology`).

Design (see docs/libvirt.md for the reasons):

* **Underlay, routed (L3).** Every switch is a namespace that routes
  (``ip_forward=1``). The hosts of a switch share a Linux bridge
  ``br-hosts`` in it (address ``10.0.<k>.254/24``, k = the switch's index);
  host j on it has ``10.0.<k>.<j+1>`` on its uplink ``up0``, default route
  via the switch. Switch-to-switch links are /31s from ``10.1.0.0/16``.
  Each switch has a static route to every other switch's host subnet, with
  one next hop per neighbour on a shortest path (ECMP, hashed on L4 ports).
* **Overlay, one L2 segment for guests** (as Neutron's VXLAN networks):
  each host has a bridge ``br-guests`` with a VXLAN port (VNI 100, UDP
  4789) that floods to every other host's underlay address (head-end
  replication) and learns MACs, so a migrated guest keeps its address and
  its gratuitous announcement re-teaches the bridges. Each host also has
  ``10.100.255.<n>/16`` on ``br-guests`` to reach guests.
* **Shaping.** Each direction of every host uplink and fabric link gets a
  ``tbf`` qdisc at the capacity the topology gives it (``uplink_gbps``,
  ``gbps``); netem does not exist in this kernel, so there is no delay.
"""

import ipaddress

import networkx as nx

NS_PREFIX = 'nvl-'
GUEST_NET = ipaddress.ip_network('10.100.0.0/16')
GUEST_BRIDGE = 'br-guests'
VXLAN_DEV = 'vx-guests'
VNI = 100
UNDERLAY_MTU = 1600


def ns_name(node, prefix=NS_PREFIX):
    return prefix + node


def _ifname(prefix, peer, taken):
    name = (prefix + peer)[:15]
    i = 0
    while name in taken:
        i += 1
        name = ('%s%d' % (prefix, i))[:15]
    taken.add(name)
    return name


def tbf(dev, gbps):
    """The tc command that shapes ``dev``'s egress to ``gbps``.

    tbf needs a bucket of at least one maximum-size (GSO) packet; 1 ms of
    traffic at the rate, but never below 64 kB, keeps it accurate at the
    lab's rates (tens to hundreds of Mbit/s).
    """
    bits = float(gbps) * 1e9
    burst = max(65536, int(bits / 8 / 1000))
    return ['tc', 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate',
            '%dkbit' % int(bits / 1000), 'burst', str(burst), 'latency',
            '50ms']


def plan(topo, ns_prefix=NS_PREFIX, net=0):
    """The lab network for a topology dict: plain data, no side effects.

    ``ns_prefix`` names the namespaces; ``net`` is the underlay's second
    octet: host subnets ``10.<net>.<k>.0/24``, switch links in
    ``10.<net + 1>.0.0/16`` (a second cloud on the machine uses others).

    Returns ``{'switches': {name: {...}}, 'hosts': {name: {...}},
    'links': [...]}`` with namespaces, interface names, addresses, routes
    and shaping.
    """
    sw_names = [s['name'] for s in topo['switches']]
    switches = {}
    for k, name in enumerate(sw_names, start=1):
        switches[name] = {'ns': ns_name(name, ns_prefix), 'index': k, 'ifaces': set(),
                          'subnet': None, 'links': [], 'routes': {},
                          'hosts': []}
    hosts = {}
    n = 0
    for h in topo['hosts']:
        sw = switches[h['switch']]
        if sw['subnet'] is None:
            sw['subnet'] = '10.%d.%d.0/24' % (net, sw['index'])
            sw['gateway'] = '10.%d.%d.254' % (net, sw['index'])
        n += 1
        j = len(sw['hosts']) + 1
        leaf_if = _ifname('h-', h['name'], sw['ifaces'])
        hosts[h['name']] = {
            'ns': ns_name(h['name'], ns_prefix), 'index': n,
            'switch': h['switch'],
            'ip': '10.%d.%d.%d' % (net, sw['index'], j), 'prefix': 24,
            'gateway': sw['gateway'],
            'uplink': 'up0', 'leaf_if': leaf_if,
            'gbps': float(h.get('uplink_gbps', 10)),
            'guest_ip': str(GUEST_NET.network_address + 0xff00 + n)}
        sw['hosts'].append(h['name'])
    links = []
    g = nx.Graph()
    g.add_nodes_from(sw_names)
    for i, link in enumerate(topo.get('links', [])):
        a, b = link['a'], link['b']
        base = ipaddress.ip_address('10.%d.0.0' % (net + 1)) + 2 * i
        a_if = _ifname('to-', b, switches[a]['ifaces'])
        b_if = _ifname('to-', a, switches[b]['ifaces'])
        rec = {'a': a, 'b': b, 'a_if': a_if, 'b_if': b_if,
               'a_ip': str(base), 'b_ip': str(base + 1),
               'gbps': float(link.get('gbps', 100))}
        links.append(rec)
        switches[a]['links'].append((a_if, str(base + 1), b))
        switches[b]['links'].append((b_if, str(base), a))
        g.add_edge(a, b)
    dist = dict(nx.all_pairs_shortest_path_length(g))
    for name, sw in switches.items():
        for other, osw in switches.items():
            if other == name or osw['subnet'] is None:
                continue
            d = dist[name].get(other)
            if d is None:
                continue
            sw['routes'][osw['subnet']] = sorted(
                (dev, via) for dev, via, peer in sw['links']
                if dist[peer].get(other) == d - 1)
    for sw in switches.values():
        sw['ifaces'] = sorted(sw['ifaces'])
    return {'switches': switches, 'hosts': hosts, 'links': links,
            'net': net, 'ns_prefix': ns_prefix}


def namespaces(p):
    return ([s['ns'] for s in p['switches'].values()]
            + [h['ns'] for h in p['hosts'].values()])


def commands(p):
    """The ordered commands (argv lists) that build the planned network in
    existing, empty namespaces."""
    cmds = []

    def nsx(ns, *argv):
        cmds.append(['ip', 'netns', 'exec', ns] + list(argv))

    for ns in namespaces(p):
        cmds.append(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
    for sw in p['switches'].values():
        nsx(sw['ns'], 'sysctl', '-qw', 'net.ipv4.ip_forward=1',
            'net.ipv4.fib_multipath_hash_policy=1')
    for name, sw in p['switches'].items():
        if sw['subnet']:
            ns = sw['ns']
            cmds.append(['ip', '-n', ns, 'link', 'add', 'br-hosts', 'mtu',
                         str(UNDERLAY_MTU), 'type', 'bridge'])
            cmds.append(['ip', '-n', ns, 'addr', 'add', sw['gateway'] + '/24',
                         'dev', 'br-hosts'])
            cmds.append(['ip', '-n', ns, 'link', 'set', 'br-hosts', 'up'])
    for link in p['links']:
        a = p['switches'][link['a']]['ns']
        b = p['switches'][link['b']]['ns']
        cmds.append(['ip', 'link', 'add', link['a_if'], 'netns', a, 'mtu',
                     str(UNDERLAY_MTU), 'type', 'veth', 'peer', 'name',
                     link['b_if'], 'netns', b, 'mtu', str(UNDERLAY_MTU)])
        for ns, dev, ip in ((a, link['a_if'], link['a_ip']),
                            (b, link['b_if'], link['b_ip'])):
            cmds.append(['ip', '-n', ns, 'addr', 'add', ip + '/31', 'dev',
                         dev])
            cmds.append(['ip', '-n', ns, 'link', 'set', dev, 'up'])
            nsx(ns, *tbf(dev, link['gbps']))
    for name, h in p['hosts'].items():
        cmds.extend(_host_commands(p, name, h))
    for sw in p['switches'].values():
        for subnet, hops in sorted(sw['routes'].items()):
            if not hops:
                continue
            route = ['ip', '-n', sw['ns'], 'route', 'replace', subnet]
            for dev, via in hops:
                route += ['nexthop', 'via', via, 'dev', dev]
            cmds.append(route)
    return cmds


def _host_commands(p, name, h):
    sw = p['switches'][h['switch']]
    ns, leaf = h['ns'], sw['ns']
    cmds = [
        ['ip', 'link', 'add', h['uplink'], 'netns', ns, 'mtu',
         str(UNDERLAY_MTU), 'type', 'veth', 'peer', 'name', h['leaf_if'],
         'netns', leaf, 'mtu', str(UNDERLAY_MTU)],
        ['ip', '-n', leaf, 'link', 'set', h['leaf_if'], 'master',
         'br-hosts', 'up'],
        ['ip', 'netns', 'exec', leaf] + tbf(h['leaf_if'], h['gbps']),
        ['ip', '-n', ns, 'addr', 'add', '%s/%d' % (h['ip'], h['prefix']),
         'dev', h['uplink']],
        ['ip', '-n', ns, 'link', 'set', h['uplink'], 'up'],
        ['ip', 'netns', 'exec', ns] + tbf(h['uplink'], h['gbps']),
        ['ip', '-n', ns, 'route', 'add', 'default', 'via', h['gateway']],
        ['ip', '-n', ns, 'link', 'add', GUEST_BRIDGE, 'type', 'bridge'],
        ['ip', '-n', ns, 'link', 'add', VXLAN_DEV, 'type', 'vxlan', 'id',
         str(VNI), 'local', h['ip'], 'dstport', '4789', 'dev',
         h['uplink']],
        ['ip', '-n', ns, 'link', 'set', VXLAN_DEV, 'master', GUEST_BRIDGE,
         'up'],
        ['ip', '-n', ns, 'addr', 'add', '%s/%d' % (
            h['guest_ip'], GUEST_NET.prefixlen), 'dev', GUEST_BRIDGE],
        ['ip', '-n', ns, 'link', 'set', GUEST_BRIDGE, 'up'],
    ]
    for other, o in sorted(p['hosts'].items()):
        if other != name:
            cmds.append(['bridge', '-n', ns, 'fdb', 'append',
                         '00:00:00:00:00:00', 'dev', VXLAN_DEV, 'dst',
                         o['ip']])
    return cmds
