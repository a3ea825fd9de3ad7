"""Thin adapter over openstacksdk: everything the commands read from or do to
the cloud goes through :class:`Cloud`, in plain data.

Reads: servers with their hosts (``all_projects``), flavors embedded in the
server (microversion >= 2.47), hypervisors with CPU/RAM use, the VCPU and
MEMORY_MB inventories and usages of their resource providers in Placement,
compute services, aggregates and migrations. Writes: cold migrate, confirm,
live migrate, always *without* a target host, so that Nova's scheduler (with
the nova-netaware filter and weigher) chooses.
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from nova_netaware.core.exceptions import NetawareError
from nova_netaware.loading.capacity import capacity

# Hypervisor CPU/RAM fields are dropped from the API at 2.88; 2.87 still
# has them (Nova 34 keeps older microversions).
HYPERVISOR_MICROVERSION = '2.87'
# Everything read from Placement exists since its first microversion.
PLACEMENT_MICROVERSION = '1.0'
# The resource classes whose capacity the advisor checks.
CAPACITY_CLASSES = ('VCPU', 'MEMORY_MB')


class CloudError(NetawareError):
    """A clear, user-facing error from the cloud."""


@dataclasses.dataclass
class ServerInfo:
    id: str
    name: str
    host: Optional[str]
    status: str
    task_state: Optional[str]
    ram_mb: int
    vcpus: int
    extra_specs: Dict[str, str]
    metadata: Dict[str, str]


@dataclasses.dataclass
class HypervisorInfo:
    host: str                 # nova-compute service host name
    vcpus: float
    vcpus_used: float
    memory_mb: float
    memory_mb_used: float
    state: str = 'up'
    status: str = 'enabled'
    # (compute node UUID = hypervisor ID, hypervisor_hostname) of each node
    nodes: List[Tuple[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Inventory:
    """One resource class of one resource provider, as Placement has it."""
    total: float = 0.0
    reserved: float = 0.0
    allocation_ratio: float = 1.0
    used: float = 0.0                  # sum of the allocations against it

    def capacity(self, ratio=None):
        """What Nova may allocate (:func:`~nova_netaware.loading.capacity.
        capacity`), with Placement's ratio unless *ratio* is given."""
        return capacity(self.total, self.reserved,
                        self.allocation_ratio if ratio is None else ratio)


@dataclasses.dataclass
class MigrationInfo:
    id: int
    status: str
    source: Optional[str]
    dest: Optional[str]
    migration_type: Optional[str]


def _server_info(s):
    flavor = s.flavor
    get = (flavor.get if isinstance(flavor, dict)
           else lambda k, d=None: getattr(flavor, k, d))
    return ServerInfo(
        id=s.id, name=s.name, host=s.compute_host, status=s.status,
        task_state=s.task_state, ram_mb=int(get('ram', 0) or 0),
        vcpus=int(get('vcpus', 0) or 0),
        extra_specs=dict(get('extra_specs', None) or {}),
        metadata=dict(s.metadata or {}))


class Cloud(object):
    """What the ``openstack netaware`` commands need from the cloud."""

    def __init__(self, conn):
        self.conn = conn

    # -- reads ----------------------------------------------------------------
    def servers(self):
        """All servers of all projects, ``{id: ServerInfo}``."""
        try:
            out = {}
            for s in self.conn.compute.servers(details=True,
                                               all_projects=True):
                out[s.id] = self._with_flavor(s, _server_info(s))
            return out
        except sdk_exc.SDKException as e:
            raise CloudError('cannot list servers: %s' % e)

    def _with_flavor(self, s, info):
        """Before microversion 2.47 a server names its flavor only: read
        it (once per flavor)."""
        if info.ram_mb or not getattr(s, 'flavor', None):
            return info
        fid = getattr(s.flavor, 'id', None) or (
            s.flavor.get('id') if isinstance(s.flavor, dict) else None)
        if not fid:
            return info
        cache = self.__dict__.setdefault('_flavors', {})
        if fid not in cache:
            try:
                f = self.conn.compute.get_flavor(fid)
                cache[fid] = (f.ram, f.vcpus, dict(f.extra_specs or {}))
            except sdk_exc.SDKException:
                cache[fid] = None
        if cache[fid]:
            info.ram_mb, info.vcpus, info.extra_specs = cache[fid]
        return info

    def server(self, server_id):
        try:
            s = self.conn.compute.get_server(server_id)
            return self._with_flavor(s, _server_info(s))
        except sdk_exc.NotFoundException:
            raise CloudError('No server with ID %s' % server_id)
        except sdk_exc.SDKException as e:
            raise CloudError('cannot read server %s: %s' % (server_id, e))

    def find_server(self, name_or_id):
        """The server named or identified by *name_or_id* (any project)."""
        try:
            s = self.conn.compute.find_server(
                name_or_id, ignore_missing=True, all_projects=True)
        except sdk_exc.DuplicateResource:
            raise CloudError('More than one server is named %r; use its ID'
                             % name_or_id)
        except sdk_exc.SDKException as e:
            raise CloudError('cannot look up server %r: %s' % (name_or_id, e))
        if s is None:
            raise CloudError('No server with a name or ID of %r exists.'
                             % name_or_id)
        return self.server(s.id)

    def hypervisors(self):
        """``{compute host: HypervisorInfo}`` with CPU/RAM capacity and use."""
        try:
            resp = self.conn.compute.get(
                '/os-hypervisors/detail',
                microversion=HYPERVISOR_MICROVERSION)
            sdk_exc.raise_from_response(resp)
            hvs = resp.json()['hypervisors']
        except sdk_exc.SDKException as e:
            raise CloudError('cannot list hypervisors: %s' % e)
        out = {}
        for hv in hvs:
            host = (hv.get('service') or {}).get('host') or \
                hv.get('hypervisor_hostname')
            info = HypervisorInfo(
                host=host, vcpus=float(hv.get('vcpus') or 0),
                vcpus_used=float(hv.get('vcpus_used') or 0),
                memory_mb=float(hv.get('memory_mb') or 0),
                memory_mb_used=float(hv.get('memory_mb_used') or 0),
                state=hv.get('state') or 'up',
                status=hv.get('status') or 'enabled',
                nodes=[(str(hv.get('id')), hv.get('hypervisor_hostname'))])
            if host in out:      # several nodes on one host (ironic-like)
                o = out[host]
                for f in ('vcpus', 'vcpus_used', 'memory_mb',
                          'memory_mb_used'):
                    setattr(o, f, getattr(o, f) + getattr(info, f))
                o.nodes += info.nodes
            else:
                out[host] = info
        return out

    def placement_usage(self, hosts):
        """``{compute host: {resource class: [Inventory, one per node]}}``
        for VCPU and MEMORY_MB, read from Placement: what Nova schedules
        against. *hosts* is :meth:`hypervisors`'s result: it maps each
        compute node to its service host. A node's resource provider has
        the compute node's UUID (the hypervisor ID) and is named after its
        hypervisor_hostname; the UUID is tried first. A host with a node
        that has no resource provider is left out (the caller decides what
        to do about it). Raises :class:`CloudError` when Placement cannot be
        read (no endpoint, forbidden, down)."""
        rps = self._placement_get('/resource_providers',
                                  'list resource providers')
        uuids = {rp['uuid'] for rp in rps.get('resource_providers', [])}
        by_name = {rp['name']: rp['uuid']
                   for rp in rps.get('resource_providers', [])}
        out = {}
        for host, hv in hosts.items():
            per_class = {rc: [] for rc in CAPACITY_CLASSES}
            for node_id, nodename in hv.nodes:
                rp = node_id if node_id in uuids else by_name.get(nodename)
                if rp is None:
                    break
                inv = self._placement_get(
                    '/resource_providers/%s/inventories' % rp,
                    'read the inventories of %s' % nodename)
                use = self._placement_get(
                    '/resource_providers/%s/usages' % rp,
                    'read the usages of %s' % nodename)
                for rc in CAPACITY_CLASSES:
                    i = (inv.get('inventories') or {}).get(rc) or {}
                    per_class[rc].append(Inventory(
                        total=float(i.get('total') or 0),
                        reserved=float(i.get('reserved') or 0),
                        allocation_ratio=float(
                            i.get('allocation_ratio') or 1.0),
                        used=float((use.get('usages') or {}).get(rc) or 0)))
            else:
                if hv.nodes:
                    out[host] = per_class
        return out

    def _placement_get(self, url, what):
        """GET a Placement URL through openstacksdk (the raw proxy call
        works whether or not the proxy has a method for it)."""
        try:
            resp = self.conn.placement.get(
                url, microversion=PLACEMENT_MICROVERSION)
            sdk_exc.raise_from_response(resp)
            return resp.json()
        except sdk_exc.HttpException as e:
            hint = ''
            if e.status_code in (401, 403):
                hint = ' (reading Placement needs an admin or reader role)'
            raise CloudError('Placement refused to %s: HTTP %s: %s%s' % (
                what, e.status_code, _placement_detail(e), hint))
        except (sdk_exc.SDKException, ks_exc.ClientException,
                ValueError) as e:
            # no placement endpoint in the catalog, cannot connect, not JSON
            raise CloudError('cannot reach Placement to %s: %s' % (what, e))

    def aggregates(self):
        """``[(name, [hosts], metadata)]``."""
        try:
            return [(a.name, list(a.hosts or []), dict(a.metadata or {}))
                    for a in self.conn.compute.aggregates()]
        except sdk_exc.SDKException as e:
            raise CloudError('cannot list aggregates: %s' % e)

    def migrations(self, server_id):
        """Migrations of a server, newest last."""
        try:
            ms = list(self.conn.compute.migrations(server_id=server_id))
        except sdk_exc.SDKException as e:
            raise CloudError('cannot list migrations of %s: %s'
                             % (server_id, e))
        out = [MigrationInfo(m.id, m.status, m.source_compute,
                             m.dest_compute, m.migration_type) for m in ms]
        return sorted(out, key=lambda m: m.id)

    # -- actions ----------------------------------------------------------------
    def migrate(self, server_id, live):
        """Start a migration with no target host: the scheduler chooses."""
        try:
            if live:
                self.conn.compute.live_migrate_server(
                    server_id, host=None, block_migration='auto')
            else:
                self.conn.compute.migrate_server(server_id)
        except sdk_exc.SDKException as e:
            raise CloudError('Nova refused to %s server %s: %s' % (
                'live-migrate' if live else 'migrate', server_id,
                _http_message(e)))

    def confirm_resize(self, server_id):
        try:
            self.conn.compute.confirm_server_resize(server_id)
        except sdk_exc.SDKException as e:
            raise CloudError('Nova refused to confirm the migration of %s: '
                             '%s' % (server_id, _http_message(e)))


def _placement_detail(e):
    """Placement's own words (``{"errors": [{"detail": ...}]}``), else the
    SDK's."""
    try:
        errors = e.response.json()['errors']
        return ' '.join(' '.join(x['detail'].split()) for x in errors)
    except Exception:
        return getattr(e, 'details', None) or str(e)


def _http_message(e):
    code = getattr(e, 'status_code', None)
    details = getattr(e, 'details', None) or str(e)
    return ('HTTP %s: %s' % (code, details)) if code else details
