"""nova-compute on Nova's libvirt driver in each lab host: the libvirt
half of ``local-stack up --virt libvirt`` (:mod:`..stack` calls these).

Order of ``up`` (:meth:`Stack._up` with ``virt = libvirt``):

1. the lab (:func:`lab_up`, :mod:`.lab`): namespaces, fabric, libvirtd per
   host, in a thread while the databases are set up;
2. the network stand-in with ports (:mod:`.netstandin`) is the stack's
   ``network-standin`` service (instead of the portless netstub);
3. :func:`start_computes`: the control-plane relay (:mod:`.ctlproxy`) into
   every host namespace; per host the tap agent (:mod:`.tapagent`) and
   ``nova-compute`` with ``compute_driver = libvirt.LibvirtDriver``,
   ``[libvirt] virt_type = qemu``, ``connection_uri = qemu:///system``
   (the host's own libvirtd: nova-compute runs in the host's network,
   mount and UTS namespaces) and ``live_migration_inbound_addr`` = the
   host's underlay address;
4. once the computes are hypervisors, :func:`upload_image`: the guest as
   AMI-style kernel (aki), ramdisk (ari) and a 1 MiB machine image (ami)
   that points at both, and a flavor ``nvl.tiny`` (96 MB, 1 vCPU, 1 GB).

The plugin's topology file is the lab's topology (the same capacities the
fabric is shaped to). ``down`` (:func:`down`) runs after the stack's own
processes are stopped: it destroys the domains, stops the lab's daemons and
deletes the lab's namespaces.

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

from nova_netaware.deploy.localstack import configuration
from nova_netaware.deploy.localstack.libvirt import guest
from nova_netaware.deploy.localstack.libvirt import hypervisor
from nova_netaware.deploy.localstack.libvirt import lab as lablib

FLAVOR = 'nvl.tiny'
IMAGE = 'nvl-guest'


def compute_conf(s, lab, host):
    h = lab.plan['hosts'][host]
    nova_conf = s.conf('nova', 'nova.conf')
    path = s.conf('nova', 'nova-compute-%s.conf' % host)
    state = os.path.join(s.data, 'nova', host)
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


def lab_settings(s):
    """The lab's paths inside the stack's state directory; its daemons log
    to the stack's log directory (``local-stack logs`` shows them)."""
    return lablib.LabSettings(s.lab_dir, logs=s.logs)


def lab_up(s):
    """The lab for the stack's hosts; returns the :class:`lab.Lab`."""
    lab = lablib.Lab(lab_settings(s))
    lab.up(configuration.stack_topology(s), ns_prefix=s.profile.ns_prefix,
           net=s.profile.net)
    return lab


def lab_settings_procs(s):
    """The process records of the lab's daemons (for ``status``)."""
    return lablib.Lab(lab_settings(s)).procs().records


def down(s):
    """Take the lab down (after the stack's processes are stopped)."""
    lab = lablib.Lab(lab_settings(s))
    if lab.state.get('namespaces') or lab.procs().records:
        lab.down()


def start_computes(s, procs, lab):
    """The relay, a tap agent and a libvirt nova-compute per lab host, in
    the stack's process table; returns {host: process record}."""
    hosts = sorted(lab.plan['hosts'])
    argv = [s.bin('python'), '-m',
            'nova_netaware.deploy.localstack.libvirt.ctlproxy']
    for host in hosts:
        argv += ['--ns', lab.plan['hosts'][host]['ns']]
    # nova-compute reads the API database's minimum service versions when
    # [api_database] is set (all-in-one nova.conf, as in devstack): 3306 too;
    # the replica agents on the hypervisors fence on the machine's Redis
    for p in sorted(set(s.ports.values()) | set(s.extra_relay_ports)
                    | {5672, 3306, 6379}):
        argv += ['--port', str(p)]
    procs.start('ctlproxy', argv)
    computes = {}
    for host in hosts:
        ns = lab.plan['hosts'][host]['ns']
        procs.start('tapagent-' + host, [
            'ip', 'netns', 'exec', ns, s.bin('python'), '-m',
            'nova_netaware.deploy.localstack.libvirt.tapagent'])
        conf = compute_conf(s, lab, host)
        name = 'nova-compute-' + host
        computes[host] = procs.start(name, hypervisor.nsenter(
            lab.holder(host), s.bin('nova-compute'), '--config-file',
            s.conf('nova', 'nova.conf'), '--config-file', conf,
            '--log-file', s.log(name)))
    return computes


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
    # os_shutdown_timeout 0: the busybox guest has no ACPI handling, so a
    # clean shutdown (cold migration, stop) would wait the full 60 s
    # shutdown_timeout before Nova destroys it; its state is in RAM anyway
    upload(IMAGE, root, 'ami', kernel_id=kernel.id, ramdisk_id=ramdisk.id,
           os_command_line=guest.IMAGE_CMDLINE, os_shutdown_timeout='0')
    if not conn.compute.find_flavor(FLAVOR):
        conn.compute.create_flavor(name=FLAVOR, ram=96, vcpus=1, disk=1)
