"""Build the guest image from Debian packages only, and cache it.

The guest is booted by direct kernel boot (no disk):

* kernel: Debian's ``/boot/vmlinuz-<version>`` (package linux-image-amd64);
* initramfs: a gzip'ed newc cpio holding ``/bin/busybox`` (package
  busybox-static), the virtio NIC modules of the same kernel with their
  dependencies (from ``modules.dep``), the scripts of :mod:`.guest` and
  ``/bin/na-state``, the state endpoint, compiled here from ``na_state.c``
  with ``gcc -static`` (no shell on that path: under QEMU TCG every
  process spawn costs milliseconds, see docs/replica.md).

The cpio is written here (no ``cpio`` or ``mknod`` needed: the
``/dev/console`` node is a cpio entry). The result is cached under
``$NETAWARE_IMAGE_CACHE`` (default ``~/.cache/nova-netaware/guest``) in a
directory named after a hash of every input, so a rebuild happens only
when the kernel, busybox, the scripts, ``na_state.c`` or gcc change.
"""

import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import subprocess
import tempfile

from nova_netaware.core.exceptions import NetawareError
from nova_netaware.deploy.localstack.libvirt import guest

BUSYBOX = '/bin/busybox'
MODULES = ('virtio_pci', 'virtio_net')
#: the state endpoint's source (built into /bin/na-state)
STATE_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'na_state.c')
CC_FLAGS = ('-static', '-Os', '-s', '-Wall')


class ImageError(NetawareError):
    """The guest image cannot be built; the message says what is missing."""


def kernel_version(boot='/boot', modules='/lib/modules'):
    """The newest Debian kernel that has both a vmlinuz and modules."""
    found = []
    for name in os.listdir(boot) if os.path.isdir(boot) else ():
        if name.startswith('vmlinuz-'):
            ver = name[len('vmlinuz-'):]
            if os.path.isdir(os.path.join(modules, ver)):
                found.append(ver)
    if not found:
        raise ImageError('no kernel with modules in %s and %s: apt-get '
                         'install --no-install-recommends linux-image-amd64'
                         % (boot, modules))
    return sorted(found)[-1]


def module_order(moddir, names=MODULES):
    """The .ko paths (relative to ``moddir``) to insmod, dependencies
    first, skipping modules built into the kernel."""
    deps = {}
    with open(os.path.join(moddir, 'modules.dep')) as f:
        for line in f:
            mod, _, rest = line.partition(':')
            deps[mod] = rest.split()
    by_name = {}
    for path in deps:
        base = os.path.basename(path).split('.ko')[0].replace('-', '_')
        by_name[base] = path
    order = []

    def visit(path):
        if path in order:
            return
        for dep in reversed(deps[path]):
            visit(dep)
        order.append(path)

    for name in names:
        if name in by_name:
            visit(by_name[name])
    return order


class Cpio(object):
    """A newc ("070701") cpio archive writer."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name, mode, data=b'', rdev=(0, 0)):
        name_b = name.encode() + b'\0'
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0],
                  rdev[1], len(name_b), 0]
        self.ino += 1
        self.buf.write(b'070701' + b''.join(b'%08x' % v for v in fields))
        self.buf.write(name_b)
        self.buf.write(b'\0' * (-(110 + len(name_b)) % 4))
        self.buf.write(data)
        self.buf.write(b'\0' * (-len(data) % 4))

    def dir(self, name):
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def chardev(self, name, major, minor):
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self):
        self._entry('TRAILER!!!', 0)
        return self.buf.getvalue()


def _gcc():
    gcc = shutil.which('gcc')
    if not gcc:
        raise ImageError('gcc is missing: the guest\'s state endpoint '
                         '(%s) is compiled with gcc -static when the image '
                         'is built; apt-get install gcc libc6-dev'
                         % STATE_SOURCE)
    return gcc


def gcc_version():
    """``gcc -dumpfullversion`` and the target (part of the cache key)."""
    gcc = _gcc()
    out = [subprocess.run([gcc, flag], capture_output=True, text=True,
                          check=False).stdout.strip()
           for flag in ('-dumpfullversion', '-dumpmachine')]
    return ' '.join(out)


def build_state_helper(out, source=STATE_SOURCE):
    """Compile the state endpoint to the static executable ``out``."""
    gcc = _gcc()
    p = subprocess.run([gcc, *CC_FLAGS, '-o', out, source],
                       capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise ImageError('gcc could not build %s (exit %d; is libc6-dev '
                         'installed? static linking needs libc.a):\n%s'
                         % (source, p.returncode, p.stderr.strip()))
    return out


def _read_module(path):
    with open(path, 'rb') as f:
        data = f.read()
    if path.endswith('.xz'):
        data = lzma.decompress(data)
    return data


def initramfs(version, modules_root='/lib/modules', busybox=BUSYBOX):
    """The gzip'ed initramfs bytes."""
    moddir = os.path.join(modules_root, version)
    if not os.path.exists(busybox):
        raise ImageError('%s is missing: apt-get install busybox-static'
                         % busybox)
    cpio = Cpio()
    for d in ('bin', 'dev', 'etc', 'lib', 'lib/modules', 'proc', 'sys',
              'tmp', 'run', 'www', 'www/cgi-bin'):
        cpio.dir(d)
    cpio.chardev('dev/console', 5, 1)
    with open(busybox, 'rb') as f:
        cpio.file('bin/busybox', f.read(), 0o755)
    order = []
    for path in module_order(moddir):
        name = os.path.basename(path)
        if name.endswith('.xz'):
            name = name[:-3]
        cpio.file('lib/modules/' + name,
                  _read_module(os.path.join(moddir, path)))
        order.append(name)
    cpio.file('etc/modules.order', ('\n'.join(order) + '\n').encode())
    for path, (mode, text) in sorted(guest.files().items()):
        cpio.file(path, text.encode(), mode)
    with tempfile.TemporaryDirectory(prefix='na-state-') as tmp:
        exe = build_state_helper(os.path.join(tmp, 'na-state'))
        with open(exe, 'rb') as f:
            cpio.file('bin/na-state', f.read(), 0o755)
    return gzip.compress(cpio.finish(), mtime=0)


def _inputs_hash(version, modules_root, busybox):
    h = hashlib.sha256()
    h.update(version.encode())
    for path in (busybox, os.path.join(modules_root, version,
                                       'modules.dep')):
        with open(path, 'rb') as f:
            h.update(hashlib.sha256(f.read()).digest())
    for path, (mode, text) in sorted(guest.files().items()):
        h.update(('%s %o\n' % (path, mode)).encode() + text.encode())
    with open(STATE_SOURCE, 'rb') as f:
        h.update(f.read())
    h.update(('%s %s\n' % (gcc_version(), ' '.join(CC_FLAGS))).encode())
    with open(__file__, 'rb') as f:
        h.update(f.read())
    return h.hexdigest()[:16]


def cache_dir():
    return os.environ.get('NETAWARE_IMAGE_CACHE') or os.path.expanduser(
        '~/.cache/nova-netaware/guest')


def build(cache=None, boot='/boot', modules_root='/lib/modules',
          busybox=BUSYBOX):
    """Build (or reuse) the guest image; returns ``{'kernel': path,
    'ramdisk': path, 'version': kernel version}``."""
    version = kernel_version(boot, modules_root)
    key = _inputs_hash(version, modules_root, busybox)
    out = os.path.join(cache or cache_dir(), key)
    kernel = os.path.join(out, 'vmlinuz')
    ramdisk = os.path.join(out, 'initrd.img')
    if not (os.path.exists(kernel) and os.path.exists(ramdisk)):
        tmp = out + '.tmp'
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        shutil.copyfile(os.path.join(boot, 'vmlinuz-' + version),
                        os.path.join(tmp, 'vmlinuz'))
        with open(os.path.join(tmp, 'initrd.img'), 'wb') as f:
            f.write(initramfs(version, modules_root, busybox))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    return {'kernel': kernel, 'ramdisk': ramdisk, 'version': version}
