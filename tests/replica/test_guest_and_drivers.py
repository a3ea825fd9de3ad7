"""The guest state endpoint and the shipped drivers, against a real guest
process on loopback: checksum-verified export/import, stale epoch refused,
pause/unpause through SIGSTOP/SIGCONT."""

import os
import signal
import socket
import subprocess
import sys

import pytest
from oslo_config import cfg

from nova_netaware.replica import conf as conf_mod
from nova_netaware.replica import drivers
from nova_netaware.replica.drivers.local import proc_state
from tests.ports import free_port


@pytest.fixture
def guest(tmp_path):
    port, ctl = free_port(), free_port()
    pid_file = str(tmp_path / 'g.pid')
    p = subprocess.Popen([sys.executable, '-m', 'nova_netaware.replica.guest',
                          '--host', '127.0.0.1', '--port', str(port),
                          '--control-port', str(ctl), '--pad-bytes', '1000',
                          '--pid-file', pid_file], stdout=subprocess.PIPE)
    try:  # the guest is killed even if the set-up below fails
        assert p.stdout.readline() == b'guest ready\n'
        conf = cfg.ConfigOpts()
        conf_mod.register_opts(conf)
        conf.set_override('agent_id', 't', 'replica')
        conf.set_override('guest_endpoint_host', '127.0.0.1', 'replica')
        conf.set_override('guest_endpoint_port', ctl, 'replica')
        conf.set_override('local_pid_file', pid_file, 'replica')
        conf.set_override('state_timeout', 1.0, 'replica')
        conf([], default_config_files=[])
        yield p, port, conf
    finally:
        try:
            os.kill(p.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        p.kill()
        p.wait()


def _request(port, client, seq):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b'Q %s %d' % (client.encode(), seq), ('127.0.0.1', port))
    r = s.recv(100)
    s.close()
    return r.split()


def test_export_import_checksum_and_stale_epoch(guest):
    p, port, conf = guest
    sd = drivers.load('nova_netaware.replica.state_drivers',
                      'guest_endpoint', conf)
    for i in range(1, 6):
        assert _request(port, 'c', i)[3] == str(i).encode()
    blob = sd.export_state('copy')
    assert len(blob) > 1000 and blob.meta['last_served_ns'] > 0
    # restore it (checksum computed by the guest from what it loaded)
    assert sd.import_state('copy', blob, 7) == blob.sha256
    assert _request(port, 'c', 6)[3] == b'6'
    with pytest.raises(drivers.DriverError, match='stale epoch'):
        sd.import_state('copy', blob, 3)
    # a corrupted blob is refused by the guest
    bad = drivers.StateBlob(blob.data[:-1] + b'!')
    bad.sha256 = blob.sha256
    with pytest.raises(drivers.DriverError, match='checksum'):
        sd.import_state('copy', bad, 8)
    st = sd.stats()
    assert st['total'] == 6 and st['clients']['c'] == [6, 6, 0, 0]
    # a duplicate and a gap are visible in the state
    _request(port, 'c', 6)
    _request(port, 'c', 9)
    assert sd.stats()['clients']['c'] == [9, 7, 1, 1]


def test_stateblob_checksum_mismatch():
    with pytest.raises(drivers.ChecksumMismatch):
        drivers.StateBlob(b'abc', '0' * 64)


def test_local_driver_pause_unpause(guest):
    p, port, conf = guest
    sd = drivers.load('nova_netaware.replica.state_drivers',
                      'guest_endpoint', conf)
    cd = drivers.load('nova_netaware.replica.cloud_drivers', 'local', conf,
                      sd)
    assert cd.is_running('copy')
    cd.pause('copy')
    assert proc_state(p.pid) == 'T' and not cd.is_running('copy')
    with pytest.raises(drivers.DriverError):
        sd.export_state('copy')  # a paused guest does not answer
    cd.unpause('copy')
    assert cd.is_running('copy')
    assert sd.export_state('copy').sha256


def test_unknown_plugin_and_missing_options_are_clear():
    conf = cfg.ConfigOpts()
    conf_mod.register_opts(conf)
    conf.set_override('agent_id', 't', 'replica')
    conf([], default_config_files=[])
    with pytest.raises(drivers.DriverError, match='cannot load plugin'):
        drivers.load('nova_netaware.replica.cloud_drivers', 'nope', conf,
                     None)
    with pytest.raises(drivers.DriverError, match='guest_endpoint_host'):
        drivers.load('nova_netaware.replica.state_drivers',
                     'guest_endpoint', conf)
    with pytest.raises(drivers.DriverError, match='local_pid_file'):
        drivers.load('nova_netaware.replica.cloud_drivers', 'local', conf,
                     None)
    from nova_netaware.replica.dataplane import DataPlaneError
    with pytest.raises(drivers.DriverError, match='guest_interface'):
        drivers.load('nova_netaware.replica.dataplanes', 'nfqueue', conf,
                      None)
    del DataPlaneError
