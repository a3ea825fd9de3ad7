"""The pieces of the data plane at a guest's bridge port and the libvirt
cloud driver that run without root: interface kind from sysfs, the
physdev rule, MAC parsing, option errors, and the libvirt driver against
libvirt's own in-process test hypervisor (``test:///default``, a real
libvirt driver with a running domain named ``test``)."""

import pytest
from oslo_config import cfg

from nova_netaware.replica import conf as conf_mod
from nova_netaware.replica import dataplane as dp
from nova_netaware.replica import drivers
from nova_netaware.replica.dataplane import netfilter
from nova_netaware.replica.dataplane import nfqueue


def _conf(**over):
    conf = cfg.ConfigOpts()
    conf_mod.register_opts(conf)
    conf.set_override('agent_id', 't', 'replica')
    for k, v in over.items():
        conf.set_override(k, v, 'replica')
    conf(args=[], default_config_files=[])
    return conf


def _sysfs(tmp_path, ifname, bridged):
    d = tmp_path / 'net' / ifname
    d.mkdir(parents=True)
    (d / 'address').write_text('fe:16:3e:00:00:0a\n')
    if bridged:
        (d / 'brport').mkdir()
    return str(tmp_path / 'net')


def test_interface_kind_from_sysfs(tmp_path, monkeypatch):
    sysfs = _sysfs(tmp_path, 'vnet0', bridged=True)
    _sysfs(tmp_path, 'eth9', bridged=False)
    on = tmp_path / 'bnf'
    on.write_text('1\n')
    monkeypatch.setattr(netfilter, 'BRIDGE_NF_SYSCTL', str(on))
    assert netfilter.interface_kind('vnet0', 'auto', sysfs) == 'bridge-port'
    assert netfilter.interface_kind('eth9', 'auto', sysfs) == 'routed'
    assert netfilter.interface_kind('vnet0', 'routed', sysfs) == 'routed'
    on.write_text('0\n')
    with pytest.raises(dp.DataPlaneError,
                       match='bridged frames bypass iptables'):
        netfilter.interface_kind('vnet0', 'auto', sysfs)
    monkeypatch.setattr(netfilter, 'BRIDGE_NF_SYSCTL',
                        str(tmp_path / 'absent'))
    with pytest.raises(dp.DataPlaneError, match='br_netfilter'):
        netfilter.interface_kind('vnet0', 'bridge-port', sysfs)
    with pytest.raises(dp.DataPlaneError, match='unknown'):
        netfilter.interface_kind('vnet0', 'tap', sysfs)


def test_rule_matches_the_port_with_physdev():
    r = netfilter.Rules('NNR-X', 'vnet0', 7, netfilter.BRIDGE_PORT)
    assert r._jump() == ['FORWARD', '-m', 'physdev', '--physdev-out',
                         'vnet0', '--physdev-is-bridged', '-j', 'NNR-X']
    r = netfilter.Rules('NNR-X', 'veth1', 7)
    assert r._jump() == ['FORWARD', '-o', 'veth1', '-j', 'NNR-X']
    with pytest.raises(dp.DataPlaneError):
        netfilter.Rules('NNR-X', 'veth1', 7, 'auto')


def test_mac_parsing_and_port_mac(tmp_path):
    assert nfqueue.parse_mac('fa:16:3e:CC:00:0a') == \
        bytes.fromhex('fa163ecc000a')
    for bad in ('fa:16:3e:cc:00', 'fa:16:3e:cc:00:zz', 'fa163ecc000a',
                'fa:16:3e:cc:0:0a:1'):
        with pytest.raises(dp.DataPlaneError, match='not a MAC'):
            nfqueue.parse_mac(bad)
    sysfs = _sysfs(tmp_path, 'vnet0', bridged=True)
    assert nfqueue.port_mac('vnet0', sysfs) == bytes.fromhex('fe163e00000a')
    with pytest.raises(dp.DataPlaneError, match='address of nope'):
        nfqueue.port_mac('nope', sysfs)


def test_port_replay_needs_the_guest_mac(tmp_path, monkeypatch):
    sysfs = _sysfs(tmp_path, 'vnet0', bridged=True)
    on = tmp_path / 'bnf'
    on.write_text('1\n')
    monkeypatch.setattr(netfilter, 'BRIDGE_NF_SYSCTL', str(on))
    real = netfilter.interface_kind
    monkeypatch.setattr(netfilter, 'interface_kind',
                        lambda i, k: real(i, k, sysfs))
    plane = nfqueue.NfqueueDataPlane(_conf(guest_interface='vnet0'), None)
    with pytest.raises(dp.DataPlaneError, match='guest_mac'):
        plane._resolve()
    plane = nfqueue.NfqueueDataPlane(
        _conf(guest_interface='vnet0', guest_mac='fa:16:3e:cc:00:0a'), None)
    plane._resolve()
    assert (plane.kind, plane.via) == ('bridge-port', 'port')
    plane = nfqueue.NfqueueDataPlane(
        _conf(guest_interface='vnet0', replay_via='ip'), None)
    plane._resolve()
    assert (plane.kind, plane.via) == ('bridge-port', 'ip')
    with pytest.raises(dp.DataPlaneError, match='not a MAC'):
        nfqueue.NfqueueDataPlane(
            _conf(guest_interface='vnet0', guest_mac='nope'), None)


def test_bad_choices_are_refused_by_oslo_config():
    with pytest.raises(ValueError):
        _conf(guest_interface_kind='tap')
    with pytest.raises(ValueError):
        _conf(replay_via='udp')


libvirt = pytest.importorskip('libvirt', reason='libvirt-python missing')


def _lv(**over):
    opts = dict(libvirt_uri='test:///default', copy_name='test')
    opts.update(over)
    conf = _conf(**opts)
    return drivers.load('nova_netaware.replica.cloud_drivers', 'libvirt',
                        conf, None)


def test_libvirt_driver_on_libvirts_test_hypervisor():
    d = _lv()
    assert d.is_running('c') is True
    d.pause('c')
    assert d.state() == 'paused' and d.is_running('c') is False
    d.pause('c')  # already paused: no error, still paused
    assert d.is_running('c') is False
    d.unpause('c')
    assert d.state() == 'running' and d.is_running('c') is True
    d.close()


def test_libvirt_driver_errors():
    d = _lv(copy_name='no-such-domain')
    with pytest.raises(drivers.DriverError, match='does not exist'):
        d.pause('c')
    d = _lv(libvirt_uri='qemu+unix:///system?socket=/nonexistent/sock')
    with pytest.raises(drivers.DriverError, match='cannot connect'):
        d.is_running('c')


def test_copy_command_through_the_cloud_driver(tmp_path):
    from nova_netaware.replica import cmd
    cfgf = tmp_path / 'r.conf'
    cfgf.write_text('[replica]\nagent_id = t\ncloud_driver = libvirt\n'
                    'libvirt_uri = test:///default\ncopy_name = test\n')
    conf = cmd.make_conf(['--config-file', str(cfgf), 'copy', 'pause'])
    assert conf.command.action == 'pause'
    res = cmd.copy_command(conf, 'pause')
    assert res['ok'] and res['running'] is False
    cfgf.write_text('[replica]\nagent_id = t\ncloud_driver = libvirt\n'
                    'libvirt_uri = test:///default\ncopy_name = nope\n')
    assert cmd.main(['--config-file', str(cfgf), 'copy', 'state']) == 1


def test_openstack_driver_option_errors(tmp_path):
    with pytest.raises(ValueError):
        _conf(openstack_control='ssh')
    # a cloud that clouds.yaml does not have: a clear error, naming it
    cy = tmp_path / 'clouds.yaml'
    cy.write_text('clouds:\n  other:\n    auth: {auth_url: '
                  'http://127.0.0.1:1/v3}\n')
    conf = _conf(cloud_driver='openstack', openstack_cloud='absent',
                 openstack_config_file=str(cy), copy_name='srv')
    with pytest.raises(drivers.DriverError, match="cloud 'absent'"):
        drivers.load('nova_netaware.replica.cloud_drivers', 'openstack',
                     conf, None)


def test_tap_queue_grows_for_a_replay_never_shrinks(tmp_path):
    sysfs = _sysfs(tmp_path, 'vnet0', bridged=True)
    q = tmp_path / 'net' / 'vnet0' / 'tx_queue_len'
    q.write_text('1000\n')
    assert netfilter.ensure_tx_queue('vnet0', 4024, sysfs) == (1000, 4024)
    assert q.read_text().strip() == '4024'
    assert netfilter.ensure_tx_queue('vnet0', 500, sysfs) == (4024, 4024)
    assert q.read_text().strip() == '4024'
    big = netfilter.TAP_QUEUE_MAX * 4
    assert netfilter.ensure_tx_queue('vnet0', big, sysfs)[1] == \
        netfilter.TAP_QUEUE_MAX
    with pytest.raises(OSError):
        netfilter.ensure_tx_queue('vnet9', 4024, sysfs)
    stats = tmp_path / 'net' / 'vnet0' / 'statistics'
    stats.mkdir()
    (stats / 'tx_dropped').write_text('7\n')
    assert netfilter.tx_dropped('vnet0', sysfs) == 7
    assert netfilter.tx_dropped('vnet9', sysfs) is None
    (stats / 'tx_packets').write_text('9\n')
    assert netfilter.tx_packets('vnet0', sysfs) == 9
    assert netfilter.tx_packets('vnet9', sysfs) is None


def test_a_window_ends_its_wait_at_a_fence():
    """The tap window (QEMU has read nothing) waits up to its ``wait``,
    but a fence (``going`` turns False) ends the wait at once; the full
    window and the ended wait are counted."""
    import collections
    import threading
    import time
    counters = collections.Counter()
    state = {'going': True}
    w = nfqueue._GuestWindow('vnet0', 2, 5.0, counters, read=lambda i: 10,
                             timeouts='tap_window_timeouts',
                             waits='tap_window_waits',
                             going=lambda: state['going'])
    assert w.sent_one() is True           # below the window
    threading.Timer(0.05, state.update, kwargs={'going': False}).start()
    t = time.monotonic()
    assert w.sent_one() is False          # full; QEMU reads nothing
    assert 0.04 <= time.monotonic() - t < 2.0
    assert counters['tap_window_waits'] == 1
    assert counters['tap_window_timeouts'] == 1
    assert counters['replay_window_timeouts'] == 0


def test_replay_window_waits_for_the_guest_output(monkeypatch):
    """The replay stays at most ``size`` frames ahead of what the guest
    has sent; a silent guest (one-way traffic) costs ``wait`` per window,
    never a stall."""
    import collections
    import threading
    import time
    out = {'n': 100}
    monkeypatch.setattr(netfilter, 'rx_packets', lambda ifname: out['n'])
    counters = collections.Counter()
    w = nfqueue._GuestWindow('vnet0', 4, 0.05, counters)
    for _ in range(3):
        w.sent_one()                      # below the window: no wait
    t = time.monotonic()
    w.sent_one()                          # full, the guest is silent
    assert time.monotonic() - t >= 0.05
    assert counters['replay_window_timeouts'] == 1
    for _ in range(3):
        w.sent_one()

    def answer():
        time.sleep(0.01)
        out['n'] += 4                     # the guest answered four
    threading.Thread(target=answer).start()
    t = time.monotonic()
    w.sent_one()                          # full again: released by output
    assert time.monotonic() - t < 0.045
    assert counters['replay_window_timeouts'] == 1
    assert w.ahead == 0
    off = nfqueue._GuestWindow('vnet0', 0, 0.05, counters)
    assert off.size == 0
    monkeypatch.setattr(netfilter, 'rx_packets', lambda ifname: None)
    assert nfqueue._GuestWindow('vnet0', 4, 0.05, counters).size == 0
