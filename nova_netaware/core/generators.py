"""Topology generators: plain data in the topology file format.

Kept apart from validation (:class:`.topology.Topology`) and file reading
(:mod:`.readwrite`), as networkx keeps ``generators/`` apart. Both are also
importable from :mod:`nova_netaware.core.topology`.
"""

from nova_netaware.core.exceptions import TopologyError


def leaf_spine(spines, leaves, hosts_per_leaf, uplink_gbps=25,
               fabric_gbps=100, host_prefix='compute-', latency_us=2):
    """A two-tier leaf-spine: every leaf connects to every spine."""
    switches = [{'name': 'spine-%d' % s} for s in range(1, spines + 1)]
    switches += [{'name': 'leaf-%d' % l} for l in range(1, leaves + 1)]
    links = [{'a': 'leaf-%d' % l, 'b': 'spine-%d' % s, 'gbps': fabric_gbps,
              'latency_us': latency_us}
             for l in range(1, leaves + 1) for s in range(1, spines + 1)]
    hosts = []
    n = 0
    for l in range(1, leaves + 1):
        for _ in range(hosts_per_leaf):
            n += 1
            hosts.append({'name': '%s%d' % (host_prefix, n),
                          'switch': 'leaf-%d' % l,
                          'uplink_gbps': uplink_gbps})
    return {'switches': switches, 'links': links, 'hosts': hosts}


def fat_tree(k, link_gbps=10, uplink_gbps=10, host_prefix='compute-',
             hosts_per_edge=None, latency_us=1):
    """A k-ary fat-tree (Al-Fares et al., SIGCOMM'08).

    k pods, each with k/2 edge and k/2 aggregation switches; (k/2)^2 core
    switches; k/2 hosts per edge switch, so k^3/4 hosts in all (fewer or
    more with *hosts_per_edge*).
    """
    if k < 2 or k % 2:
        raise TopologyError('fat-tree k must be an even number >= 2')
    half = k // 2
    hpe = half if hosts_per_edge is None else hosts_per_edge
    switches, links, hosts = [], [], []
    for c in range(half * half):
        switches.append({'name': 'core-%d' % c})
    n = 0
    for p in range(k):
        for i in range(half):
            switches.append({'name': 'agg-%d-%d' % (p, i)})
            switches.append({'name': 'edge-%d-%d' % (p, i)})
        for i in range(half):
            for j in range(half):
                links.append({'a': 'edge-%d-%d' % (p, i),
                              'b': 'agg-%d-%d' % (p, j),
                              'gbps': link_gbps, 'latency_us': latency_us})
                links.append({'a': 'agg-%d-%d' % (p, i),
                              'b': 'core-%d' % (i * half + j),
                              'gbps': link_gbps, 'latency_us': latency_us})
            for _ in range(hpe):
                n += 1
                hosts.append({'name': '%s%d' % (host_prefix, n),
                              'switch': 'edge-%d-%d' % (p, i),
                              'uplink_gbps': uplink_gbps})
    return {'switches': switches, 'links': links, 'hosts': hosts}
