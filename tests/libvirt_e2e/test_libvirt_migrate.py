"""The plugin on Nova's libvirt driver, with the real ``openstack`` CLI and
the measured traffic matrix.

The lab (libvirt/lab.py): lvcmp1 and lvcmp2 on leaf-1, lvcmp3 and lvcmp4
on leaf-2, 100 Mbit/s uplinks except lvcmp2's, which is shaped to 5 Mbit/s.
Two real guests: ``peer`` booted on lvcmp3 and ``app`` on lvcmp1; app's
traffic generator sends a paced TCP stream of 6 Mbit/s to peer, peer's
sends 1 Mbit/s back. Nothing writes a traffic file: the stack's
nova-scheduler reads the matrix that the hypervisors' flow meters count
in the kernel, through Prometheus (``traffic_source = prometheus``), and
so do ``openstack netaware explain`` and :func:`measured` here (the same
loading path). The tests run in file order, each starting from where the
previous one left app:

1. the measured matrix matches the generated rates within 20 %: against
   the bytes the guests really sent (their taps' kernel counters over the
   same window) and against the rates asked of the generators;
2. live migration (no host given): a real libvirt live migration to the
   host ``openstack netaware explain`` ranks first (lvcmp3, the peer's
   host); lvcmp2 is refused for its uplink; the guest's counter keeps
   counting; the reply gap is measured;
3. after it, the stream is counted on its new path: by lvcmp3's meter
   (the pair is local there), lvcmp1's meter has stopped counting it, and
   the matrix still has it at its rate;
4. cold migration + confirm: lands on the host ranked first (lvcmp4, the
   peer's leaf), never on lvcmp2;
5. NoValidHost, the guest keeping running (and counting) where it was:
   with the thin-uplink host asked for, and with no passing host at all.
"""

import json
import subprocess
import time

import pytest

from tests.e2e.test_migrate import SchedulerLog
from tests.e2e.test_migrate import wait_status
from tests.libvirt_e2e.conftest import TIMINGS

from nova_netaware.deploy.localstack.libvirt import hypervisor
from nova_netaware.deploy.localstack.libvirt import lab as lablib
from nova_netaware.deploy.localstack.libvirt import novastack
from nova_netaware.deploy.localstack.libvirt import ops
from nova_netaware.flowmeter import stack as meters

APP_TO_PEER_MBPS = 6      # more than 90 % of lvcmp2's 5 Mbit/s uplink
PEER_TO_APP_MBPS = 1
OBSERVER = 'lvcmp4'   # polls the guests (any lab host reaches them)
TOLERANCE = 0.2       # the bound on the matrix's error
#: the window over which the per-meter rates after the move are read
SHORT_WINDOW_S = 10


def boot(stack, name, host):
    t0 = time.monotonic()
    server = stack.osc(
        'server', 'create', '--image', novastack.IMAGE, '--flavor',
        novastack.FLAVOR, '--network', 'guests', '--availability-zone',
        'nova:' + host, '--property', 'netaware:dirty_rate_mbps=20',
        '--wait', name, '-f', 'json', timeout=600)
    assert server['OS-EXT-SRV-ATTR:host'] == host, server
    ip = list(stack.conn.compute.get_server(server['id']).addresses.values()
              )[0][0]['addr']
    wait_answer(stack, ip, t0)
    TIMINGS['boot %s on %s (s)' % (name, host)] = round(
        time.monotonic() - t0, 1)
    return server['id'], ip


def wait_answer(stack, ip, t0, timeout=300):
    while peek(stack, ip) is None:
        assert time.monotonic() - t0 < timeout, '%s never answered' % ip
        time.sleep(0.5)


def count(stack, ip):
    """Increment the guest's counter (kept in guest RAM); its new value."""
    out = ops.guest_get(stack.lab, OBSERVER, ip, '/cgi-bin/count')
    return int(out.split()[1]) if out else None


def peek(stack, ip):
    out = ops.guest_get(stack.lab, OBSERVER, ip, '/cgi-bin/peek')
    return int(out.split()[1]) if out else None


def generate(stack, src_ip, dst_ip, mbps):
    """Ask the guest at src_ip's traffic generator for mbps to dst_ip."""
    out = ops.guest_get(stack.lab, OBSERVER, src_ip, '/cgi-bin/traffic?'
                        'peer=%s&mbps=%d' % (dst_ip, mbps))
    assert out is not None and 'flow %s' % dst_ip in out, out


def explain(stack, server_id):
    """``openstack netaware explain -f json``: verdicts and ranking on the
    scheduler's own inputs (its nova.conf, so the measured matrix)."""
    rows = stack.osc('netaware', 'explain', server_id, '-f', 'json',
                     timeout=120)
    ranked = sorted((r for r in rows if r['Rank']), key=lambda r: r['Rank'])
    return {
        'source': [r['Host'] for r in rows
                   if r['Verdict'] == 'current host'][0],
        'winner': rows[0]['Winner'],
        'ranking': [r['Host'] for r in ranked],
        'refused': {r['Host']: r['Reasons'].split('; ') for r in rows
                    if r['Verdict'] == 'refused'},
    }


def measured(stack):
    """The matrix nova-scheduler reads now, by its loading path:
    ``{(src id, dst id): Mbit/s}``."""
    return dict(meters.measured_matrix(stack.settings).rates)


def tap_tx(stack, server_id, host):
    """(bytes, packets) the guest sent on its NIC: the kernel's counters
    of its tap on ``host`` (the host receives what the guest sends).
    Nova names the tap ``tap<port id[:11]>``."""
    [port] = list(stack.conn.network.ports(device_id=server_id))
    out = subprocess.run(
        ['ip', '-n', stack.lab.plan['hosts'][host]['ns'], '-s', '-j', 'link',
         'show', 'dev', 'tap' + port.id[:11]],
        capture_output=True, text=True, check=True).stdout
    rx = json.loads(out)[0]['stats64']['rx']
    return rx['bytes'], rx['packets']


def wait_series(stack, pairs, timeout=120):
    """Until Prometheus has a sample of every (src ip, dst ip) pair."""
    deadline = time.monotonic() + timeout
    while True:
        seen = {(r['metric']['src'], r['metric']['dst'])
                for r in meters.query(stack.settings,
                                      'netaware_flow_bytes_total')}
        if set(pairs) <= seen:
            return
        assert time.monotonic() < deadline, (
            'Prometheus never had the pairs %s (has %s)' % (pairs, seen))
        time.sleep(1)


def per_meter(stack, src_ip, dst_ip, window):
    """``{host: Mbit/s}`` of one pair over the last ``window`` seconds,
    per hypervisor meter that has a series of it."""
    hosts = meters.meter_instances(stack.settings, stack.hosts)
    return {hosts[r['metric']['instance']]: float(r['value'][1]) * 8 / 1e6
            for r in meters.query(stack.settings,
                                  'rate(netaware_flow_bytes_total{src="%s",'
                                  'dst="%s"}[%ds])' % (src_ip, dst_ip,
                                                       window))}


@pytest.fixture(scope='module')
def world(lvstack):
    st = lvstack
    peer, peer_ip = boot(st, 'peer', 'lvcmp3')
    app, app_ip = boot(st, 'app', 'lvcmp1')
    # real packets: each guest's generator streams to the other's sink
    generate(st, app_ip, peer_ip, APP_TO_PEER_MBPS)
    generate(st, peer_ip, app_ip, PEER_TO_APP_MBPS)
    return {'app': app, 'app_ip': app_ip, 'peer': peer, 'peer_ip': peer_ip,
            'generating': time.monotonic()}


def test_measured_matrix_matches_the_generated_rates(lvstack, world):
    """Over one rate() window, the scheduler's matrix against what the
    guests sent (tap counters, less 14 bytes of Ethernet header per frame:
    the meter counts IP bytes) and against the rates asked."""
    st, w = lvstack, world
    pairs = {(w['app_ip'], w['peer_ip']): ('app', 'peer', APP_TO_PEER_MBPS),
             (w['peer_ip'], w['app_ip']): ('peer', 'app', PEER_TO_APP_MBPS)}
    wait_series(st, pairs)
    # the window read at t1 must start after each series' first sample
    time.sleep(2 * meters.SCRAPE_INTERVAL_S)
    hosts = {'app': 'lvcmp1', 'peer': 'lvcmp3'}
    t0 = time.monotonic()
    before = {g: tap_tx(st, w[g], h) for g, h in hosts.items()}
    time.sleep(meters.RATE_WINDOW_S)
    after = {g: tap_tx(st, w[g], h) for g, h in hosts.items()}
    rates = measured(st)
    took = time.monotonic() - t0
    TIMINGS['generators started to matrix read (s)'] = round(
        time.monotonic() - w['generating'], 1)
    sent = {g: (after[g][0] - before[g][0]
                - 14 * (after[g][1] - before[g][1])) * 8 / 1e6 / took
            for g in hosts}
    print('\npair          asked  sent (tap)  matrix  vs sent  vs asked')
    errors = {}
    for (src_ip, dst_ip), (a, b, asked) in pairs.items():
        got = rates.get((w[a], w[b]), 0.0)
        errors[(a, b)] = (got / sent[a] - 1, got / asked - 1)
        print('%-4s -> %-4s  %5.2f  %10.2f  %6.2f  %+6.1f%%  %+7.1f%%' % (
            a, b, asked, sent[a], got, 100 * errors[(a, b)][0],
            100 * errors[(a, b)][1]))
        TIMINGS['matrix %s->%s Mbit/s (asked %d, sent %.2f)' % (
            a, b, asked, sent[a])] = round(got, 2)
    for (a, b), (vs_sent, vs_asked) in errors.items():
        assert abs(vs_sent) <= TOLERANCE, (a, b, errors, rates)
        assert abs(vs_asked) <= TOLERANCE, (a, b, errors, rates)
    # nothing else: the guests' only other packets are the observer's
    # HTTP polls, whose address has no port (skipped, logged)
    assert set(rates) == {(w['app'], w['peer']), (w['peer'], w['app'])}


def test_live_migration_moves_the_guest_to_the_lowest_mif_host(lvstack,
                                                               world):
    st, app, ip = lvstack, world['app'], world['app_ip']
    exp = explain(st, app)
    print('explain before the live migration: ranking %s, refused %s'
          % (exp['ranking'], exp['refused']))
    assert exp['source'] == 'lvcmp1'
    assert exp['winner'] == 'lvcmp3', exp
    assert lablib.THIN_HOST in exp['refused'], exp
    assert any(r.startswith('uplink') for r in
               exp['refused'][lablib.THIN_HOST]), exp['refused']
    log = SchedulerLog(st.scheduler_log)
    _, took, points, gap, end = ops.probed(
        st.lab, OBSERVER, ip, lambda: st.osc(
            'server', 'migrate', '--live-migration', '--wait', app,
            timeout=600))
    dest = wait_status(st, app, {'ACTIVE'}).compute_host
    world['moved'] = time.monotonic()
    TIMINGS['live migration (s)'] = round(took, 1)
    TIMINGS['live migration reply gap (s)'] = round(gap, 2)
    print('live migration lvcmp1 -> %s: %.1f s (CLI --wait), longest reply '
          'gap %.2f s, counter %d -> %d' % (dest, took, gap, points[0][1],
                                            points[-1][1]))
    assert dest == exp['winner']
    # a real libvirt move: the domain is on the destination's libvirtd now
    domains = novastack_domains(st, dest)
    assert domains, 'no domain on %s' % dest
    assert not novastack_domains(st, 'lvcmp1')
    # the guest kept its memory: the counter went on, no restart
    counts = [c for _, c in points]
    assert counts == sorted(counts) and counts[-1] > counts[0] > 0
    assert end - points[-1][0] < 2.0, (
        'the guest stopped answering %.1f s before the probe ended; its '
        'console on %s:\n%s' % (end - points[-1][0], dest,
                                console(st, dest, app)))
    assert peek(st, ip) >= counts[-1]
    assert gap < 10, gap
    assert lablib.THIN_HOST in log.refusals(app)


def test_after_the_move_the_traffic_is_measured_on_its_new_path(lvstack,
                                                                world):
    """app's stream to peer, now local to lvcmp3: lvcmp3's meter counts
    it (it enters lvcmp3's bridge from app's new tap), lvcmp1's meter has
    stopped counting it, and the scheduler's matrix still has the pair at
    its rate (the generator kept running: same memory)."""
    st, w = lvstack, world
    pair = (w['app_ip'], w['peer_ip'])
    # a full short window after the switch-over
    time.sleep(max(0.0, w['moved'] + SHORT_WINDOW_S
                   + meters.SCRAPE_INTERVAL_S - time.monotonic()))
    rates = per_meter(st, *pair, window=SHORT_WINDOW_S)
    matrix = measured(st).get((w['app'], w['peer']), 0.0)
    print('\napp -> peer after the move, per meter over %d s: %s; matrix '
          '%.2f Mbit/s' % (SHORT_WINDOW_S, {h: round(v, 2) for h, v in
                                            rates.items()}, matrix))
    TIMINGS['after the move app->peer lvcmp3 meter Mbit/s'] = round(
        rates.get('lvcmp3', 0.0), 2)
    assert rates.get('lvcmp1', 0.0) == 0.0, rates
    assert abs(rates['lvcmp3'] / APP_TO_PEER_MBPS - 1) <= TOLERANCE, rates
    assert abs(matrix / APP_TO_PEER_MBPS - 1) <= TOLERANCE, matrix
    # the pair is local now: explain's reference row (the current host)
    # has no communication cost left
    rows = st.osc('netaware', 'explain', w['app'], '-f', 'json')
    assert rows[0]['Host'] == 'lvcmp3'
    assert rows[0]['Verdict'] == 'current host'
    assert rows[0]['Comm (Mbit/s x hop)'] == 0, rows[0]


def console(st, host, server_id, lines=15):
    """The tail of the guest's serial console log on ``host`` (Nova writes
    it in the instance directory, private to each host)."""
    import os
    path = os.path.join(st.lab.s.host_dir(host), 'instances', server_id,
                        'console.log')
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError as exc:
        return '(no console log: %s)' % exc


def novastack_domains(st, host):
    return [n for n in hypervisor.virsh(
        st.lab.holder(host), 'list', '--name').split() if n]


def test_cold_migration_lands_on_the_lowest_mif_host(lvstack, world):
    st, app, ip = lvstack, world['app'], world['app_ip']
    exp = explain(st, app)
    print('explain before the cold migration: ranking %s, refused %s'
          % (exp['ranking'], exp['refused']))
    assert exp['winner'] == 'lvcmp4', exp
    assert lablib.THIN_HOST in exp['refused']
    t0 = time.monotonic()
    st.osc('server', 'migrate', '--wait', app, timeout=600)
    wait_status(st, app, {'VERIFY_RESIZE'})
    st.osc('server', 'migration', 'confirm', app)
    dest = wait_status(st, app, {'ACTIVE'}).compute_host
    TIMINGS['cold migration + confirm (s)'] = round(time.monotonic() - t0, 1)
    assert dest == exp['winner']
    # the guest boots again on its new host (a cold move restarts it)
    wait_answer(st, ip, t0)
    TIMINGS['cold migration to first answer (s)'] = round(
        time.monotonic() - t0, 1)


def _no_valid_host(st, app, ip, *extra):
    """``openstack server migrate --live-migration [extra] --wait`` fails
    with No valid host; the guest stays, the same running guest (its RAM
    counter goes on from where it was). Returns the scheduler's refusals
    for the request."""
    source = st.conn.compute.get_server(app).compute_host
    log = SchedulerLog(st.scheduler_log)
    before = count(st, ip)
    res = st.osc('server', 'migrate', '--live-migration', *extra,
                 '--wait', app, check=False, timeout=300)
    assert res.returncode != 0, res.stdout
    assert 'No valid host' in res.stderr, res.stderr
    print('live migration %s: %s' % (' '.join(extra) or '(no host)',
                                     res.stderr.strip()[-200:]))
    server = wait_status(st, app, {'ACTIVE'})
    assert server.compute_host == source
    assert novastack_domains(st, source)
    after = count(st, ip)
    assert before is not None and after == before + 1, (before, after)
    return log.refusals(app)


def test_no_valid_host_and_the_guest_stays(lvstack, world):
    """1. The operator asks for the thin-uplink host: the only candidate
    is refused for its uplink.

    2. No host given and none passes. The server's own traffic cannot
    refuse every host here: the move removes it from the uplinks it
    loaded, so the peer's host always keeps its uplink (the flow becomes
    local) and the other hosts' 100 Mbit/s uplinks would need a stream of
    ~90 Mbit/s, which a TCG guest does not send (measured: a few Mbit/s).
    What refuses every host is the other physical limit of a live
    migration: its pre-copy over the bottleneck. The server declares a
    dirty rate (``netaware:dirty_rate_mbps``, server metadata, as an
    operator would for a write-heavy guest) above any path's free
    bandwidth (at most 90 % of 100 Mbit/s): the copy cannot converge
    towards any host."""
    st, app, ip = lvstack, world['app'], world['app_ip']
    exp = explain(st, app)
    assert lablib.THIN_HOST in exp['refused'], exp
    refusals = _no_valid_host(st, app, ip, '--host', lablib.THIN_HOST)
    assert lablib.THIN_HOST in refusals, refusals

    st.osc('server', 'set', '--property', 'netaware:dirty_rate_mbps=200',
           app)
    try:
        exp = explain(st, app)
        print('explain with a dirty rate of 200 Mbit/s: winner %s, refused '
              '%s' % (exp['winner'], exp['refused']))
        others = set(st.hosts) - {exp['source']}
        assert exp['winner'] is None and set(exp['refused']) == others, exp
        assert all(any(r.startswith('migration: does not converge')
                       for r in exp['refused'][h]) for h in others), exp
        refusals = _no_valid_host(st, app, ip)
        assert set(refusals) == others, refusals
    finally:
        st.osc('server', 'set', '--property', 'netaware:dirty_rate_mbps=20',
               app)
