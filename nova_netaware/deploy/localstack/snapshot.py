"""Export a live cloud as a placement snapshot file (``nova-netaware
--placement`` format).

``nova-netaware --placement`` explains a decision on a placement snapshot
(see :mod:`nova_netaware.loading.placement_file`). This writes one from a
running cloud with openstacksdk: host capacity and usage from Placement
(:func:`~nova_netaware.loading.capacity.capacity`), and every server with
its host, flavor and metadata from the compute API. The e2e test and
``local-stack demo`` feed it to ``nova-netaware`` so that the command sees
exactly what nova-scheduler sees.
"""

import yaml

from nova_netaware.loading.capacity import capacity


def _capacity(inv):
    return capacity(inv['total'], inv.get('reserved', 0),
                    inv.get('allocation_ratio', 1.0))


def from_cloud(conn, hosts=None):
    """``{'hosts': {...}, 'servers': [...]}`` of the cloud behind ``conn``."""
    snap_hosts = {}
    for rp in conn.placement.resource_providers():
        if hosts is not None and rp.name not in hosts:
            continue
        invs = conn.placement.get(
            '/resource_providers/%s/inventories' % rp.id).json()[
                'inventories']
        usages = conn.placement.get(
            '/resource_providers/%s/usages' % rp.id).json()['usages']
        if 'VCPU' not in invs or 'MEMORY_MB' not in invs:
            continue
        snap_hosts[rp.name] = {
            'vcpus': _capacity(invs['VCPU']),
            'vcpus_used': usages.get('VCPU', 0),
            'memory_mb': _capacity(invs['MEMORY_MB']),
            'memory_mb_used': usages.get('MEMORY_MB', 0)}
    servers = []
    for s in conn.compute.servers(details=True, all_projects=True):
        if not s.compute_host or s.compute_host not in snap_hosts:
            continue
        flavor = s.flavor
        servers.append({
            'uuid': s.id, 'name': s.name, 'host': s.compute_host,
            'memory_mb': int(flavor.ram), 'vcpus': int(flavor.vcpus),
            'extra_specs': dict(flavor.extra_specs or {}),
            'metadata': dict(s.metadata or {})})
    return {'hosts': snap_hosts, 'servers': servers}


def write(conn, path, hosts=None):
    data = from_cloud(conn, hosts)
    with open(path, 'w') as f:
        yaml.safe_dump(data, f, sort_keys=False)
    return data
