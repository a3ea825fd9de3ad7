"""The lab's pure parts: the network plan from a topology, the guest
address scheme, and the initramfs (no root, no libvirt needed)."""

import gzip
import ipaddress
import os

import pytest

from nova_netaware.core.topology import Topology
from nova_netaware.deploy.localstack.libvirt import fabric
from nova_netaware.deploy.localstack.libvirt import guest
from nova_netaware.deploy.localstack.libvirt import image
from nova_netaware.deploy.localstack.libvirt import lab


def test_default_topology_is_a_valid_plugin_topology():
    topo = lab.default_topology(3)
    t = Topology(topo)
    assert sorted(t.host_names) == ['lvcmp1', 'lvcmp2', 'lvcmp3']
    # lvcmp1 and lvcmp2 share leaf-1, lvcmp3 is on leaf-2
    i = t.host_index
    assert t.host_hops(i['lvcmp1'], i['lvcmp2']) < t.host_hops(
        i['lvcmp1'], i['lvcmp3'])


def test_plan_routes_every_host_subnet_over_all_shortest_paths():
    p = fabric.plan(lab.default_topology(4))
    leaf1 = p['switches']['leaf-1']
    assert leaf1['subnet'] == '10.0.3.0/24'
    # two spines: two equal-cost next hops to leaf-2's hosts
    assert [dev for dev, _ in leaf1['routes']['10.0.4.0/24']] == [
        'to-spine-1', 'to-spine-2']
    spine = p['switches']['spine-1']
    assert sorted(spine['routes']) == ['10.0.3.0/24', '10.0.4.0/24']
    addrs = [h['ip'] for h in p['hosts'].values()]
    assert len(set(addrs)) == 4
    for h in p['hosts'].values():
        sw = p['switches'][h['switch']]
        assert ipaddress.ip_address(h['ip']) in ipaddress.ip_network(
            sw['subnet'])
        assert len(h['leaf_if']) <= 15


def test_plan_shapes_each_link_at_its_topology_capacity():
    topo = lab.default_topology(3, uplink_gbps=0.05, fabric_gbps=0.2)
    cmds = fabric.commands(fabric.plan(topo))
    tbf = [c for c in cmds if 'tbf' in c]
    # two ends of 3 uplinks and of 4 fabric links
    assert len(tbf) == 2 * 3 + 2 * 4
    rates = sorted({c[c.index('rate') + 1] for c in tbf})
    # lab.THIN_HOST (lvcmp2) keeps its 5 Mbit/s uplink
    assert rates == sorted(['200000kbit', '5000kbit', '50000kbit'])
    # both ends of the thin host's uplink, nothing else
    thin = [c for c in tbf if '5000kbit' in c]
    h = fabric.plan(topo)['hosts'][lab.THIN_HOST]
    assert sorted(c[3] for c in thin) == sorted(
        [h['ns'], fabric.ns_name(h['switch'])])


def test_guest_address_round_trips_through_the_mac():
    for ip in ('10.100.1.1', '10.100.255.254', '10.0.0.7'):
        mac = guest.mac_for_ip(ip)
        assert mac.startswith('fa:16:3e:')
        assert guest.ip_for_mac(mac) == ip
    with pytest.raises(ValueError):
        guest.mac_for_ip('192.168.0.1')


def _cpio_names(data):
    names, pos = [], 0
    while True:
        hdr = data[pos:pos + 110]
        assert hdr[:6] == b'070701'
        size = int(hdr[54:62], 16)
        namesize = int(hdr[94:102], 16)
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        if name == 'TRAILER!!!':
            return names
        names.append(name)
        pos += size + (-size % 4)


def test_initramfs_holds_busybox_the_nic_modules_and_the_services(tmp_path):
    try:
        version = image.kernel_version()
    except image.ImageError as exc:
        pytest.skip(str(exc))
    if not os.path.exists(image.BUSYBOX):
        pytest.skip('busybox-static is not installed')
    names = _cpio_names(gzip.decompress(image.initramfs(version)))
    for needed in ('init', 'bin/busybox', 'dev/console',
                   'lib/modules/virtio_net.ko', 'www/cgi-bin/count',
                   'www/cgi-bin/traffic', 'bin/na-gen', 'bin/na-state'):
        assert needed in names
    built = image.build(cache=str(tmp_path))
    again = image.build(cache=str(tmp_path))
    assert built == again and os.path.getsize(built['ramdisk']) > 1 << 20
