"""``local-stack demo --virt libvirt``: the plugin on real hypervisors.

1. brings the libvirt stack up (if it is not running): four nova-computes
   on Nova's LibvirtDriver (QEMU), each with its own libvirtd in its own
   namespaces, on a shaped leaf-spine (lvcmp2's uplink is 5 Mbit/s);
2. boots two real guests with ``openstack server create``: ``demo-peer``
   on lvcmp3 and ``demo-app`` on lvcmp1, and has app's traffic generator
   stream to peer;
3. the rates the scheduler reads (today the static traffic file, written
   with the generated rates; see :func:`_declare_rates`);
4. ``nova-netaware``'s verdicts and MIF table for moving app;
5. ``openstack server migrate --live-migration --wait``: a real libvirt
   live migration, timed, while app's counter is polled every 50 ms from
   another host (the longest reply gap);
6. nova-scheduler's lines for the request, and where Nova's default
   weighers alone would have sent the guest.

The guests stay afterwards; a new demo replaces them.
"""

import os
import time

import yaml

from nova_netaware.deploy.exceptions import StackError
from nova_netaware.deploy.localstack import demo as fake_demo
from nova_netaware.deploy.localstack import services
from nova_netaware.deploy.localstack.libvirt import lab as lablib
from nova_netaware.deploy.localstack.libvirt import novastack
from nova_netaware.deploy.localstack.libvirt import ops

PREFIX = fake_demo.PREFIX
#: name: (host, role)
GUESTS = {
    'peer': ('lvcmp3', 'runs a sink for app\'s stream'),
    'app': ('lvcmp1', 'the chatty guest: streams %d Mbit/s to peer'),
}
APP_TO_PEER_MBPS = 6
PEER_TO_APP_MBPS = 1
OBSERVER = 'lvcmp4'   # polls the guests; lvcmp2's 5 Mbit/s uplink is too thin


def _declare_rates(s, app, peer):
    """The matrix the scheduler reads. HOOK (issue 13, flow meter): with
    the measured source (per-pair rates from the hypervisors' flow meter in
    Prometheus) this writes nothing and shows the measured rates instead;
    until then the static traffic file holds the generated rates."""
    flows = [{'src': app, 'dst': peer, 'mbps': APP_TO_PEER_MBPS},
             {'src': peer, 'dst': app, 'mbps': PEER_TO_APP_MBPS}]
    with open(s.traffic_file + '.tmp', 'w') as f:
        yaml.safe_dump({'flows': flows}, f)
    os.replace(s.traffic_file + '.tmp', s.traffic_file)
    print('  traffic file %s (the generated rates; read by nova-scheduler '
          'on the next request):' % s.traffic_file)
    for fl in flows:
        print('    %s -> %s: %d Mbit/s' % (
            PREFIX + ('app' if fl['src'] == app else 'peer'),
            PREFIX + ('app' if fl['dst'] == app else 'peer'), fl['mbps']))


def _peek(lab, ip):
    out = ops.guest_get(lab, OBSERVER, ip, '/cgi-bin/peek')
    return int(out.split()[1]) if out else None


def _boot(s, conn, lab):
    print('\n=== 1. two real guests (Debian kernel + busybox initramfs, '
          'QEMU/TCG) on chosen hosts ===')
    fake_demo._remove_old_workload(conn)
    ids, ips = {}, {}
    for name, (host, _role) in GUESTS.items():
        t0 = time.monotonic()
        fake_demo._run(s, [
            'openstack', 'server', 'create', '--image', novastack.IMAGE,
            '--flavor', novastack.FLAVOR, '--network', 'guests',
            '--availability-zone', 'nova:' + host, '--property',
            'netaware:dirty_rate_mbps=20', '--wait', '-c', 'id', '-c',
            'addresses', PREFIX + name])
        server = conn.compute.find_server(PREFIX + name)
        ids[name] = server.id
        ips[name] = list(conn.compute.get_server(server.id).addresses
                         .values())[0][0]['addr']
        while _peek(lab, ips[name]) is None:
            if time.monotonic() - t0 > 300:
                raise StackError('%s%s does not answer on %s' % (
                    PREFIX, name, ips[name]))
            time.sleep(0.5)
        print('  %s%s (%s) on %s answers %.0f s after create' % (
            PREFIX, name, ips[name], host, time.monotonic() - t0))
    ops.guest_get(lab, OBSERVER, ips['app'], '/cgi-bin/traffic?peer=%s&'
                  'mbps=%d' % (ips['peer'], APP_TO_PEER_MBPS))
    print('  %sapp streams %d Mbit/s of TCP to %speer (its generator, '
          'paced; real packets over br-guests, VXLAN and the shaped '
          'leaf-spine)' % (PREFIX, APP_TO_PEER_MBPS, PREFIX))
    return ids, ips


def run(st):
    s = st.s
    t0 = time.monotonic()
    st.up()
    conn = services.connect(s)
    lab = lablib.Lab(novastack.lab_settings(s))
    ids, ips = _boot(s, conn, lab)
    _declare_rates(s, ids['app'], ids['peer'])
    predicted = fake_demo._predict(s, conn, ids['app'])
    print('\n=== 3. the operator live-migrates %sapp (no host given) ==='
          % PREFIX)
    source = conn.compute.get_server(ids['app']).compute_host
    offset = os.path.getsize(s.log('nova-scheduler'))
    _, took, points, gap, _end = ops.probed(
        lab, OBSERVER, ips['app'], lambda: fake_demo._run(s, [
            'openstack', 'server', 'migrate', '--live-migration', '--wait',
            PREFIX + 'app']))
    dest = fake_demo._wait(conn, ids['app'], {'ACTIVE'}).compute_host
    print('  live migration %s -> %s: %.1f s (openstack ... --wait); '
          'longest reply gap %.2f s while %s polled the guest every 50 ms; '
          'counter %s -> %s (kept counting: same memory, no reboot)' % (
              source, dest, took, gap, OBSERVER,
              points[0][1] if points else '?',
              points[-1][1] if points else '?'))
    log_path = s.log('nova-scheduler')
    fake_demo._show_scheduler_log(log_path, offset, ids['app'])
    totals, ours = fake_demo.nova_default_scores(log_path, offset,
                                                 ids['app'])
    fake_demo._show_result(source, dest, predicted, totals, ours)
    fake_demo.show_how_to_use(s, t0, 'the guests stay. Use them')
    return 0
