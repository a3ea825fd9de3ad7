"""The real guest's state endpoint (``na_state.c``) and its numbered-request
CGI, run on this machine instead of in the guest: the endpoint compiled the
way the image build compiles it, on a free port with its state under a
temporary root; ``/cgi-bin/req`` run by busybox ``sh`` on the same state;
the shipped ``guest_endpoint`` driver as the client. No root, no QEMU.

The guest bed (tests/replica_guest/test_guest_state.py) runs the same
protocol inside the real guest.
"""

import hashlib
import json
import os
import socket
import subprocess
import time

import pytest

from nova_netaware.deploy.localstack.libvirt import guest
from nova_netaware.deploy.localstack.libvirt import image
from nova_netaware.replica.drivers import DriverError, StateBlob
from nova_netaware.replica.drivers.guest_endpoint import \
    GuestEndpointStateDriver
from nova_netaware.replica.lab.portctl import build_conf
from tests.ports import free_port

APPLETS = ('sh', 'mkdir', 'rmdir', 'usleep', 'cat', 'hostname')


class Endpoint:

    def __init__(self, tmp):
        self.root = str(tmp / 'root')
        os.makedirs(os.path.join(self.root, 'st', 'c'))
        for f in ('counter', 'total', 'epoch'):
            self._write('st/' + f, '0\n')
        self._write('st/log', '')
        self._write('st.imports', '0\n')
        exe = self.exe = image.build_state_helper(str(tmp / 'na-state'))
        self.bin = str(tmp / 'bin')
        os.makedirs(self.bin)
        for a in APPLETS:
            os.symlink(image.BUSYBOX, os.path.join(self.bin, a))
        self.port = free_port()
        self.proc = subprocess.Popen([exe, str(self.port), self.root])
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(('127.0.0.1', self.port), 1).close()
                break
            except OSError:
                assert self.proc.poll() is None, 'na-state exited'
                assert time.monotonic() < deadline, 'na-state not listening'
                time.sleep(0.05)
        self.req_script = str(tmp / 'req')
        with open(self.req_script, 'w') as f:
            f.write(guest.CGI_REQ.replace('. /bin/na-lib', '. ' + str(
                tmp / 'na-lib')))
        with open(str(tmp / 'na-lib'), 'w') as f:
            f.write(guest.LIB)
        self.driver = GuestEndpointStateDriver(build_conf({
            'agent_id': 'test', 'guest_endpoint_host': '127.0.0.1',
            'guest_endpoint_port': self.port, 'state_timeout': 20.0}))

    def _write(self, rel, text):
        with open(os.path.join(self.root, rel), 'w') as f:
            f.write(text)

    def req_proc(self, c, n):
        env = {'PATH': self.bin, 'NA_ROOT': self.root,
               'QUERY_STRING': 'c=%s&n=%d' % (c, n)}
        return subprocess.Popen([os.path.join(self.bin, 'sh'),
                                 self.req_script], env=env,
                                stdout=subprocess.PIPE, text=True)

    def req(self, c, n):
        p = self.req_proc(c, n)
        out, _ = p.communicate(timeout=30)
        return out.strip().split('\n')[-1]

    def raw(self, data, shut=False):
        with socket.create_connection(('127.0.0.1', self.port), 20) as s:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
            return json.loads(s.makefile('rb').readline())

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def ep(tmp_path):
    if not os.path.exists(image.BUSYBOX):
        pytest.skip('busybox-static is not installed')
    e = Endpoint(tmp_path)
    try:
        yield e
    finally:
        e.stop()


def test_requests_export_import_round_trip(ep):
    d = ep.driver
    assert ep.req('bob', 1) == 'ok bob 1 total 1 client 1 last 1 applied'
    assert ep.req('al', 1).endswith(' applied')
    assert ep.req('al', 3).endswith('client 2 last 3 gap')
    assert ep.req('al', 2).endswith(' dup')
    st = d.stats()
    assert st['clients'] == {'al': [3, 2, 1, 1], 'bob': [1, 1, 0, 0]}
    assert (st['total'], st['dups'], st['gaps'], st['log_lines']) == \
        (3, 1, 1, 3)
    assert d._call({'op': 'log'})[0]['log'] == ['bob 1', 'al 1', 'al 3']
    b = d.export_state('g')
    # exactly SHA-256 of the served bytes; clients sorted bytewise
    assert b.sha256 == hashlib.sha256(b.data).hexdigest()
    assert b.data == (b'netaware-guest-state 1\nepoch 0\ncounter 0\n'
                      b'total 3\nclient al 3 2 1 1\nclient bob 1 1 0 0\n'
                      b'log bob 1\nlog al 1\nlog al 3\n')
    assert d.stats()['frozen'] is True
    assert d.import_state('g', b, 4) == b.sha256
    st = d.stats()
    assert st['frozen'] is False and st['epoch'] == 4 and st['imports'] == 1
    assert ep.req('bob', 2).endswith('total 4 client 2 last 2 applied')


def test_sha256_at_every_padding_length(ep):
    """States of 64 consecutive sizes: every SHA-256 padding case; the
    endpoint refuses an import whose checksum it computes differently."""
    sizes = set()
    for k in range(1, 66):
        data = ('netaware-guest-state 1\nepoch 1\ncounter 0\ntotal 1\n'
                'client %s 1 1 0 0\nlog y 1\n' % ('x' * k)).encode()
        blob = StateBlob(data)
        assert ep.driver.import_state('g', blob, 1) == \
            hashlib.sha256(data).hexdigest()
        assert ep.driver.export_state('g').data == data
        sizes.add(len(data) % 64)
    assert len(sizes) == 64


def test_big_state_round_trip(ep):
    names = sorted('c%04d' % i for i in range(300))
    lines = ['netaware-guest-state 1', 'epoch 2', 'counter 5',
             'total 6000']
    lines += ['client %s 20 20 0 0' % c for c in names]
    lines += ['log %s %d' % (c, k) for k in range(1, 21) for c in names]
    data = ('\n'.join(lines) + '\n').encode()
    assert ep.driver.import_state('g', StateBlob(data), 2)
    out = ep.driver.export_state('g')
    assert out.data == data and len(data) > 65536


def test_refusals_change_nothing(ep):
    d = ep.driver
    ep.req('ck', 1)
    blob = d.export_state('g')
    d.import_state('g', blob, 3)
    blob = d.export_state('g')
    bad = [
        (blob.data.replace(b'client ck 1 1 0 0', b'client ck 1 2 0 0'),
         blob.sha256, 'checksum mismatch'),
        # a duplicated or reordered line loads the same state twice or
        # differently serialised: the checksum of what was loaded differs
        (blob.data + b'log ck 1\n', blob.sha256, 'checksum mismatch'),
        (b'not a state\n', None, r'bad state blob: bad header \(line 1\)'),
        (blob.data + b'client a b 1 1 1\n', None,
         r'bad state blob: bad line \(line 7\)'),
        (blob.data + b'epoch 9\n', None, r'bad state blob: twice epoch'),
        (b'netaware-guest-state 1\nepoch 1\n', None,
         'bad state blob: epoch, counter or total missing'),
    ]
    for data, sha, match in bad:
        b = StateBlob(data, sha or hashlib.sha256(data).hexdigest(),
                      verify=False)
        with pytest.raises(DriverError, match=match):
            d.import_state('g', b, 3)
    with pytest.raises(DriverError, match='stale epoch 2 < 3'):
        d.import_state('g', blob, 2)
    hdr = b'{"op": "import", "size": 10, "sha256": "x", "epoch": 3}\nabc'
    assert ep.raw(hdr, shut=True)['error'] == 'short import: 3 of 10 bytes'
    assert ep.raw(b'{"op": "nope"}\n')['error'] == 'unknown op nope'
    assert ep.raw(b'{"x": 1}\n')['error'] == 'bad request'
    assert ep.raw(b'{"op": "import"}\n')['error'] == 'bad request: no size'
    st = d.stats()
    assert st['sha256'] == blob.sha256 and st['frozen'] is True
    assert st['epoch'] == 3 and st['imports'] == 1
    assert not os.path.exists(os.path.join(ep.root, 'na-x.d'))
    assert d.import_state('g', blob, 3) == blob.sha256


def test_a_request_after_export_waits_for_the_import(ep):
    d = ep.driver
    ep.req('fz', 1)
    blob = d.export_state('g')
    p = ep.req_proc('fz', 2)
    with pytest.raises(subprocess.TimeoutExpired):
        p.wait(1.0)         # frozen: neither answered nor applied
    assert d.stats()['sha256'] == blob.sha256
    d.import_state('g', blob, 1)
    out, _ = p.communicate(timeout=30)
    assert out.strip().endswith('ok fz 2 total 2 client 2 last 2 applied')
    assert d._call({'op': 'log'})[0]['log'] == ['fz 1', 'fz 2']


def test_a_kept_connection_serves_many_requests_and_others_meanwhile(ep):
    """The driver keeps one connection (the import into a just-resumed copy
    skips the handshake); other clients are served while it is open, and
    a restarted endpoint is reached again on a new connection."""
    d = ep.driver
    d.stats()
    kept = d._sock
    assert kept is not None
    for _ in range(5):
        b = d.export_state('g')
        assert d.import_state('g', b, 1) == b.sha256
    assert d._sock is kept and d.reconnects == 0
    # another client while the driver's connection stays open
    assert ep.raw(b'{"op": "nope"}\n')['error'] == 'unknown op nope'
    assert ep.req('kc', 1).endswith(' applied')
    assert d.stats()['clients']['kc'] == [1, 1, 0, 0]
    assert d._sock is kept
    # the endpoint restarts: the closed connection is noticed before the
    # next request, which goes out on a new one
    ep.proc.kill()
    ep.proc.wait()
    with pytest.raises(DriverError, match='refused'):
        d.stats()
    ep.proc = subprocess.Popen([ep.exe, str(ep.port), ep.root])
    deadline = time.monotonic() + 30
    while True:
        try:
            assert d.stats()['clients']['kc'] == [1, 1, 0, 0]
            break
        except DriverError:
            assert time.monotonic() < deadline, 'endpoint not back'
            time.sleep(0.05)
    assert d._sock is not None and d._sock is not kept
