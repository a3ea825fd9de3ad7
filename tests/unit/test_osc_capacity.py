"""CPU/RAM capacity of the ``openstack netaware`` commands: Placement's
``(total - reserved) x allocation ratio`` and usage, the mapping of compute
nodes to hosts, and the visible fallback to hypervisor data. No Nova here.

The real path (Nova API, Placement fixture, OSC shell) is tested in
tests/osc/test_capacity.py. Here the cloud is a stand-in, because the cases
cannot be arranged in that harness: a catalog without Placement (with auth
none every service has the same endpoint), resource providers whose UUID
is not the compute node's, several nodes on one host.
"""

import json

from keystoneauth1 import exceptions as ks_exc
import pytest
import requests
import yaml

from nova_netaware.core.topology import leaf_spine
from nova_netaware.osc import cloud
from nova_netaware.osc import data


def response(status, body):
    r = requests.Response()
    r.status_code = status
    r.reason = {200: 'OK', 403: 'Forbidden', 404: 'Not Found'}.get(status)
    r.headers['Content-Type'] = 'application/json'
    r._content = json.dumps(body).encode()
    r.url = 'http://placement.example/stand-in'
    return r


class StandInPlacement(object):
    """Answers Placement GETs from a dict ``{url: (status, body)}``, or
    raises *error* (stand-in for a Placement service / missing endpoint)."""

    def __init__(self, answers=None, error=None):
        self.answers, self.error, self.calls = answers or {}, error, []

    def get(self, url, microversion=None):
        self.calls.append((url, microversion))
        if self.error:
            raise self.error
        return response(*self.answers.get(url, (404, {'errors': [
            {'status': 404, 'detail': 'no such resource provider'}]})))


class StandInConnection(object):
    def __init__(self, placement):
        self.placement = placement


def hv(host, vcpus, vcpus_used, mem, mem_used, nodes, state='up'):
    return cloud.HypervisorInfo(host, vcpus, vcpus_used, mem, mem_used,
                                state=state, nodes=nodes)


def provider(uuid, vcpu, mem, vcpu_used, mem_used):
    """Answers for one resource provider: vcpu / mem are (total, reserved,
    allocation_ratio)."""
    inv = {rc: {'total': t, 'reserved': r, 'allocation_ratio': a}
           for rc, (t, r, a) in (('VCPU', vcpu), ('MEMORY_MB', mem))}
    inv['DISK_GB'] = {'total': 100, 'reserved': 0, 'allocation_ratio': 1.0}
    base = '/resource_providers/%s' % uuid
    return {base + '/inventories': (200, {'inventories': inv}),
            base + '/usages': (200, {'usages': {
                'VCPU': vcpu_used, 'MEMORY_MB': mem_used, 'DISK_GB': 3}})}


def two_hosts():
    """h1: one node (RP uuid = compute node id); h2: two nodes, whose RPs
    have other UUIDs than the compute nodes and are found by name."""
    hvs = {'h1': hv('h1', 10, 6, 8192, 2048, [('cn-1', 'h1.node')]),
           'h2': hv('h2', 20, 2, 16384, 1024,
                    [('cn-2a', 'h2-a'), ('cn-2b', 'h2-b')])}
    answers = {'/resource_providers': (200, {'resource_providers': [
        {'uuid': 'cn-1', 'name': 'h1.node'},
        {'uuid': 'rp-2a', 'name': 'h2-a'},
        {'uuid': 'rp-2b', 'name': 'h2-b'},
        {'uuid': 'pci-x', 'name': 'h1.node_pci'}]})}
    answers.update(provider('cn-1', (10, 2, 4.0), (8192, 512, 1.5), 6, 2048))
    answers.update(provider('rp-2a', (8, 0, 2.0), (8192, 1024, 1.0), 1, 512))
    answers.update(provider('rp-2b', (12, 4, 1.0), (8192, 0, 1.0), 1, 512))
    return hvs, StandInPlacement(answers)


def test_placement_capacity_per_node_summed_per_host():
    hvs, placement = two_hosts()
    c = cloud.Cloud(StandInConnection(placement))
    usage, notes = data.host_usage(c, hvs)
    assert notes == []
    # h1: (10 - 2) x 4.0 = 32 vCPUs, (8192 - 512) x 1.5 = 11520 MB
    assert (usage['h1'].vcpus, usage['h1'].vcpus_used) == (32.0, 6.0)
    assert (usage['h1'].memory_mb, usage['h1'].memory_mb_used) == (
        11520.0, 2048.0)
    # h2: (8 - 0) x 2 + (12 - 4) x 1 = 24 vCPUs; 7168 + 8192 MB
    assert (usage['h2'].vcpus, usage['h2'].vcpus_used) == (24.0, 2.0)
    assert (usage['h2'].memory_mb, usage['h2'].memory_mb_used) == (
        15360.0, 1024.0)
    assert all(mv == cloud.PLACEMENT_MICROVERSION
               for _, mv in placement.calls)


def test_ratios_given_override_placement_not_reserved():
    hvs, placement = two_hosts()
    usage, notes = data.host_usage(cloud.Cloud(StandInConnection(placement)),
                                   hvs, cpu_allocation_ratio=1.0,
                                   ram_allocation_ratio=2.0)
    assert notes == []
    assert usage['h1'].vcpus == 8.0                     # (10 - 2) x 1
    assert usage['h1'].memory_mb == 15360.0             # (8192 - 512) x 2
    assert usage['h2'].vcpus == 16.0                    # 8 + 8


def test_host_without_resource_provider_falls_back_with_a_note():
    hvs, placement = two_hosts()
    del placement.answers['/resource_providers']
    placement.answers['/resource_providers'] = (200, {'resource_providers': [
        {'uuid': 'cn-1', 'name': 'h1.node'},
        {'uuid': 'rp-2a', 'name': 'h2-a'}]})          # h2-b is missing
    usage, notes = data.host_usage(cloud.Cloud(StandInConnection(placement)),
                                   hvs, cpu_allocation_ratio=2.0)
    assert usage['h1'].vcpus == 16.0                    # Placement
    assert (usage['h2'].vcpus, usage['h2'].memory_mb) == (40.0, 16384.0)
    assert notes == [
        'Placement has no resource provider for compute host(s) h2; for '
        'them, CPU/RAM capacity falls back to Nova\'s hypervisor data x '
        'allocation ratio (CPU 2, RAM 1; pass --cpu-allocation-ratio/'
        '--ram-allocation-ratio to match Nova\'s), which ignores '
        'Placement\'s allocation ratios and reserved amounts']


def test_no_placement_endpoint_falls_back_to_hypervisors_with_a_note():
    hvs, _ = two_hosts()
    placement = StandInPlacement(error=ks_exc.EndpointNotFound(
        'Could not find requested endpoint in Service Catalog.'))
    c = cloud.Cloud(StandInConnection(placement))
    with pytest.raises(cloud.CloudError) as e:
        c.placement_usage(hvs)
    assert str(e.value) == (
        'cannot reach Placement to list resource providers: Could not find '
        'requested endpoint in Service Catalog.')
    usage, notes = data.host_usage(c, hvs, ram_allocation_ratio=1.5)
    assert (usage['h1'].vcpus, usage['h1'].vcpus_used) == (10.0, 6.0)
    assert (usage['h1'].memory_mb, usage['h1'].memory_mb_used) == (
        8192 * 1.5, 2048.0)
    assert notes == [str(e.value) + '; CPU/RAM capacity falls back to '
                     'Nova\'s hypervisor data x allocation ratio (CPU 1, '
                     'RAM 1.5; pass --cpu-allocation-ratio/'
                     '--ram-allocation-ratio to match Nova\'s), which '
                     'ignores Placement\'s allocation ratios and reserved '
                     'amounts']


def test_placement_error_message_carries_placement_detail():
    hvs, placement = two_hosts()
    placement.answers['/resource_providers/cn-1/usages'] = (403, {
        'errors': [{'status': 403, 'title': 'Forbidden',
                    'detail': 'Access was denied to this resource.\n\n '
                              'Policy does not allow x.  '}]})
    with pytest.raises(cloud.CloudError) as e:
        cloud.Cloud(StandInConnection(placement)).placement_usage(hvs)
    assert str(e.value) == (
        'Placement refused to read the usages of h1.node: HTTP 403: Access '
        'was denied to this resource. Policy does not allow x. (reading '
        'Placement needs an admin or reader role)')


class StandInCloud(object):
    """The reads :func:`data.read_cloud` makes (stand-in for a cloud)."""

    def __init__(self, placement_error=None):
        self.placement_error = placement_error

    def hypervisors(self):
        return {'compute-1': hv('compute-1', 10, 9, 8192, 1024,
                                [('n1', 'compute-1')]),
                'compute-2': hv('compute-2', 10, 1, 8192, 1024,
                                [('n2', 'compute-2')], state='down')}

    def servers(self):
        return {}

    def aggregates(self):
        return []

    def placement_usage(self, hosts):
        if self.placement_error:
            raise cloud.CloudError(self.placement_error)
        assert set(hosts) == {'compute-1'}          # down hosts: not read
        return {'compute-1': {
            'VCPU': [cloud.Inventory(10, 0, 4.0, 9)],
            'MEMORY_MB': [cloud.Inventory(8192, 512, 1.0, 512)]}}


@pytest.fixture
def conf(tmp_path):
    topo = tmp_path / 'topology.yaml'
    topo.write_text(yaml.safe_dump(leaf_spine(2, 3, 2)))
    traffic = tmp_path / 'traffic.yaml'
    traffic.write_text(yaml.safe_dump({'flows': []}))
    cfg = tmp_path / 'nova.conf'
    cfg.write_text('[netaware]\n')
    return data.load_conf([str(cfg)], str(topo), str(traffic))


def test_cloud_view_uses_placement(conf):
    view = data.read_cloud(StandInCloud(), conf)
    assert view.notes == []
    assert set(view.usage) == {'compute-1'}
    u = view.usage['compute-1']
    assert (u.vcpus, u.vcpus_used, u.memory_mb, u.memory_mb_used) == (
        40.0, 9.0, 7680.0, 512.0)
    assert u.cpu() == 9 / 40.0


def test_cloud_view_fallback_is_never_silent(conf):
    view = data.read_cloud(StandInCloud(
        'Placement refused to list resource providers: HTTP 403: nope'),
        conf, cpu_allocation_ratio=2.0, ram_allocation_ratio=1.0)
    u = view.usage['compute-1']
    assert (u.vcpus, u.vcpus_used, u.memory_mb, u.memory_mb_used) == (
        20.0, 9.0, 8192.0, 1024.0)
    assert view.notes == [
        'Placement refused to list resource providers: HTTP 403: nope; '
        'CPU/RAM capacity falls back to Nova\'s hypervisor data x '
        'allocation ratio (CPU 2, RAM 1), which ignores Placement\'s '
        'allocation ratios and reserved amounts']
