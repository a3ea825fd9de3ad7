"""``local-stack demo --virt libvirt``: the plugin on real hypervisors.

1. brings the libvirt stack up (if it is not running): four nova-computes
   on Nova's LibvirtDriver (QEMU), each with its own libvirtd in its own
   namespaces, on a shaped leaf-spine (lvcmp2's uplink is 5 Mbit/s), a
   flow meter per hypervisor and a Prometheus scraping them;
2. boots two real guests with ``openstack server create``: ``demo-peer``
   on lvcmp3 and ``demo-app`` on lvcmp1; app's traffic generator streams
   6 Mbit/s to peer, peer's 1 Mbit/s back;
3. the measured rates: after one ``rate()`` window, the matrix
   nova-scheduler reads (the meters' counters through Prometheus, IPs
   resolved through the ports API), next to the rates asked, and which
   hypervisor's meter counted each pair;
4. ``nova-netaware``'s verdicts and MIF table for moving app, on that
   measured matrix (a snapshot of it in ``netaware/measured-traffic.yaml``:
   the offline command reads files);
5. ``openstack server migrate --live-migration --wait``: a real libvirt
   live migration, timed, while app's counter is polled every 50 ms from
   another host (the longest reply gap); then the stream's meter (it is
   local to the peer's host now);
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
from nova_netaware.flowmeter import stack as meters

PREFIX = fake_demo.PREFIX
#: name: (host, role)
GUESTS = {
    'peer': ('lvcmp3', 'runs a sink for app\'s stream'),
    'app': ('lvcmp1', 'the chatty guest: streams %d Mbit/s to peer'),
}
APP_TO_PEER_MBPS = 6
PEER_TO_APP_MBPS = 1
OBSERVER = 'lvcmp4'   # polls the guests; lvcmp2's 5 Mbit/s uplink is too thin
#: the window of the per-meter rates shown after the move, seconds
AFTER_WINDOW_S = 10


def _meters_of(s, src_ip, dst_ip, window):
    """``{host: Mbit/s}`` of one pair over ``window`` s, per meter."""
    hosts = meters.meter_instances(s, s.hosts)
    return {hosts[r['metric']['instance']]: float(r['value'][1]) * 8 / 1e6
            for r in meters.query(s, 'rate(netaware_flow_bytes_total{src='
                                  '"%s",dst="%s"}[%ds])' % (src_ip, dst_ip,
                                                            window))}


def _show_measured(s, ids, ips):
    """Step 3: wait one rate() window, print the scheduler's matrix and
    the meters that counted each pair; write the snapshot file that
    ``nova-netaware`` (step 4) reads. Returns its path."""
    print('\n  the measured traffic matrix (flow meters -> Prometheus -> '
          'the scheduler\'s traffic source):')
    pairs = [((ips['app'], ips['peer']), APP_TO_PEER_MBPS),
             ((ips['peer'], ips['app']), PEER_TO_APP_MBPS)]
    deadline = time.monotonic() + 120
    while not {p for p, _ in pairs} <= {
            (r['metric']['src'], r['metric']['dst']) for r in meters.query(
                s, 'netaware_flow_bytes_total')}:
        if time.monotonic() > deadline:
            raise StackError('Prometheus (%s) has no series of the '
                             'guests\' streams after 120 s; see the '
                             'flow-meter-* logs' % meters.prometheus_url(s))
        time.sleep(1)
    wait = meters.RATE_WINDOW_S + 2 * meters.SCRAPE_INTERVAL_S
    print('  both streams are counted; waiting %d s for one full rate() '
          'window (nova.conf [netaware] prometheus_query)' % wait,
          flush=True)
    time.sleep(wait)
    matrix = meters.measured_matrix(s)
    names = {ids[g]: PREFIX + g for g in ids}
    print('  %-22s %7s %9s  %s' % ('pair', 'asked', 'measured',
                                   'counted by the meter of'))
    for (src_ip, dst_ip), asked in pairs:
        src = [g for g in ips if ips[g] == src_ip][0]
        dst = [g for g in ips if ips[g] == dst_ip][0]
        got = matrix.rates.get((ids[src], ids[dst]), 0.0)
        where = _meters_of(s, src_ip, dst_ip, meters.RATE_WINDOW_S)
        print('  %-22s %7.2f %9.2f  %s' % (
            '%s -> %s' % (names[ids[src]], names[ids[dst]]), asked, got,
            ', '.join('%s (%.2f)' % hv for hv in sorted(where.items())
                      if hv[1] > 0)))
    print('  (Mbit/s; measured = IP bytes, the streams\' TCP ACKs included; '
          'the hosts\' own addresses on br-guests, 10.100.255.N, from '
          'which this demo polls the guests, have no port and are left '
          'out of the matrix)')
    path = os.path.join(s.netaware_dir, 'measured-traffic.yaml')
    with open(path + '.tmp', 'w') as f:
        yaml.safe_dump({'flows': [{'src': a, 'dst': b, 'mbps': round(v, 3)}
                                  for (a, b), v in
                                  sorted(matrix.rates.items())]}, f)
    os.replace(path + '.tmp', path)
    return path


def _predict(s, conn, app, traffic):
    """Step 4: ``nova-netaware`` on a snapshot of the cloud and of the
    measured matrix."""
    import json
    from nova_netaware.deploy.localstack import snapshot
    print('\n=== 2. what nova-netaware thinks of moving %sapp (on the '
          'measured matrix) ===' % PREFIX)
    snap_file = os.path.join(s.netaware_dir, 'demo-placement.yaml')
    snapshot.write(conn, snap_file, hosts=s.hosts)
    cli = ['nova-netaware', '--topology', s.topology_file, '--traffic',
           traffic, '--placement', snap_file, '--server', app,
           '--config-file', os.path.join(s.etc, 'nova', 'nova.conf')]
    fake_demo._run(s, cli)
    return json.loads(fake_demo._run(s, cli + ['-f', 'json'],
                                     show=False).stdout)


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
    for src, dst, mbps in (('app', 'peer', APP_TO_PEER_MBPS),
                           ('peer', 'app', PEER_TO_APP_MBPS)):
        ops.guest_get(lab, OBSERVER, ips[src], '/cgi-bin/traffic?peer=%s&'
                      'mbps=%d' % (ips[dst], mbps))
    print('  %sapp streams %d Mbit/s of TCP to %speer, %speer %d Mbit/s '
          'back (their generators, paced; real packets over br-guests, '
          'VXLAN and the shaped leaf-spine)' % (
              PREFIX, APP_TO_PEER_MBPS, PREFIX, PREFIX, PEER_TO_APP_MBPS))
    return ids, ips


def run(st):
    s = st.s
    t0 = time.monotonic()
    st.up()
    conn = services.connect(s)
    lab = lablib.Lab(novastack.lab_settings(s))
    ids, ips = _boot(s, conn, lab)
    traffic = _show_measured(s, ids, ips)
    predicted = _predict(s, conn, ids['app'], traffic)
    print('\n=== 3. the operator live-migrates %sapp (no host given) ==='
          % PREFIX)
    source = conn.compute.get_server(ids['app']).compute_host
    offset = os.path.getsize(s.log('nova-scheduler'))
    _, took, points, gap, _end = ops.probed(
        lab, OBSERVER, ips['app'], lambda: fake_demo._run(s, [
            'openstack', 'server', 'migrate', '--live-migration', '--wait',
            PREFIX + 'app']))
    moved = time.monotonic()
    dest = fake_demo._wait(conn, ids['app'], {'ACTIVE'}).compute_host
    print('  live migration %s -> %s: %.1f s (openstack ... --wait); '
          'longest reply gap %.2f s while %s polled the guest every 50 ms; '
          'counter %s -> %s (kept counting: same memory, no reboot)' % (
              source, dest, took, gap, OBSERVER,
              points[0][1] if points else '?',
              points[-1][1] if points else '?'))
    time.sleep(max(0.0, moved + AFTER_WINDOW_S + meters.SCRAPE_INTERVAL_S
                   - time.monotonic()))
    where = _meters_of(s, ips['app'], ips['peer'], AFTER_WINDOW_S)
    print('  %sapp -> %speer over the last %d s, per hypervisor meter: %s'
          % (PREFIX, PREFIX, AFTER_WINDOW_S, ', '.join(
              '%s %.2f Mbit/s' % hv for hv in sorted(where.items()))))
    log_path = s.log('nova-scheduler')
    fake_demo._show_scheduler_log(log_path, offset, ids['app'])
    totals, ours = fake_demo.nova_default_scores(log_path, offset,
                                                 ids['app'])
    fake_demo._show_result(source, dest, predicted, totals, ours)
    fake_demo.show_how_to_use(s, t0, 'the guests stay. Use them')
    return 0
