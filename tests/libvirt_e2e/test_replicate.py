"""``nova-netaware-replica-agent replicate`` on the libvirt local stack,
through the real CLI.

ONE CLOUD UNDER TWO NAMES: the two-cloud local stack does not exist yet, so
the test writes a clouds.yaml whose ``cloud-a`` and ``cloud-b`` are both the
stack's one cloud (same keystone, glance, nova). The command still takes
the two-cloud path: the snapshot is downloaded from "cloud-a"'s glance and
uploaded as new images into "cloud-b"'s glance (the bytes really cross the
HTTP API twice), and the replica boots through "cloud-b"'s Nova. What this
does not show: distinct endpoints, credentials and an inter-cloud link.

1. replicate a real guest (``--host`` another compute): the replica is
   PAUSED in Nova's status and in its libvirtd's domain state; the images'
   bytes (downloaded again) hash to the source images' checksums; the two
   [replica] files exist and load with the agent's config loader. In the
   same run a plain glance download to a file plus an upload of the same
   snapshot bytes is timed, beside the command's streamed transfer.
2. the failure path: ``cloud-ro`` is the same stack with a user that has
   only the ``reader`` role in the project; glance's default policy refuses
   it ``add_image`` (403), so the transfer step fails after the snapshot was
   taken. The command exits non-zero, names the step, and the images and
   servers listed before and after (admin, all projects) are the same.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

from tests.e2e.conftest import ROOT
from tests.libvirt_e2e.conftest import TIMINGS
from tests.libvirt_e2e.test_libvirt_migrate import boot

from nova_netaware.deploy.localstack import settings as ls
from nova_netaware.deploy.localstack.libvirt import hypervisor

SRC_HOST, DST_HOST = 'lvcmp1', 'lvcmp2'


@pytest.fixture(scope='module')
def clouds(lvstack, tmp_path_factory):
    conn = lvstack.conn
    with open(lvstack.clouds_yaml) as f:
        base = yaml.safe_load(f)['clouds'][ls.CLOUD]
    ro = json.loads(json.dumps(base))
    project = conn.identity.find_project(base['auth']['project_name'],
                                         ignore_missing=False)
    user = conn.identity.create_user(name='replica-reader',
                                     password='reader-pass-1234',
                                     default_project_id=project.id)
    reader = conn.identity.find_role('reader', ignore_missing=False)
    conn.identity.assign_project_role_to_user(project, user, reader)
    ro['auth'].update(username='replica-reader', password='reader-pass-1234')
    path = tmp_path_factory.mktemp('clouds') / 'clouds.yaml'
    path.write_text(yaml.safe_dump({'clouds': {
        'cloud-a': base, 'cloud-b': base, 'cloud-ro': ro}}))
    yield str(path)
    conn.identity.delete_user(user, ignore_missing=True)


@pytest.fixture(scope='module')
def source(lvstack):
    sid, ip = boot(lvstack, 'repl-src', SRC_HOST)
    yield sid
    lvstack.osc('server', 'delete', '--wait', sid, check=False, timeout=300)


def _replicate(*args):
    argv = [sys.executable, '-m', 'nova_netaware.replica.cmd', 'replicate']
    argv += list(args)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        x for x in (ROOT, os.environ.get('PYTHONPATH')) if x),
        PYTHONWARNINGS='ignore')
    t0 = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=1200,
                         env=env)
    return res, time.monotonic() - t0


def _snapshot_of_world(conn):
    images = sorted(i.id for i in conn.image.images())
    servers = sorted(s.id for s in conn.compute.servers(all_projects=True))
    return images, servers


def _sha512(conn, image_id):
    h, n = hashlib.sha512(), 0
    resp = conn.image.download_image(image_id, stream=True)
    for chunk in resp.iter_content(1 << 20):
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


def test_replicate_real_guest(lvstack, clouds, source, tmp_path):
    conn = lvstack.conn
    cfgdir = tmp_path / 'pair'
    res, wall = _replicate('--from', 'cloud-a:%s' % source, '--to', 'cloud-b',
                           '--host', DST_HOST, '--config-dir', str(cfgdir),
                           '--os-config-file', clouds, '--keep-snapshot',
                           '--service-name', 'repl')
    print(res.stderr)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    replica = out['replica']
    dst_images = [f['id'] for f in out['transfer']['images']]
    snap = out['snapshot']['id']
    try:
        # progress on stderr for the long steps
        err = res.stderr
        for step in ('snapshot:', 'transfer:', 'boot:', 'pause:'):
            assert 'replicate [' in err and step in err, err
        assert 'MB/s' in err
        # paused: Nova's status (api control) and libvirt's domain state
        s = conn.compute.get_server(replica['id'])
        assert (s.status, s.power_state, s.compute_host) == (
            'PAUSED', 3, DST_HOST), s
        assert hypervisor.virsh(lvstack.lab.holder(DST_HOST), 'domstate',
                                s.instance_name).strip() == 'paused'
        # the bytes: every destination image hashes (downloaded again) to
        # its source image's glance checksum
        for f in out['transfer']['images']:
            src = conn.image.get_image(f['source_id'])
            dst = conn.image.get_image(f['id'])
            digest, n = _sha512(conn, f['id'])
            assert (digest, n) == (src.hash_value, src.size), f
            assert dst.checksum == src.checksum and dst.id != src.id
        assert conn.image.get_image(dst_images[-1]).kernel_id == \
            dst_images[0]
        # the config files load with the agent's loader
        from nova_netaware.replica import cmd as cmd_mod
        sides = {}
        for role in ('active', 'standby'):
            path = out['config'][role]
            assert os.path.basename(path) == 'repl.%s.conf' % role
            assert oct(os.stat(path).st_mode & 0o777) == '0o600'
            c = cmd_mod.make_conf(['--config-file', path, 'status']).replica
            sides[role] = c
            assert c.cloud_driver == 'openstack'
            assert c.initial_role == role
            assert c.openstack_config_file == clouds
            assert c.service_name == 'repl'
        assert sides['active'].openstack_cloud == 'cloud-a'
        assert sides['active'].openstack_server == source
        assert sides['standby'].openstack_cloud == 'cloud-b'
        assert sides['standby'].openstack_server == replica['id']
        assert sides['active'].peer_hmac_key == sides['standby'].peer_hmac_key
        assert sides['standby'].guest_interface.startswith('tap')
        t = out['timings_s']
        TIMINGS.update({
            'replicate total (s)': round(wall, 1),
            'replicate snapshot (s)': t['snapshot'],
            'replicate transfer (s)': t['transfer'],
            'replicate transfer bytes': out['transfer']['bytes'],
            'replicate transfer MB/s': out['transfer']['MB_per_s'],
            'replicate boot (s)': t['boot'],
            'replicate pause (s)': t['pause'],
            'replicate pause api call (s)': out['pause']['seconds']})
        # baseline, same run: plain glance download to a file, then upload
        # of that file, of the same snapshot bytes
        with tempfile.NamedTemporaryFile(dir=str(tmp_path)) as tmpf:
            t0 = time.monotonic()
            conn.image.download_image(snap, output=tmpf.name)
            t_down = time.monotonic() - t0
            size = os.path.getsize(tmpf.name)
            src = conn.image.get_image(snap)
            t0 = time.monotonic()
            img = conn.image.create_image(
                'replicate-baseline', filename=tmpf.name,
                disk_format=src.disk_format,
                container_format=src.container_format,
                allow_duplicates=True, wait=True)
            t_up = time.monotonic() - t0
            conn.image.delete_image(img.id)
        snapfig = [f for f in out['transfer']['images']
                   if f['role'] == 'snapshot'][0]
        TIMINGS.update({
            'snapshot bytes': size,
            'replicate streamed snapshot copy (s)': snapfig['seconds'],
            'baseline download (s)': round(t_down, 3),
            'baseline upload (s)': round(t_up, 3),
            'baseline download+upload MB/s': round(
                size / (t_down + t_up) / 1e6, 2)})
    finally:
        conn.compute.delete_server(replica['id'], ignore_missing=True)
        # interval 1: under gunicorn's 2 s keep-alive (docs/local-stack.md)
        conn.compute.wait_for_delete(conn.compute.get_server(replica['id']),
                                     interval=1, wait=300)
        for i in dst_images + [snap]:
            conn.image.delete_image(i, ignore_missing=True)


def test_upload_refused_leaves_nothing(lvstack, clouds, source, tmp_path):
    conn = lvstack.conn
    before = _snapshot_of_world(conn)
    cfgdir = tmp_path / 'pair'
    res, _ = _replicate('--from', 'cloud-a:%s' % source, '--to', 'cloud-ro',
                        '--config-dir', str(cfgdir), '--os-config-file',
                        clouds)
    print(res.stderr)
    assert res.returncode != 0, res.stdout + res.stderr
    assert "replicate failed at step 'transfer'" in res.stderr, res.stderr
    assert '403' in res.stderr or 'Forbidden' in res.stderr, res.stderr
    assert 'removed image' in res.stderr, res.stderr
    assert not cfgdir.exists() or not os.listdir(cfgdir)
    after = _snapshot_of_world(conn)
    assert after == before
