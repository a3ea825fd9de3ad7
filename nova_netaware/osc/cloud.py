"""Thin adapter over openstacksdk: everything the commands read from or do to
the cloud goes through :class:`Cloud`, in plain data.

Reads: servers with their hosts (``all_projects``), flavors embedded in the
server (microversion >= 2.47), hypervisors with CPU/RAM use, compute
services, aggregates and migrations. Writes: cold migrate, confirm, live
migrate, always *without* a target host, so that Nova's scheduler (with the
nova-netaware filter and weigher) chooses.
"""

import dataclasses
from typing import Dict, Optional

from openstack import exceptions as sdk_exc

# Hypervisor CPU/RAM fields are dropped from the API at 2.88; 2.87 still
# has them (Nova 34 keeps older microversions).
HYPERVISOR_MICROVERSION = '2.87'


class CloudError(Exception):
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
                status=hv.get('status') or 'enabled')
            if host in out:      # several nodes on one host (ironic-like)
                o = out[host]
                for f in ('vcpus', 'vcpus_used', 'memory_mb',
                          'memory_mb_used'):
                    setattr(o, f, getattr(o, f) + getattr(info, f))
            else:
                out[host] = info
        return out

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


def _http_message(e):
    code = getattr(e, 'status_code', None)
    details = getattr(e, 'details', None) or str(e)
    return ('HTTP %s: %s' % (code, details)) if code else details
