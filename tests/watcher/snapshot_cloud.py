"""A read-only cloud served from a placement snapshot file
(:mod:`nova_netaware.loading.placement_file`, the input of ``nova-netaware
--placement``), with the methods of :class:`nova_netaware.osc.cloud.Cloud`
that :func:`nova_netaware.osc.data.read_cloud` calls.

Why not Nova's functional harness here: Nova and Watcher cannot be imported
into one process (measured: ``oslo_config.cfg.DuplicateOptError: duplicate
option: host`` when Watcher's options are registered after Nova's), and
the harness reaches Nova only in-process (wsgi-intercept). The strategy
against a real Nova is the local stack's e2e (``local-stack up
--with-watcher``); here both the OSC command and the strategy read this
same snapshot through the same ``read_cloud``.
"""

from nova_netaware.loading import placement_file
from nova_netaware.osc import cloud


class SnapshotCloud(object):

    def __init__(self, path):
        self.snap = placement_file.from_file(path)

    def hypervisors(self):
        return {h: cloud.HypervisorInfo(
            host=h, vcpus=u.vcpus, vcpus_used=u.vcpus_used,
            memory_mb=u.memory_mb, memory_mb_used=u.memory_mb_used,
            nodes=[('node-' + h, h)]) for h, u in self.snap.hosts.items()}

    def servers(self):
        return {s.uuid: cloud.ServerInfo(
            id=s.uuid, name=s.name, host=s.host, status='ACTIVE',
            task_state=None, ram_mb=s.memory_mb, vcpus=s.vcpus,
            extra_specs=dict(s.extra_specs), metadata=dict(s.metadata))
            for s in self.snap.servers}

    def aggregates(self):
        return []

    def placement_usage(self, hosts):
        """One resource provider per host, ratio 1, nothing reserved."""
        out = {}
        for h in hosts:
            u = self.snap.hosts[h]
            out[h] = {
                'VCPU': [cloud.Inventory(total=u.vcpus, used=u.vcpus_used)],
                'MEMORY_MB': [cloud.Inventory(total=u.memory_mb,
                                              used=u.memory_mb_used)]}
        return out
