"""nova-compute on Nova's libvirt driver in each lab host, registered with
the local stack's control plane.

Order of ``up`` (the stack must already be up, see :func:`up`):

1. the lab (:mod:`.lab`): namespaces, fabric, libvirtd per host;
2. the network stand-in with ports (:mod:`.netstandin`) on its own port,
   and the catalog's ``network`` endpoints pointed at it;
3. the control-plane relay (:mod:`.ctlproxy`) into every host namespace;
4. per host: the tap agent (:mod:`.tapagent`) and ``nova-compute`` with
   ``compute_driver = libvirt.LibvirtDriver``, ``[libvirt] virt_type =
   qemu``, ``connection_uri = qemu:///system`` (the host's own libvirtd:
   nova-compute runs in the host's network, mount and UTS namespaces) and
   ``live_migration_inbound_addr`` = the host's underlay address;
5. the stack's fake computes disabled, ``cell_v2 discover_hosts``, the
   plugin's topology file replaced by the lab's topology;
6. the guest image in glance as AMI-style kernel (aki), ramdisk (ari)
   and a 1 MiB machine image (ami) that points at both, a flavor
   ``nvl.tiny`` (96 MB, 1 vCPU, 1 GB disk).

Each compute has its own instances directory at the same path (a bind
mount in the host's mount namespace, see :mod:`.lab`), as separate
machines with local disks have. A shared directory does not work: libvirt
refuses to live-migrate a disk that is not on a shared file system
("Unsafe migration: Migration without shared storage is unsafe"), and
per-host paths do not either (Nova keeps the disk paths of the domain XML,
so the destination QEMU opened the source's disk: "block-export-add:
Block node is read-only"). So a live migration is a block migration
(Nova's ``block_migration=auto`` finds the storage not shared): QEMU
copies the root disk's allocated blocks over NBD, then the memory.
"""

import os
import time

from nova_netaware.libvirtlab import hypervisor
from nova_netaware.libvirtlab import lab as lablib
from nova_netaware.deploy import topology
from nova_netaware.deploy.localstack import configuration
from nova_netaware.deploy.localstack import processes
from nova_netaware.deploy.localstack import services
from nova_netaware.deploy.localstack import settings

NETSTANDIN_OFFSET = 10
FLAVOR = 'nvl.tiny'
IMAGE = 'nvl-guest'
CMDLINE = 'console=ttyS0 quiet na.prefix=16'


def compute_conf(s, lab, host):
    h = lab.plan['hosts'][host]
    nova_conf = os.path.join(s.etc, 'nova', 'nova.conf')
    path = os.path.join(lab.s.state_dir, 'nova-compute-%s.conf' % host)
    state = os.path.join(lab.s.state_dir, 'nova', host)
    os.makedirs(state, exist_ok=True)
    configuration.write(path, configuration.ini({
        'DEFAULT': {
            'host': host, 'my_ip': h['ip'], 'state_path': state,
            'instances_path': lab.s.instances,
            'compute_driver': 'libvirt.LibvirtDriver',
            # the stand-in sends no network-vif-plugged events
            'vif_plugging_is_fatal': 'False', 'vif_plugging_timeout': '0',
        },
        'libvirt': {'virt_type': 'qemu', 'connection_uri': 'qemu:///system',
                    'cpu_mode': 'none',
                    'live_migration_inbound_addr': h['ip'],
                    'live_migration_scheme': 'tcp',
                    # Nova's first max-downtime step is downtime/steps
                    # (500/10 = 50 ms by default); at 50 ms the TCG guest
                    # panicked on the destination (2 of 2 Nova migrations,
                    # 1 of 1 virsh), at QEMU's default 300 ms it survived
                    # (3 of 3 virsh): start at 900/3 = 300 ms
                    'live_migration_downtime': '900',
                    'live_migration_downtime_steps': '3'},
        'compute': {'live_migration_wait_for_vif_plug': 'False'},
        'vnc': {'enabled': 'False'},
        # Debian's bzImage keeps the legacy boot sector signature (0x55AA
        # at byte 510, partition entries 0xff): oslo.utils' format
        # inspector calls the aki image an MBR with "MBR PTE 0 has invalid
        # boot flag" and pre_live_migration refuses it (ImageUnacceptable).
        'workarounds': {'disable_deep_image_inspection': 'True'},
        'nova_sys_admin': {'helper_command': '%s --config-file %s '
                           '--config-file %s' % (s.bin('privsep-helper'),
                                                 nova_conf, path)},
    }))
    return path


def _point_network_endpoint(conn, url):
    svc = conn.identity.find_service('network-standin')
    for ep in conn.identity.endpoints(service_id=svc.id):
        conn.identity.update_endpoint(ep, url=url)


def up(s, lab, topo=None, timeout=240):
    """Everything after ``local-stack up``; returns the timings."""
    t0 = time.monotonic()
    times = {}
    lab.up(topo)
    times['lab'] = time.monotonic() - t0
    procs = lab.procs()
    port = s.ports['network'] + NETSTANDIN_OFFSET
    net = procs.start('netstandin', [
        s.bin('gunicorn'), '-w', '1', '--threads', '4',
        '--no-control-socket', '-b', '127.0.0.1:%d' % port,
        '--access-logfile', '-', '--error-logfile', '-',
        '--name', 'nvl-netstandin',
        'nova_netaware.libvirtlab.netstandin:app()'],
        env={'NETAWARE_NETSTANDIN_STATE': os.path.join(
            lab.s.state_dir, 'ports.json')})
    processes.wait_for('network stand-in', lambda: processes.http_status(
        'http://127.0.0.1:%d/' % port) == 200, 60, proc=net)
    conn = services.connect(s)
    _point_network_endpoint(conn, 'http://127.0.0.1:%d' % port)
    hosts = sorted(lab.plan['hosts'])
    namespaces = [lab.plan['hosts'][h]['ns'] for h in hosts]
    argv = [s.bin('python'), '-m', 'nova_netaware.libvirtlab.ctlproxy']
    for ns in namespaces:
        argv += ['--ns', ns]
    # nova-compute reads the API database's minimum service versions when
    # [api_database] is set (all-in-one nova.conf, as in devstack): 3306 too
    for p in sorted(set(s.ports.values()) | {port, 5672, 3306}):
        argv += ['--port', str(p)]
    procs.start('ctlproxy', argv)
    computes = {}
    for host in hosts:
        ns = lab.plan['hosts'][host]['ns']
        procs.start('tapagent-' + host, ['ip', 'netns', 'exec', ns,
                                         s.bin('python'), '-m',
                                         'nova_netaware.libvirtlab.tapagent'])
        conf = compute_conf(s, lab, host)
        name = 'nova-compute-' + host
        computes[host] = procs.start(name, hypervisor.nsenter(
            lab.holder(host), s.bin('nova-compute'), '--config-file',
            os.path.join(s.etc, 'nova', 'nova.conf'), '--config-file', conf,
            '--log-file', lab.s.log(name)))
    for svc in conn.compute.services():
        if svc.binary == 'nova-compute' and svc.host in s.hosts:
            conn.compute.disable_service(svc, svc.host, svc.binary)
    topology.write_topology(s.topology_file, lab.state['topology'])
    _wait_computes(s, conn, computes, timeout)
    times['computes'] = time.monotonic() - t0 - times['lab']
    upload_image(conn, lab.state['image'])
    times['total'] = time.monotonic() - t0
    processes.say('libvirt computes up: %s' % ', '.join(
        '%s %.0f s' % kv for kv in times.items()))
    return times


def _wait_computes(s, conn, computes, timeout):
    deadline = time.monotonic() + timeout
    while True:
        processes.run(services.nova_cmd(s, 'nova-manage', 'cell_v2', 'discover_hosts'),
                  s.log('nova-setup'))
        hyps = {h.name for h in conn.compute.hypervisors()
                if h.state == 'up'}
        missing = sorted(set(computes) - hyps)
        if not missing:
            return
        for host in missing:
            if not processes._alive(computes[host]):
                processes.fail('nova-compute-' + host, computes[host]['log'],
                           'its process exited')
        if time.monotonic() > deadline:
            rec = computes[missing[0]]
            processes.fail(rec['name'], rec['log'], 'no hypervisor within %ds'
                       % timeout)
        time.sleep(3)


def upload_image(conn, image):
    """The guest as AMI-style images, and the flavor."""
    def upload(name, path, disk_format, **props):
        img = conn.image.find_image(name)
        if img:
            return img
        return conn.image.create_image(
            name=name, filename=path, disk_format=disk_format,
            container_format=disk_format, visibility='public',
            wait=True, **props)
    kernel = upload(IMAGE + '-kernel', image['kernel'], 'aki')
    ramdisk = upload(IMAGE + '-ramdisk', image['ramdisk'], 'ari')
    root = os.path.join(os.path.dirname(image['kernel']), 'root.img')
    if not os.path.exists(root):
        with open(root, 'wb') as f:
            f.truncate(1 << 20)
    upload(IMAGE, root, 'ami', kernel_id=kernel.id, ramdisk_id=ramdisk.id,
           os_command_line=CMDLINE)
    if not conn.compute.find_flavor(FLAVOR):
        conn.compute.create_flavor(name=FLAVOR, ram=96, vcpus=1, disk=1)


def main(argv=None):
    import sys
    args = list(sys.argv[1:] if argv is None else argv)
    s = settings.Settings(computes=2)
    lab = lablib.Lab(lablib.LabSettings())
    if args and args[0] == 'down':
        lab.down()
        return 0
    up(s, lab)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
