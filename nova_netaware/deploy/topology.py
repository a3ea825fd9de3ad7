"""The topology file of a deployment's compute hosts.

devstack (``python -m nova_netaware.deploy topology ...``, run by
``devstack/plugin.sh`` when the operator gave no topology file) and the
local stack put their compute hosts on a leaf-spine. The fabric is built by
the core's generator, :func:`nova_netaware.core.topology.leaf_spine`; this
module only names its hosts after the deployment's and writes the file.
"""

import os

import yaml

from nova_netaware.core.topology import leaf_spine
from nova_netaware.deploy.exceptions import SettingsError


def leaf_spine_for_hosts(hosts, hosts_per_leaf=2, spines=2, uplink_gbps=25,
                         fabric_gbps=100, latency_us=2):
    """A leaf-spine topology dict whose hosts are the given compute hosts.

    Built by the core's ``leaf_spine`` generator; its generated host names
    are replaced, in order, by ``hosts``.
    """
    hosts = list(hosts)
    if not hosts:
        raise SettingsError('no compute host names given')
    leaves = -(-len(hosts) // hosts_per_leaf)
    topo = leaf_spine(spines, leaves, hosts_per_leaf,
                      uplink_gbps=uplink_gbps, fabric_gbps=fabric_gbps,
                      latency_us=latency_us)
    generated = topo['hosts']
    if len(generated) < len(hosts):
        raise SettingsError('leaf_spine gave %d hosts, %d needed'
                            % (len(generated), len(hosts)))
    topo['hosts'] = [dict(h, name=name) for h, name in zip(generated, hosts)]
    return topo


def write_topology(path, topo):
    """Write ``topo`` to ``path`` as YAML, atomically."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        yaml.safe_dump(topo, f, default_flow_style=None, sort_keys=False)
    os.replace(tmp, path)
