"""The scheduler run offline: Nova HostState and RequestSpec objects, and a
plugin runtime, built from a placement snapshot.

Used by the ``nova-netaware`` command and the benchmark to run the plugin
(and Nova's own filters and weighers) exactly as nova-scheduler does, but on
a placement snapshot (:mod:`nova_netaware.loading.placement_file`) instead
of Nova's databases. Simulation fixtures: not part of the scheduler plugin.
"""

import uuid as uuidlib

from oslo_utils import timeutils

from nova import objects
from nova.scheduler import host_manager
from nova_netaware.scheduler import runtime

objects.register_all()
CELL = objects.CellMapping(uuid='6a1d5f7e-0c1b-4b8e-9f57-6e6574617761',
                           name='cell1')


def host_state(name, usage, cell_uuid=CELL.uuid):
    hs = host_manager.HostState(name, name, cell_uuid)
    hs.total_usable_ram_mb = int(usage.memory_mb)
    hs.free_ram_mb = int(usage.memory_mb - usage.memory_mb_used)
    hs.total_usable_disk_gb = 1000
    hs.free_disk_mb = 1000 * 1024
    hs.disk_mb_used = 0
    hs.vcpus_total = int(usage.vcpus)
    hs.vcpus_used = int(usage.vcpus_used)
    hs.ram_allocation_ratio = 1.0
    hs.cpu_allocation_ratio = 1.0
    hs.disk_allocation_ratio = 1.0
    hs.hypervisor_type = 'fake'
    hs.hypervisor_version = 1000
    hs.hypervisor_hostname = name
    hs.uuid = str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, name))
    now = timeutils.utcnow()
    hs.service = {'disabled': False, 'forced_down': False, 'host': name,
                  'binary': 'nova-compute', 'updated_at': now,
                  'created_at': now, 'last_seen_up': now}
    hs.failed_builds = 0
    hs.num_io_ops = 0
    hs.num_instances = 0
    hs.aggregates = []
    return hs


def move_spec(server_uuid, memory_mb, vcpus, extra_specs=None, source=None):
    """RequestSpec of a cold or live migration (no target host)."""
    flavor = objects.Flavor(memory_mb=int(memory_mb), vcpus=int(vcpus),
                            root_gb=1, ephemeral_gb=0, swap=0,
                            extra_specs=dict(extra_specs or {}))
    spec = objects.RequestSpec(
        instance_uuid=server_uuid, flavor=flavor, num_instances=1,
        ignore_hosts=[source] if source else [],
        force_hosts=[], force_nodes=[],
        requested_destination=objects.Destination(cell=CELL),
        image=objects.ImageMeta.from_dict({'properties': {}}),
        scheduler_hints={}, instance_group=None, project_id='demo',
        user_id='demo', availability_zone=None)
    return spec


def refresh(hosts):
    """Mark the hosts' services as just seen (ComputeFilter checks it)."""
    now = timeutils.utcnow()
    for h in hosts:
        h.service['last_seen_up'] = now


class FixedPlacementRuntime(runtime.Runtime):
    """The plugin's runtime with the placement given instead of read from
    Nova (the CLI and the benchmark)."""

    def __init__(self, placement, metadata=None, topology_cache=False):
        super().__init__()
        self.use_topology_cache = topology_cache
        self.placement = dict(placement)
        self.metadata = metadata or {}

    def lookup(self, spec_obj, uuids):
        return self.placement, self.metadata.get(uuids[0], {})
