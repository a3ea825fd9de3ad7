"""One libvirt hypervisor per lab host, each in its own network, mount and
UTS namespace.

For host ``H`` (network namespace ``nvl-H``, made by :mod:`.fabric`):

* a *holder* process (``sleep infinity``) owns a private mount and UTS
  namespace: ``unshare -m -u --propagation private`` inside ``ip netns
  exec``. It bind-mounts private copies of /etc/libvirt, /var/lib/libvirt,
  /var/log/libvirt and /var/cache/libvirt from the lab's state directory,
  mounts a private tmpfs on /run (so /run/libvirt, the sockets and pid
  files are private without creating anything in the machine's /run) and
  sets the host name to ``H``;
* ``virtlogd`` and ``libvirtd --listen`` run in the foreground inside the
  holder's namespaces (``nsenter -t <holder> -n -m -u``), so the launcher
  records their pids; libvirtd listens on TCP 16509 (no auth) on the
  host's underlay address only, for migration between hypervisors;
* ``sshd`` listens on the host's underlay address, with the lab's own
  key pair: Nova's libvirt driver copies a cold-migrated (or resized)
  server's disk to the destination host over ssh (``scp``, and ``ssh
  mkdir`` / ``touch`` to test for shared storage), as between real
  compute nodes. The host's ``/etc/ssh/ssh_config`` is a private file
  (bind mount) naming the lab's key; nothing of the machine's ssh set-up
  is used or changed;
* libvirtd.conf gets ``host_uuid`` (a uuid5 of the host name); qemu.conf
  runs QEMU as root without security driver, cgroups or per-VM mount
  namespace (none of which work in a container without systemd).
"""

import os
import shutil
import subprocess
import uuid

from nova_netaware.deploy.localstack.libvirt import guest

LIBVIRT_DIRS = {
    'etc': '/etc/libvirt',
    'lib': '/var/lib/libvirt',
    'log': '/var/log/libvirt',
    'cache': '/var/cache/libvirt',
}

QEMU_CONF = '''
# nova-netaware libvirt lab
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
migration_address = "%(ip)s"
migration_host = "%(ip)s"
'''

LIBVIRTD_CONF = '''
# nova-netaware libvirt lab
listen_tcp = 1
listen_tls = 0
auth_tcp = "none"
listen_addr = "%(ip)s"
host_uuid = "%(uuid)s"
log_outputs = "3:stderr"
'''


def host_uuid(name):
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, 'nvl-hypervisor.' + name))


def prepare_dirs(root, name, ip):
    """Private copies of the libvirt directories under ``root``; returns
    {mountpoint: private dir}."""
    mounts = {}
    for key, target in LIBVIRT_DIRS.items():
        path = os.path.join(root, key)
        shutil.rmtree(path, ignore_errors=True)
        if key == 'etc':
            shutil.copytree(target, path, symlinks=True)
        else:
            os.makedirs(path)
        mounts[target] = path
    etc = mounts['/etc/libvirt']
    autostart = os.path.join(etc, 'qemu', 'networks', 'autostart')
    shutil.rmtree(autostart, ignore_errors=True)
    os.makedirs(autostart)
    values = {'ip': ip, 'uuid': host_uuid(name)}
    with open(os.path.join(etc, 'qemu.conf'), 'a') as f:
        f.write(QEMU_CONF % values)
    with open(os.path.join(etc, 'libvirtd.conf'), 'a') as f:
        f.write(LIBVIRTD_CONF % values)
    return mounts


SSHD_CONF = '''# nova-netaware libvirt lab
ListenAddress %(ip)s
HostKey %(dir)s/ssh_host_ed25519_key
AuthorizedKeysFile %(keys)s
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
# scp (OpenSSH 9) speaks SFTP: Nova copies disks with scp
Subsystem sftp internal-sftp
'''

SSH_CONFIG = '''# nova-netaware libvirt lab (private to the lab host)
Host *
    IdentityFile %(key)s
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    BatchMode yes
    LogLevel ERROR
'''


def lab_key(ssh_dir):
    """The lab's ssh key pair in ``ssh_dir`` (made once per lab); returns
    (private key, authorized_keys)."""
    key = os.path.join(ssh_dir, 'id_ed25519')
    keys = os.path.join(ssh_dir, 'authorized_keys')
    if not os.path.exists(key):
        os.makedirs(ssh_dir, exist_ok=True)
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '',
                        '-C', 'nova-netaware-lab', '-f', key], check=True)
        shutil.copy(key + '.pub', keys)
    return key, keys


def prepare_ssh(root, ip, key, keys):
    """sshd's configuration and host key for one host under ``root``, and
    the host's private ssh_config; returns {mountpoint: file}."""
    d = os.path.join(root, 'ssh')
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f',
                    os.path.join(d, 'ssh_host_ed25519_key')], check=True)
    with open(os.path.join(d, 'sshd_config'), 'w') as f:
        f.write(SSHD_CONF % {'ip': ip, 'dir': d, 'keys': keys})
    with open(os.path.join(d, 'ssh_config'), 'w') as f:
        f.write(SSH_CONFIG % {'key': key})
    return {'/etc/ssh/ssh_config': os.path.join(d, 'ssh_config')}


def sshd_argv(pid, root):
    return nsenter(pid, shutil.which('sshd') or '/usr/sbin/sshd', '-D',
                   '-e', '-f', os.path.join(root, 'ssh', 'sshd_config'))


def holder_argv(ns, name, mounts):
    script = ['set -e']
    for target, path in sorted(mounts.items()):
        script.append('mount --bind %s %s' % (path, target))
    script += ['mount -t tmpfs -o mode=755 nvl-run /run',
               'mkdir -p /run/libvirt /run/lock /run/sshd',
               'hostname %s' % name,
               'exec sleep infinity']
    return ['ip', 'netns', 'exec', ns, 'unshare', '-m', '-u',
            '--propagation', 'private', '--', 'sh', '-c',
            '; '.join(script)]


def nsenter(pid, *argv):
    """argv run in the namespaces (net, mount, UTS) of process ``pid``."""
    return ['nsenter', '-t', str(pid), '-n', '-m', '-u', '--'] + list(argv)


def holder_ready(pid, name):
    res = subprocess.run(nsenter(pid, 'sh', '-c',
                                 'hostname; test -d /run/libvirt'),
                         capture_output=True, text=True, timeout=10)
    return res.returncode == 0 and res.stdout.strip() == name


def virtlogd_argv(pid):
    return nsenter(pid, 'virtlogd', '-p', '/run/libvirt/virtlogd.pid')


def libvirtd_argv(pid):
    return nsenter(pid, 'libvirtd', '--listen', '-p',
                   '/run/libvirt/libvirtd.pid')


def virsh(pid, *args, timeout=60, check=True):
    """Run ``virsh -c qemu:///system ARGS`` on the hypervisor of holder
    ``pid``; returns its stdout."""
    res = subprocess.run(nsenter(pid, 'virsh', '-c', 'qemu:///system',
                                 *args), capture_output=True, text=True,
                         timeout=timeout)
    if check and res.returncode != 0:
        raise subprocess.CalledProcessError(res.returncode, res.args,
                                            res.stdout, res.stderr)
    return res.stdout


def libvirtd_ready(pid):
    try:
        virsh(pid, 'version', timeout=15)
        return True
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return False


def destroy_all(pid):
    """Destroy and undefine every domain of the hypervisor; returns their
    names."""
    names = [n for n in virsh(pid, 'list', '--all', '--name',
                              check=False).split() if n]
    for name in names:
        virsh(pid, 'destroy', name, check=False)
        virsh(pid, 'undefine', name, '--nvram', check=False)
    return names


DOMAIN_XML = '''<domain type='qemu'>
  <name>%(name)s</name>
  <memory unit='MiB'>%(mem)d</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%(kernel)s</kernel>
    <initrd>%(ramdisk)s</initrd>
    <cmdline>%(cmdline)s</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <devices>
    <interface type='bridge'>
      <source bridge='%(bridge)s'/>
      <mac address='%(mac)s'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'/>
    <console type='pty'/>
    <memballoon model='none'/>
  </devices>
</domain>
'''


def domain_xml(name, mac, image, bridge, mem_mib=96):
    """A direct-kernel-boot domain of the lab's guest image on ``bridge``."""
    return DOMAIN_XML % {'name': name, 'mem': mem_mib, 'mac': mac,
                         'kernel': image['kernel'],
                         'ramdisk': image['ramdisk'], 'bridge': bridge,
                         'cmdline': guest.CMDLINE}
