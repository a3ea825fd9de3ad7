"""``nova-netaware-replica-agent replicate``: create the replica of a Nova
server in another cloud, paused, and write the pair's agent configuration.

Steps (each named in progress lines and in the error of a failure):

1. ``resolve``: both clouds from clouds.yaml (openstacksdk), the source
   server, the destination flavor (``--flavor``, else the source's flavor
   name) and network (``--network``, else the source's network names).
2. ``snapshot``: Nova's createImage of the source server
   (``conn.compute.create_server_image``), then wait until the image is
   ``active`` in the source glance.
3. ``transfer``: every image the replica needs -- the snapshot and, for
   AMI-style images, the ``kernel_id`` / ``ramdisk_id`` images it points at
   -- is streamed from the source glance (``conn.image.download_image(...,
   stream=True)``) into a new image of the destination glance
   (``conn.image.create_image(data=<stream>, size=...)``): no local copy,
   MD5 and the glance ``os_hash_algo`` digest are computed over the bytes
   as they pass, compared with the source's ``checksum`` /
   ``os_hash_value`` and with what the destination glance computed. The
   copy is always made, even when both cloud entries reach the same glance,
   so the path is the one two clouds use.
4. ``boot``: the replica server in the destination cloud, on a host chosen
   by its scheduler, or ``--host H`` (microversion 2.74 ``host``: the
   scheduler still checks the host), and wait for ``ACTIVE``.
5. ``pause``: through the ``openstack`` cloud driver
   (:class:`..drivers.openstack_server.OpenStackCloudDriver`), with
   ``--pause-control`` (``api`` by default: this command does not run on
   the replica's hypervisor).
6. ``config``: one ``[replica]`` file per agent of the pair
   (``<service>.active.conf`` for the source side, ``<service>.standby.conf``
   for the replica side) in ``--config-dir``; each is loaded with the
   agent's own configuration loader (:func:`..cmd.make_conf`) before it is
   moved into place.
7. ``finish``: the source snapshot is deleted (``--keep-snapshot`` keeps
   it); the destination images stay (the replica server boots from them).

On a failure everything this command created is removed, newest first
(config files, the replica server, the destination images, the source
snapshot), and :class:`ReplicateError` names the step and the cause.
Objects are also found by their unique names, so an image whose creation
call failed half-way (no ID returned) is removed too.
"""

import hashlib
import io
import os
import secrets
import sys
import time
import uuid

from nova_netaware.replica.errors import ReplicaError

# glance fields that describe the stored bytes or the record itself: not
# copied to the destination image
RESERVED = frozenset((
    'id', 'name', 'status', 'checksum', 'os_hash_algo', 'os_hash_value',
    'size', 'virtual_size', 'created_at', 'updated_at', 'file', 'schema',
    'self', 'owner', 'locations', 'direct_url', 'protected', 'visibility',
    'os_hidden', 'stores', 'tags', 'disk_format', 'container_format',
    'min_disk', 'min_ram', 'owner_specified.openstack.md5',
    'owner_specified.openstack.sha256', 'owner_specified.openstack.object'))
CHUNK = 1 << 20


class ReplicateError(ReplicaError):
    """A step of ``replicate`` failed (after the cleanup ran)."""

    def __init__(self, step, cause, cleanup):
        self.step = step
        self.cause = cause
        self.cleanup = cleanup
        super().__init__('replicate failed at step %r: %s; cleanup: %s' % (
            step, cause, '; '.join(cleanup) or 'nothing to remove'))


class Progress:
    """One line per event on ``stream`` (stderr), rate-limited for
    periodic lines."""

    def __init__(self, stream=None, interval=1.0):
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last = {}
        self.t0 = time.monotonic()

    def __call__(self, step, msg, periodic=False):
        now = time.monotonic()
        if periodic and now - self._last.get(step, -1e9) < self.interval:
            return
        self._last[step] = now
        print('replicate [%6.1f s] %s: %s' % (now - self.t0, step, msg),
              file=self.stream, flush=True)


class _HashingReader(io.RawIOBase):
    """A read-only file over a requests response: hashes and counts the
    bytes as the upload pulls them, and reports the rate."""

    def __init__(self, response, algo, progress, label, size):
        self.it = response.iter_content(CHUNK)
        self.buf = b''
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.digest = hashlib.new(algo)
        self.n = 0
        self.size = size
        self.progress = progress
        self.label = label
        self.t0 = time.monotonic()

    def readable(self):
        return True

    def readinto(self, b):
        if not self.buf:
            try:
                self.buf = next(self.it)
            except StopIteration:
                return 0
            self.md5.update(self.buf)
            self.digest.update(self.buf)
            self.n += len(self.buf)
            dt = max(time.monotonic() - self.t0, 1e-6)
            self.progress('transfer', '%s %d/%s bytes, %.1f MB/s' % (
                self.label, self.n, self.size, self.n / dt / 1e6),
                periodic=True)
        k = min(len(b), len(self.buf))
        b[:k] = self.buf[:k]
        self.buf = self.buf[k:]
        return k


def connect(cloud, config_file):
    from nova_netaware.replica.drivers.openstack_server import _connect
    return _connect(cloud, config_file)


def raw_image(conn, image_id):
    """The image as glance's v2 API returns it (all its properties)."""
    return conn.image.get('/images/%s' % image_id).json()


class Replicator:

    def __init__(self, src_cloud, server_ref, dst_cloud, config_dir,
                 config_file=None, flavor=None, host=None, network=None,
                 name=None, service_name=None, pause_control='api',
                 libvirt_uri='qemu:///system', coordination_url=None,
                 keep_snapshot=False, timeout=600.0, progress=None,
                 src_conn=None, dst_conn=None, wait_guest='auto',
                 guest_port=7001):
        self.src_cloud, self.dst_cloud = src_cloud, dst_cloud
        self.server_ref = server_ref
        self.config_dir = config_dir
        self.config_file = (os.path.abspath(config_file) if config_file
                            else None)
        self.flavor, self.host, self.network = flavor, host, network
        self.name = name
        self.service_name = service_name
        self.pause_control = pause_control
        self.libvirt_uri = libvirt_uri
        self.coordination_url = coordination_url
        self.keep_snapshot = keep_snapshot
        self.timeout = timeout
        if wait_guest not in ('auto', 'yes', 'no'):
            raise ValueError('wait_guest must be auto, yes or no, not %r'
                             % (wait_guest,))
        #: wait until the replica's guest endpoint answers before pausing
        #: it; ``auto``: with the libvirt control (the command then runs
        #: on the replica's hypervisor, which reaches its guest)
        self.wait_guest = (pause_control == 'libvirt'
                           if wait_guest == 'auto' else wait_guest == 'yes')
        self.guest_port = guest_port
        self.progress = progress or Progress()
        self.src, self.dst = src_conn, dst_conn
        self.tag = uuid.uuid4().hex[:8]
        # what this run created: cleaned up newest first on a failure
        self.created = []       # (kind, conn, id or name)
        self.timings = {}
        self.result = {}

    # ------------------------------------------------------------ driver
    def run(self):
        step = 'resolve'
        try:
            for step, fn in (('resolve', self._resolve),
                             ('snapshot', self._snapshot),
                             ('transfer', self._transfer),
                             ('boot', self._boot),
                             ('pause', self._pause),
                             ('config', self._config),
                             ('finish', self._finish)):
                t0 = time.monotonic()
                fn()
                self.timings[step] = round(time.monotonic() - t0, 3)
                self.progress(step, 'done in %.1f s' % self.timings[step])
        except Exception as e:
            cause = '%s: %s' % (type(e).__name__, e)
            self.progress(step, 'FAILED: %s; cleaning up' % cause)
            cleanup = self.cleanup()
            raise ReplicateError(step, cause, cleanup) from e
        self.result['timings_s'] = self.timings
        return self.result

    def cleanup(self):
        done = []
        for kind, conn, ref in reversed(self.created):
            try:
                getattr(self, '_rm_' + kind)(conn, ref)
                done.append('removed %s %s' % (kind, ref))
            except Exception as e:
                done.append('could NOT remove %s %s: %s' % (kind, ref, e))
        self.created = []
        return done

    def _rm_file(self, conn, path):
        if os.path.exists(path):
            os.unlink(path)

    def _rm_server(self, conn, sid):
        s = conn.compute.find_server(sid, ignore_missing=True)
        if s is None:
            return
        conn.compute.delete_server(s, ignore_missing=True)
        conn.compute.wait_for_delete(s, interval=1, wait=self.timeout)

    def _rm_server_named(self, conn, name):
        for s in conn.compute.servers(name='^%s$' % name):
            self._rm_server(conn, s.id)

    def _rm_image(self, conn, iid):
        conn.image.delete_image(iid, ignore_missing=True)

    def _rm_image_named(self, conn, name):
        for img in conn.image.images(name=name):
            conn.image.delete_image(img.id, ignore_missing=True)

    # ------------------------------------------------------------ steps
    def _resolve(self):
        self.src = self.src or connect(self.src_cloud, self.config_file)
        self.dst = self.dst or connect(self.dst_cloud, self.config_file)
        s = self.src.compute.find_server(self.server_ref, ignore_missing=True)
        if s is None:
            s = self.src.compute.find_server(self.server_ref,
                                             ignore_missing=True,
                                             all_projects=True)
        if s is None:
            raise ValueError('no server %r in cloud %s'
                             % (self.server_ref, self.src_cloud))
        self.server = self.src.compute.get_server(s.id)
        self.result['source'] = {'id': s.id, 'name': self.server.name,
                                 'host': self.server.compute_host,
                                 'domain': self.server.instance_name}
        if self.server.status != 'ACTIVE':
            raise ValueError('server %s is %s, not ACTIVE'
                             % (s.id, self.server.status))
        fname = self.flavor or (self.server.flavor or {}).get(
            'original_name') or (self.server.flavor or {}).get('name')
        self.dst_flavor = self.dst.compute.find_flavor(fname,
                                                       ignore_missing=True)
        if self.dst_flavor is None:
            raise ValueError('no flavor %r in cloud %s (--flavor)'
                             % (fname, self.dst_cloud))
        nets = ([self.network] if self.network
                else list((self.server.addresses or {}).keys()))
        self.dst_nets = []
        for n in nets:
            net = self.dst.network.find_network(n, ignore_missing=True)
            if net is None:
                raise ValueError('no network %r in cloud %s (--network)'
                                 % (n, self.dst_cloud))
            self.dst_nets.append(net)
        self.name = self.name or '%s-replica' % self.server.name
        self.service_name = self.service_name or self.server.name
        self.base = 'netaware-replica-%s-%s' % (self.server.name, self.tag)
        self.progress('resolve', 'server %s (%s) on %s -> cloud %s, flavor '
                      '%s, networks %s' % (
                          self.server.name, self.server.id,
                          self.server.compute_host, self.dst_cloud,
                          self.dst_flavor.name,
                          [n.name for n in self.dst_nets] or 'none'))

    def _snapshot(self):
        name = self.base + '-snapshot'
        self.created.append(('image_named', self.src, name))
        t0 = time.monotonic()
        iid = self.server.create_image(self.src.compute, name,
                                       {'netaware_replica_of':
                                        self.server.id})
        self.created.append(('image', self.src, iid))
        self.snapshot_id = iid
        deadline = t0 + self.timeout
        while True:
            img = self.src.image.get_image(iid)
            self.progress('snapshot', 'image %s %s (%s bytes)'
                          % (iid, img.status, img.size), periodic=True)
            if img.status == 'active':
                break
            if img.status in ('killed', 'deleted', 'deactivated'):
                raise RuntimeError('snapshot image %s became %s'
                                   % (iid, img.status))
            if time.monotonic() > deadline:
                raise TimeoutError('snapshot image %s still %s after %.0f s'
                                   % (iid, img.status, self.timeout))
            time.sleep(0.5)
        self.result['snapshot'] = {'id': iid, 'size': img.size}

    def _copy_image(self, iid, name, rewrite=None):
        """Stream image ``iid`` from the source glance into a new image
        ``name`` of the destination glance; return its record and a dict
        of figures."""
        src = raw_image(self.src, iid)
        if src.get('status') != 'active':
            raise RuntimeError('source image %s is %s' % (iid,
                                                          src.get('status')))
        algo = src.get('os_hash_algo') or 'sha512'
        meta = {k: v for k, v in src.items() if k not in RESERVED
                and not k.startswith('os_glance')}   # glance-owned
        meta.update(rewrite or {})
        meta['netaware_copied_from'] = '%s:%s' % (self.src_cloud, iid)
        label = '%s (%s)' % (name, iid)
        self.progress('transfer', '%s: %s bytes' % (label, src.get('size')))
        self.created.append(('image_named', self.dst, name))
        t0 = time.monotonic()
        resp = self.src.image.download_image(iid, stream=True,
                                             chunk_size=CHUNK)
        reader = _HashingReader(resp, algo, self.progress, label,
                                src.get('size'))
        try:
            img = self.dst.image.create_image(
                name, data=io.BufferedReader(reader, CHUNK),
                size=src.get('size'),
                disk_format=src.get('disk_format'),
                container_format=src.get('container_format'),
                min_disk=src.get('min_disk') or 0,
                min_ram=src.get('min_ram') or 0,
                allow_duplicates=True, disable_vendor_agent=False,
                meta=meta, wait=True, timeout=self.timeout)
        finally:
            resp.close()
        self.created.append(('image', self.dst, img.id))
        secs = time.monotonic() - t0
        img = self.dst.image.get_image(img.id)
        got = {'size': reader.n, 'checksum': reader.md5.hexdigest(),
               'os_hash_value': reader.digest.hexdigest()}
        bad = [k for k in got
               if src.get(k) is not None and got[k] != src.get(k)]
        if bad:
            raise RuntimeError('bytes read from the source glance do not '
                               'match image %s: %s' % (iid, ', '.join(
                                   '%s %s != %s' % (k, got[k], src.get(k))
                                   for k in bad)))
        dst_vals = {'size': img.size, 'checksum': img.checksum,
                    'os_hash_value': img.hash_value}
        bad = [k for k in got if dst_vals[k] is not None
               and dst_vals[k] != got[k]]
        if img.status != 'active' or bad:
            raise RuntimeError('destination image %s (%s): %s' % (
                img.id, img.status, ', '.join(
                    '%s %s != %s' % (k, dst_vals[k], got[k]) for k in bad)))
        fig = {'source_id': iid, 'id': img.id, 'bytes': reader.n,
               'seconds': round(secs, 3),
               'MB_per_s': round(reader.n / max(secs, 1e-6) / 1e6, 2),
               'checksum': got['checksum'], 'os_hash_algo': algo,
               'os_hash_value': got['os_hash_value']}
        self.progress('transfer', '%s -> %s: %d bytes in %.2f s (%.1f MB/s)'
                      ', checksum %s and %s match' % (
                          label, img.id, reader.n, secs, fig['MB_per_s'],
                          got['checksum'], algo))
        return img, fig

    def _transfer(self):
        src = raw_image(self.src, self.snapshot_id)
        rewrite, figs = {}, []
        for key in ('kernel_id', 'ramdisk_id'):
            if src.get(key):
                img, fig = self._copy_image(
                    src[key], '%s-%s' % (self.base, key.split('_')[0]))
                rewrite[key] = img.id
                fig['role'] = key
                figs.append(fig)
        img, fig = self._copy_image(self.snapshot_id, self.base, rewrite)
        fig['role'] = 'snapshot'
        figs.append(fig)
        self.dst_image = img
        total = sum(f['bytes'] for f in figs)
        secs = sum(f['seconds'] for f in figs)
        self.result['transfer'] = {
            'images': figs, 'bytes': total, 'seconds': round(secs, 3),
            'MB_per_s': round(total / max(secs, 1e-6) / 1e6, 2)}

    def _boot(self):
        attrs = {'name': self.name, 'image_id': self.dst_image.id,
                 'flavor_id': self.dst_flavor.id,
                 'networks': ([{'uuid': n.id} for n in self.dst_nets]
                              or 'none'),
                 'metadata': {'netaware_replica_of': '%s:%s' % (
                     self.src_cloud, self.server.id)}}
        if self.host:
            attrs['host'] = self.host
        self.created.append(('server_named', self.dst, self.name))
        t0 = time.monotonic()
        s = self.dst.compute.create_server(**attrs)
        self.created.append(('server', self.dst, s.id))
        deadline = t0 + self.timeout
        while True:
            s = self.dst.compute.get_server(s.id)
            self.progress('boot', 'server %s %s task %s host %s'
                          % (s.id, s.status, s.task_state, s.compute_host),
                          periodic=True)
            if s.status == 'ACTIVE' and s.task_state is None:
                break
            if s.status == 'ERROR':
                raise RuntimeError('replica server %s is ERROR: %s'
                                   % (s.id, (s.fault or {}).get('message')))
            if time.monotonic() > deadline:
                raise TimeoutError('replica server %s still %s after %.0f s'
                                   % (s.id, s.status, self.timeout))
            time.sleep(0.5)
        self.replica = s
        self.result['replica'] = {'id': s.id, 'name': s.name,
                                  'host': s.compute_host,
                                  'domain': s.instance_name}
        if self.wait_guest:
            self._wait_guest(s, deadline)

    def _wait_guest(self, server, deadline):
        """Nova says ACTIVE once the domain runs, not once the guest has
        booted: a replica paused then is paused mid-boot, and its first
        activation finds no state endpoint (seen on the two-cloud stack:
        the import timed out). Wait until the endpoint answers ``stats``."""
        from nova_netaware.replica.drivers import DriverError
        from nova_netaware.replica.drivers.guest_endpoint import \
            GuestEndpointStateDriver
        conf = _replica_conf(guest_endpoint_host=self._address(server),
                             guest_endpoint_port=self.guest_port,
                             state_timeout=5.0)
        drv = GuestEndpointStateDriver(conf)
        t0 = time.monotonic()
        while True:
            try:
                drv.stats()
                break
            except DriverError as e:
                if time.monotonic() > deadline:
                    raise TimeoutError('the replica\'s guest endpoint %s:%d '
                                       'did not answer: %s' % (
                                           drv.addr + (e,)))
                self.progress('boot', 'waiting for the guest endpoint %s:%d: '
                              '%s' % (drv.addr + (e,)), periodic=True)
                time.sleep(1.0)
        self.progress('boot', 'guest endpoint %s:%d answers (%.1f s after '
                      'ACTIVE)' % (drv.addr + (time.monotonic() - t0,)))

    def _driver_conf(self, cloud, server_id, control):
        return _replica_conf(cloud_driver='openstack', openstack_cloud=cloud,
                             openstack_config_file=self.config_file,
                             openstack_server=server_id,
                             openstack_control=control,
                             libvirt_uri=self.libvirt_uri)

    def _pause(self):
        from nova_netaware.replica.drivers.openstack_server import \
            OpenStackCloudDriver
        drv = OpenStackCloudDriver(
            self._driver_conf(self.dst_cloud, self.replica.id,
                              self.pause_control), None, conn=self.dst)
        t0 = time.monotonic()
        drv.pause(self.replica.name)
        secs = time.monotonic() - t0
        if drv.is_running(self.replica.name) is not False:
            raise RuntimeError('replica %s still runs after pause'
                               % self.replica.id)
        self.result['pause'] = {'control': self.pause_control,
                                'seconds': round(secs, 3),
                                'api_view': list(drv.api_view())}

    def _port(self, conn, server):
        try:
            ports = list(conn.network.ports(device_id=server.id))
        except Exception:   # a cloud without the ports API
            return {}
        if len(ports) != 1:
            return {}
        p = ports[0]
        return {'guest_interface': 'tap' + p.id[:11],
                'guest_mac': p.mac_address}

    @staticmethod
    def _address(server):
        for addrs in (server.addresses or {}).values():
            for a in addrs:
                if a.get('version', 4) == 4:
                    return a['addr']
        return None

    def _hypervisor_ip(self, conn, host):
        try:
            for h in conn.compute.hypervisors(details=True):
                if h.name == host or getattr(h, 'service_details', {}).get(
                        'host') == host:
                    return h.host_ip
        except Exception:   # not an admin: the operator fills peer_host
            return None
        return None

    def _config(self):
        os.makedirs(self.config_dir, exist_ok=True)
        key = secrets.token_hex(24)
        src = self.src.compute.get_server(self.server.id)
        sides = {
            'active': (self.src_cloud, self.src, src),
            'standby': (self.dst_cloud, self.dst, self.replica)}
        ips = {r: self._hypervisor_ip(c, s.compute_host)
               for r, (_, c, s) in sides.items()}
        from nova_netaware.replica import cmd as cmd_mod
        paths = {}
        for role, (cloud, conn, server) in sides.items():
            other = 'standby' if role == 'active' else 'active'
            opts = {
                'agent_id': '%s-%s-%s' % (self.service_name, cloud,
                                          server.compute_host),
                'service_name': self.service_name,
                'initial_role': role,
                'cloud_driver': 'openstack',
                'openstack_cloud': cloud,
                'openstack_config_file': self.config_file,
                'openstack_server': server.id,
                'openstack_control': self.pause_control,
                'libvirt_uri': self.libvirt_uri,
                'copy_name': server.name,
                'coordination_url': self.coordination_url,
                'peer_host': ips[other],
                'peer_hmac_key': key,
                'guest_endpoint_host': self._address(server),
                'state_dir': '/var/lib/nova-netaware/replica/%s'
                             % self.service_name,
                'control_socket': '/run/nova-netaware/replica-%s.sock'
                                  % self.service_name,
            }
            opts.update(self._port(conn, server))
            lines = ['# written by nova-netaware-replica-agent replicate: '
                     '%s:%s -> %s:%s (%s side, on hypervisor %s)' % (
                         self.src_cloud, self.server.id, self.dst_cloud,
                         self.replica.id, role, server.compute_host),
                     '[replica]']
            lines += ['%s = %s' % (k, v) for k, v in opts.items()
                      if v is not None]
            path = os.path.join(self.config_dir, '%s.%s.conf'
                                % (self.service_name, role))
            if os.path.exists(path):
                raise FileExistsError('%s exists: not overwritten' % path)
            tmp = path + '.tmp-' + self.tag
            self.created.append(('file', None, tmp))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, 'w') as f:
                f.write('\n'.join(lines) + '\n')
            # the agent's own loader: types, choices, required options
            cmd_mod.make_conf(['--config-file', tmp, 'status'])
            self.created.append(('file', None, path))
            os.rename(tmp, path)
            paths[role] = path
        self.result['config'] = paths

    def _finish(self):
        if not self.keep_snapshot:
            self.src.image.delete_image(self.snapshot_id, ignore_missing=True)
            self.progress('finish', 'source snapshot %s deleted'
                          % self.snapshot_id)
        self.result['snapshot']['kept'] = self.keep_snapshot
        self.created = []


def _replica_conf(**replica):
    """A ``[replica]`` configuration made of ``replica`` alone (no files,
    no command line), for the drivers this command uses itself."""
    from oslo_config import cfg
    from nova_netaware.replica import conf as conf_mod
    conf = cfg.ConfigOpts()
    conf_mod.register_opts(conf)
    replica.setdefault('agent_id', 'replicate')
    for k, v in replica.items():
        conf.set_override(k, v, group='replica')
    conf([], project='nova-netaware', default_config_files=[],
         default_config_dirs=[])
    return conf
