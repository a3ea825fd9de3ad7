"""The flow meter with real guests: the libvirt lab (namespaced libvirtd
hypervisors, VXLAN guest segment, shaped leaf-spine), two guests booted
with virsh on hosts of different leaves, the guest's own paced traffic
generator, one meter per hypervisor (``--netns``, ``--guest-ports
'vnet*'``: libvirt's names for ``<interface type='bridge'>``), a real
Prometheus.

Checks the meter against the kernel's own interface counters of the
sender's tap (bytes the guest sent, less 14 bytes of Ethernet header per
frame) over the same interval, and reports the generator's asked rate
next to it (a TCG guest on a loaded machine sends less than asked).

Needs root, libvirt and QEMU, minutes of CPU: NETAWARE_LIBVIRT_TESTS=1.
"""

import os
import re
import shutil
import subprocess
import time

import pytest

from nova_netaware.flowmeter import exporter
from nova_netaware.deploy.localstack.libvirt import lab as lablib
from nova_netaware.deploy.localstack.libvirt import ops
from tests.ports import free_port
from tests.prometheus.conftest import Prometheus

pytestmark = pytest.mark.skipif(
    os.environ.get('NETAWARE_LIBVIRT_TESTS') != '1' or os.geteuid() != 0
    or not shutil.which('libvirtd') or not shutil.which('prometheus'),
    reason='set NETAWARE_LIBVIRT_TESTS=1 (root, libvirt, QEMU, prometheus)')

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SENDER = ('lvcmp1', '10.100.1.1')
RECEIVER = ('lvcmp3', '10.100.3.1')
ASKED_MBPS = 4
WINDOW = 20


def _tap_rx(ns):
    """(bytes, packets) received by the host from the guest on its vnet
    tap (what the guest sent), from ``ip -s -j link``."""
    import json
    out = subprocess.run(['ip', '-n', ns, '-s', '-j', 'link', 'show'],
                         capture_output=True, text=True, check=True).stdout
    [tap] = [i for i in json.loads(out) if i['ifname'].startswith('vnet')]
    rx = tap['stats64']['rx']
    return rx['bytes'], rx['packets']


def test_meter_matches_the_taps_counters_with_real_guests(tmp_path):
    lab = lablib.Lab(lablib.LabSettings(str(tmp_path / 'lab')))
    procs, prom = [], None
    try:
        lab.up(lablib.default_topology(3))
        _, boot1 = ops.boot(lab, *SENDER)
        _, boot3 = ops.boot(lab, *RECEIVER)
        ports = {}
        for host in (SENDER[0], RECEIVER[0]):
            ports[host] = free_port()
            procs.append(subprocess.Popen(
                exporter.command(ports[host],
                                 netns=lab.plan['hosts'][host]['ns'],
                                 guest_ports=['vnet*']),
                cwd=ROOT, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        prom = Prometheus(list(ports.values()), job=exporter.JOB)
        out = ops.guest_get(lab, SENDER[0], SENDER[1],
                            '/cgi-bin/traffic?peer=%s&mbps=%d'
                            % (RECEIVER[1], ASKED_MBPS), timeout=10)
        assert out is not None
        sel = 'netaware_flow_bytes_total{src="%s",dst="%s"}' % (
            SENDER[1], RECEIVER[1])
        prom.wait_for('count_over_time(%s[%ds])' % (sel, WINDOW),
                      lambda r: r and float(r[0]['value'][1]) >= WINDOW,
                      timeout=120)
        ns = lab.plan['hosts'][SENDER[0]]['ns']
        b0, p0 = _tap_rx(ns)
        m0 = float(prom.query(sel)[0]['value'][1])
        t0 = time.monotonic()
        time.sleep(WINDOW)
        time.sleep(2)                 # one more scrape after the interval
        b1, p1 = _tap_rx(ns)
        t1 = time.monotonic()
        m1 = float(prom.query(sel)[0]['value'][1])
        tap_mbps = ((b1 - b0) - 14 * (p1 - p0)) * 8 / 1e6 / (t1 - t0)
        meter_mbps = (m1 - m0) * 8 / 1e6 / (t1 - t0)
        rate_mbps = float(prom.query('sum(rate(%s[%ds])) * 8 / 1e6'
                                     % (sel, WINDOW))[0]['value'][1])
        # the receiver's meter counts nothing of this pair (counted once)
        seen_by = {r['metric']['instance'] for r in prom.query(sel)}
        print('\nboots %.0f s, %.0f s; asked %d Mbit/s; tap counters '
              '%.2f; meter (same interval) %.2f; rate()[%ds] %.2f'
              % (boot1, boot3, ASKED_MBPS, tap_mbps, meter_mbps, WINDOW,
                 rate_mbps))
        assert seen_by == {'127.0.0.1:%d' % ports[SENDER[0]]}
        assert abs(meter_mbps - tap_mbps) <= 0.05 * tap_mbps + 0.05
        assert abs(rate_mbps - tap_mbps) <= 0.2 * tap_mbps
        assert tap_mbps > 0.2 * ASKED_MBPS
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        if prom is not None:
            prom.close()
        lab.down()
    assert not [n for n in subprocess.run(
        ['ip', 'netns', 'list'], capture_output=True, text=True
    ).stdout.split() if re.match(r'nvl-', n)]
