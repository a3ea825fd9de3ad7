"""The placement snapshot file: hosts, servers and where they run.

Format (YAML or JSON)::

    hosts:
      compute-1: {vcpus: 32, vcpus_used: 8, memory_mb: 131072,
                  memory_mb_used: 16384}
    servers:
      - {uuid: <uuid>, name: web-1, host: compute-1, memory_mb: 4096,
         vcpus: 2, extra_specs: {}, metadata: {}}
    default_server: web-1        # optional: what the CLI explains by default

It is what the ``nova-netaware`` command (``--placement``) and the
benchmarks feed to the filter and weigher instead of Nova's databases.
Errors are :class:`~nova_netaware.core.exceptions.SnapshotError`; a file
that cannot be read or parsed raises the core's reading error.
"""

import dataclasses
from typing import Dict, List

from nova_netaware.advisor import HostUsage
from nova_netaware.core.exceptions import SnapshotError
from nova_netaware.core.topology import load_data_file


@dataclasses.dataclass
class ServerRecord:
    uuid: str
    name: str
    host: str
    memory_mb: int
    vcpus: int
    extra_specs: Dict[str, str]
    metadata: Dict[str, str]


@dataclasses.dataclass
class PlacementSnapshot:
    """The content of a placement snapshot file."""

    hosts: Dict[str, HostUsage]
    servers: List[ServerRecord]
    default_server: str = None

    @property
    def placement(self):
        return {s.uuid: s.host for s in self.servers}

    def find(self, ref):
        """A server by uuid or name (a clear error if unknown/ambiguous)."""
        by_uuid = [s for s in self.servers if s.uuid == ref]
        if by_uuid:
            return by_uuid[0]
        named = [s for s in self.servers if s.name == ref]
        if len(named) > 1:
            raise SnapshotError('server name %r is ambiguous; use a uuid'
                                % ref)
        if not named:
            raise SnapshotError('no server %r in the snapshot' % ref)
        return named[0]


def _num(value, where):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SnapshotError('%s must be a number, got %r' % (where, value))
    if v < 0:
        raise SnapshotError('%s must be >= 0, got %r' % (where, value))
    return v


def from_data(data, source='<data>'):
    if not isinstance(data, dict) or not isinstance(data.get('hosts'), dict) \
            or not isinstance(data.get('servers'), list):
        raise SnapshotError('%s: a snapshot needs a mapping "hosts" and a '
                            'list "servers"' % source)
    hosts = {}
    for name, h in data['hosts'].items():
        where = '%s: hosts.%s' % (source, name)
        if not isinstance(h, dict):
            raise SnapshotError('%s must be a mapping' % where)
        hosts[str(name)] = HostUsage(
            _num(h.get('vcpus'), where + '.vcpus'),
            _num(h.get('vcpus_used', 0), where + '.vcpus_used'),
            _num(h.get('memory_mb'), where + '.memory_mb'),
            _num(h.get('memory_mb_used', 0), where + '.memory_mb_used'))
    servers, seen = [], set()
    for i, s in enumerate(data['servers']):
        where = '%s: servers[%d]' % (source, i)
        if not isinstance(s, dict) or not s.get('uuid'):
            raise SnapshotError('%s needs a uuid' % where)
        if s['uuid'] in seen:
            raise SnapshotError('%s: duplicate uuid %s' % (where, s['uuid']))
        seen.add(s['uuid'])
        if s.get('host') not in hosts:
            raise SnapshotError('%s (%s): unknown host %r' % (
                where, s.get('name', s['uuid']), s.get('host')))
        servers.append(ServerRecord(
            str(s['uuid']), str(s.get('name', s['uuid'])), str(s['host']),
            int(_num(s.get('memory_mb'), where + '.memory_mb')),
            int(_num(s.get('vcpus'), where + '.vcpus')),
            dict(s.get('extra_specs') or {}), dict(s.get('metadata') or {})))
    return PlacementSnapshot(hosts, servers, data.get('default_server'))


def from_file(path):
    return from_data(load_data_file(path), source=path)
