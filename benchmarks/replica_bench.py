#!/usr/bin/env python3
"""Replica agent benchmark on the real kernel (root; namespaces + NFQUEUE).

    sudo .venv/bin/python benchmarks/replica_bench.py [--packets 100000]
        [--switchovers 20] [--state-bytes 65536] [--burst 50000]
    sudo .venv/bin/python benchmarks/replica_bench.py --real-guest
        [--cycles 20] [--interval 0.001]      (benchmarks/replica/real_guest.py)
    sudo .venv/bin/python benchmarks/replica_bench.py --two-clouds
        [--stack-dir DIR] [--switchovers 20] [--image-mb 128] [--no-rps]
                                              (benchmarks/replica/two_clouds.py)

Measures in one run, on one test bed (see nova_netaware.replica.lab):

1. the inter-cloud link: TCP bulk bandwidth and round-trip time between the
   two hypervisor namespaces (the agents' peer channel runs over it);
2. the reference: plain NFQUEUE pass-through (accept only, no buffer);
3. durable buffering rate (SQLite WAL, group commit; synchronous NORMAL on
   B and FULL on A) and replay rate;
4. end to end: clients in both clouds (--clients-per-cloud each) send
   --packets numbered requests
   while --switchovers switchovers happen; every request must be served
   exactly once, in order per client, with every reply received; the
   downtime of each switchover is the gap between the last request served
   by the old copy and the first served by the new one (server-side
   CLOCK_MONOTONIC stamps carried in the replies), compared with the floor
   state size / link bandwidth + one RTT.

Rates are "saturated": the listener (agent or reference) is stopped while a
burst is sent, so the kernel queue holds the whole burst; the rate is the
burst size over the time from resuming the listener until the last packet is
done (read from /proc/<pid>/net/netfilter/nfnetlink_queue and, for the
agent, until the buffer holds the burst durably).

Nothing is hard-coded: every figure printed is measured in this run. Exit
status 0 only if every target is met.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from nova_netaware.replica import lab as lab_mod  # noqa: E402
from replica import pct, rates  # noqa: E402


def log(msg):
    print('[bench %s] %s' % (time.strftime('%H:%M:%S'), msg), flush=True)


# ------------------------------------------------------------------ e2e
def end_to_end(lab, packets, switchovers, rate_per_cloud, per_cloud=1):
    per_client = packets // (2 * per_cloud)
    seconds = per_client / (rate_per_cloud / per_cloud)
    clients = []
    for x in 'ab':
        for i in range(1, per_cloud + 1):
            clients.append(lab.start_client(
                x, 'e2e-%s%d' % (x, i), per_client,
                rate_per_cloud / per_cloud, timeout=seconds + 60))
    # all clients sending before the first switchover, and the last
    # in-traffic switchover well before they stop
    interval = seconds / (switchovers + 1.5)
    for c in clients:
        lab.wait_started(c, 60)
    time.sleep(interval / 2)
    results = []
    t_next = time.monotonic()
    old_steps = []
    for i in range(switchovers):
        t_next += interval
        side = lab.active_side() if i % 2 else \
            ('b' if lab.active_side() == 'a' else 'a')
        r = lab.switchover(side)
        if not r.get('ok'):
            raise RuntimeError('switchover %d failed: %s' % (i, r))
        new = lab.wait_idle()
        results.append(lab.status(new)['last_switchover'])
        old_steps.append(lab.status('a' if new == 'b' else 'b')[
            'last_switchover'].get('steps_ms') or {})
        time.sleep(max(0.0, t_next - time.monotonic()))
    for c in clients:
        lab.wait_sent(c, seconds + 60)
    time.sleep(0.3)
    r = lab.switchover(lab.active_side())  # drains the last buffer
    if not r.get('ok'):
        raise RuntimeError('final switchover failed: %s' % r)
    active = lab.wait_idle()
    results.append(lab.status(active)['last_switchover'])
    res = [lab.client_result(c, seconds + 120) for c in clients]
    return res, results, active, old_steps


def downtimes_from_replies(res):
    """Gaps between runs of replies served by one copy then the other."""
    ev = []
    for r in res:
        cloud = r['id'][4]
        ev += [(t, cloud) for t in r['served_ns']]
    ev.sort()
    gaps = []
    for (t0, c0), (t1, c1) in zip(ev, ev[1:]):
        if c0 != c1:
            gaps.append((t1 - t0) / 1e9)
    return gaps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--packets', type=int, default=100_000)
    ap.add_argument('--switchovers', type=int, default=20)
    ap.add_argument('--state-bytes', type=int, default=64 << 10)
    ap.add_argument('--burst', type=int, default=50_000)
    ap.add_argument('--rate-per-cloud', type=float, default=5000.0)
    ap.add_argument('--clients-per-cloud', type=int, default=1)
    ap.add_argument('--nice', type=int, default=-10,
                    help='nice value of the agents and guests (a hypervisor '
                         'gives its replica agent and VMs CPU priority); '
                         '0 to run them like everything else')
    ap.add_argument('--json', help='also write the figures to this file')
    ap.add_argument('--real-guest', action='store_true',
                    help='instead: a real QEMU guest under libvirt, its tap '
                         'on a bridge; libvirt suspend+resume, one round '
                         'trip and the held traffic\'s downtime of '
                         '--cycles pause/resume cycles through the data '
                         'plane (benchmarks/replica/real_guest.py)')
    ap.add_argument('--cycles', type=int, default=20,
                    help='--real-guest: pause/resume cycles')
    ap.add_argument('--interval', type=float, default=0.001,
                    help='--real-guest: seconds between numbered echoes')
    ap.add_argument('--two-clouds', action='store_true',
                    help='instead: the replica pair across the two clouds '
                         'of local-stack up --virt libvirt --clouds 2: '
                         'replicate time beside a plain glance copy, the '
                         'floor and --switchovers switchovers '
                         '(benchmarks/replica/two_clouds.py)')
    ap.add_argument('--stack-dir', help='--two-clouds: a running two-cloud '
                    'stack (default: bring one up and take it down)')
    ap.add_argument('--image-mb', type=int, default=128,
                    help='--two-clouds: size of the replicated image')
    ap.add_argument('--agent-option', action='append', default=[],
                    metavar='NAME=VALUE',
                    help='--two-clouds: a [replica] option for both agents '
                         '(repeatable), e.g. replay_window=64')
    ap.add_argument('--realtime', type=int, default=0, metavar='PRIO',
                    help='--two-clouds: run both agents at SCHED_FIFO '
                         'PRIO ([replica] realtime_priority) and put the '
                         'hypervisors\' libvirtd threads, hence the QEMUs '
                         'they start, at SCHED_FIFO PRIO for the run, as '
                         'a systemd drop-in with CPUSchedulingPolicy=fifo '
                         'would (default 0: neither)')
    ap.add_argument('--no-rps', action='store_true',
                    help='--two-clouds: leave the lab\'s interfaces without '
                         'receive packet steering (see '
                         'benchmarks/replica/two_clouds.py lab_rps)')
    a = ap.parse_args()
    if a.two_clouds:
        return two_clouds_main(a)
    if a.real_guest:
        return real_guest_main(a)
    if a.packets < 4 or a.switchovers < 2 or a.burst < 1 or \
            a.burst > 65000 or a.state_bytes < 0 or a.rate_per_cloud <= 0 \
            or a.clients_per_cloud < 1:
        ap.error('need --packets >= 4, --switchovers >= 2, 1 <= --burst <= '
                 '65000 (kernel queue cap), --state-bytes >= 0, '
                 '--rate-per-cloud > 0, --clients-per-cloud >= 1')
    if os.geteuid() != 0:
        sys.exit('replica_bench: needs root (network namespaces, NFQUEUE)')
    work = tempfile.mkdtemp(prefix='nnr-bench-')
    lab = lab_mod.Lab(work, nice=a.nice)
    log('test bed %s in %s' % (lab.p, work))
    lab.build()
    out = {}
    try:
        for x in 'ab':
            lab.start_guest(x, pad_bytes=a.state_bytes)
        bw, rtt = rates.measure_link(lab)
        out.update(link_bytes_per_s=bw, rtt_s=rtt)
        log('link: %.0f MB/s, RTT %.3f ms' % (bw / 1e6, rtt * 1e3))
        measure_rates(lab, a, out)
        measure_end_to_end(lab, a, out)
    finally:
        lab.destroy()
    report(out, a)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(out, f, indent=2)
    return 0 if out.get('all_targets_met') else 1


def two_clouds_main(a):
    if a.switchovers < 2 or not 0.0001 <= a.interval <= 1.0 or \
            a.image_mb < 0:
        sys.exit('replica_bench: need --switchovers >= 2, 0.0001 <= '
                 '--interval <= 1 and --image-mb >= 0')
    if os.geteuid() != 0:
        sys.exit('replica_bench: needs root (namespaces, libvirtd, NFQUEUE)')
    from replica import two_clouds
    opts = {}
    for item in a.agent_option:
        name, eq, value = item.partition('=')
        if not eq or not name:
            sys.exit('replica_bench: --agent-option needs NAME=VALUE, got '
                     '%r' % item)
        opts[name.strip()] = value.strip()
    if not 0 <= a.realtime <= 99:
        sys.exit('replica_bench: --realtime needs 0..99, got %d'
                 % a.realtime)
    out = two_clouds.run(a.stack_dir, a.switchovers, a.interval,
                         a.image_mb, log=log, agent_opts=opts,
                         rps=not a.no_rps, realtime=a.realtime)
    ok = two_clouds.report(out, print_table)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(out, f, indent=2)
    return 0 if ok else 1


def real_guest_main(a):
    if a.cycles < 2 or not 0.0001 <= a.interval <= 1.0:
        sys.exit('replica_bench: need --cycles >= 2 and 0.0001 <= '
                 '--interval <= 1')
    if os.geteuid() != 0:
        sys.exit('replica_bench: needs root (namespaces, libvirtd, NFQUEUE)')
    from replica import real_guest
    out = real_guest.run(a.cycles, a.interval, log=log)
    ok = real_guest.report(out, print_table)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(out, f, indent=2)
    return 0 if ok else 1


def measure_rates(lab, a, out):
    """Reference pass-through, durable buffering on B (NORMAL) and A (FULL)
    and the replay of each buffer; starts the agents (A active)."""
    ref, qd, ud = rates.reference_passthrough(lab, a.burst)
    out['passthrough_pps'] = ref
    out['passthrough_kernel_drops'] = qd + ud
    log('reference NFQUEUE pass-through: %.0f pkt/s' % ref)

    common = dict(nfqueue_max_len=65536, handoff_timeout=30,
                  state_timeout=30, peer_timeout=30)
    lab.start_agent('a', buffer_synchronous='FULL', **common)
    lab.start_agent('b', buffer_synchronous='NORMAL', **common)
    assert lab.wait_idle() == 'a'

    # durable buffering on B (NORMAL), then replay on activation
    ls = buffer_and_replay(lab, a, 'b', 'NORMAL', out)
    log('replay: %d packets at %.0f pkt/s' % (
        ls['replayed'], out['replay_pps_normal']))
    # durable buffering on A (FULL), replay back
    buffer_and_replay(lab, a, 'a', 'FULL', out)
    ga = lab.guest_stats('a')
    burst_ok = (ga['clients'].get('burst-a') == [a.burst] * 2 + [0, 0]
                and ga['clients'].get('burst-b') == [a.burst] * 2 +
                [0, 0])
    out['burst_exactly_once'] = burst_ok
    log('bursts served exactly once in order: %s' % burst_ok)


def buffer_and_replay(lab, a, standby, sync, out):
    """Durable buffering of a burst on ``standby`` (its buffer runs at
    synchronous=``sync``), then the replay when it takes over; returns its
    last switchover."""
    active = 'a' if standby == 'b' else 'b'
    rate, qd, ud = rates.buffering_rate(lab, standby, 'burst-' + standby,
                                        a.burst)
    out['buffer_pps_' + sync.lower()] = rate
    out['buffer_kernel_drops'] = out.get('buffer_kernel_drops', 0) + qd + ud
    log('durable buffering (synchronous=%s): %.0f pkt/s' % (sync, rate))
    r = lab.switchover(active)
    assert r.get('ok'), r
    assert lab.wait_idle() == standby
    ls = lab.status(standby)['last_switchover']
    out['replay_pps_' + sync.lower()] = ls['replayed'] / ls['replay_seconds']
    return ls


def measure_end_to_end(lab, a, out):
    """Clients in both clouds while switchovers happen: loss, duplicates,
    order and the downtime of each switchover."""
    bw, rtt = out['link_bytes_per_s'], out['rtt_s']
    log('end to end: %d packets, %d switchovers' % (a.packets,
                                                 a.switchovers))
    res, sw, active, old_steps = end_to_end(
        lab, a.packets, a.switchovers, a.rate_per_cloud,
        a.clients_per_cloud)
    osteps = {}
    for s_ in old_steps:
        for k, v in s_.items():
            osteps.setdefault(k, []).append(v)
    out['handing_off_steps_ms_median'] = {
        k: statistics.median(v) for k, v in osteps.items()}
    st = lab.guest_stats(active)
    lost = sum(r['missing_count'] for r in res)
    dup_replies = sum(r['replies'] - r['unique_replies'] for r in res)
    reordered = sum(0 if r['in_order'] else 1 for r in res)
    bad_state = [r['id'] for r in res if st['clients'].get(r['id']) !=
                 [r['last'], r['sent'], 0, 0]]
    sent = sum(r['sent'] for r in res)
    # the last switchover only drains the last buffer after the
    # clients stopped: the old copy was idle, so it is no downtime
    # sample; the others all happen while both clouds send
    gaps = downtimes_from_replies(res)[:len(sw) - 1]
    agent_dt = [s['downtime_s'] for s in sw[:-1] if s and
                s.get('downtime_s') is not None]
    state_size = max(s['state_bytes'] for s in sw)
    floor = state_size / bw + rtt
    steps = {}
    for s_ in sw:
        for k, v in ((s_ or {}).get('steps_ms') or {}).items():
            steps.setdefault(k, []).append(v)
    out['activation_steps_ms_median'] = {
        k: statistics.median(v) for k, v in steps.items()}
    out.update(e2e_sent=sent, e2e_lost=lost, e2e_dup_replies=dup_replies,
               e2e_reordered_clients=reordered, e2e_bad_state=bad_state,
               e2e_switchovers=len(sw), e2e_state_bytes=state_size,
               downtime_gaps_s=gaps, downtime_agent_s=agent_dt,
               floor_s=floor)
    n_cl = 2 * a.clients_per_cloud
    out['e2e_ok'] = (lost == 0 and dup_replies == 0 and reordered == 0
                     and not bad_state and sent == a.packets - a.packets
                     % n_cl and st['total'] >= sent)


def print_table(hdr, rows):
    """A Markdown table, columns as wide as their widest cell."""
    n = len(hdr)
    w = [max(len(r[i]) for r in rows) for i in range(n)]
    w = [max(w[i], len(hdr[i])) for i in range(n)]
    line = '| ' + ' | '.join('%-*s' % (w[i], hdr[i]) for i in range(n)) + ' |'
    print()
    print(line)
    print('|' + '|'.join('-' * (w[i] + 2) for i in range(n)) + '|')
    for r in rows:
        print('| ' + ' | '.join('%-*s' % (w[i], r[i]) for i in range(n)) +
              ' |')


def report(o, a):
    gaps = o.get('downtime_gaps_s') or [float('nan')]
    dmed, dmax = statistics.median(gaps), max(gaps)
    d90 = pct(gaps, 90)
    floor = o.get('floor_s', float('nan'))
    target_dt = 2 * floor + 0.020
    ref = o.get('passthrough_pps', float('nan'))
    rows = [
        ('inter-cloud link bandwidth', '%.0f MB/s' % (
            o['link_bytes_per_s'] / 1e6), '', ''),
        ('inter-cloud RTT', '%.3f ms' % (o['rtt_s'] * 1e3), '', ''),
        ('state size carried', '%d B' % o.get('e2e_state_bytes', 0), '', ''),
        ('downtime floor (state/bw + RTT)', '%.2f ms' % (floor * 1e3), '',
         ''),
        ('downtime, median of %d in traffic' % len(gaps), '%.2f ms' % (
            dmed * 1e3), '%.1f x floor' % (dmed / floor),
         '<= %.2f ms' % (target_dt * 1e3)),
        ('downtime, p90', '%.2f ms' % (d90 * 1e3),
         '%.1f x floor' % (d90 / floor), '<= %.2f ms' % (target_dt * 1e3)),
        ('downtime, max', '%.2f ms' % (dmax * 1e3),
         '%.1f x floor' % (dmax / floor), '<= %.2f ms' % (target_dt * 1e3)),
        ('NFQUEUE pass-through (reference)', '%.0f pkt/s' % ref, '1.00', ''),
        ('durable buffering, sync NORMAL', '%.0f pkt/s' % o[
            'buffer_pps_normal'], '%.2f x ref' % (o['buffer_pps_normal'] /
                                                   ref), '>= 30000 pkt/s'),
        ('durable buffering, sync FULL', '%.0f pkt/s' % o['buffer_pps_full'],
         '%.2f x ref' % (o['buffer_pps_full'] / ref), ''),
        ('replay (from NORMAL buffer)', '%.0f pkt/s' % o[
            'replay_pps_normal'], '%.2f x ref' % (o['replay_pps_normal'] /
                                                   ref), ''),
        ('replay (from FULL buffer)', '%.0f pkt/s' % o['replay_pps_full'],
         '%.2f x ref' % (o['replay_pps_full'] / ref), ''),
        ('end to end: requests / switchovers', '%d / %d + 1 drain' % (
            o['e2e_sent'], o['e2e_switchovers'] - 1), '',
         '%d / %d' % (a.packets, a.switchovers)),
        ('lost / duplicated / reordered', '%d / %d / %d' % (
            o['e2e_lost'], o['e2e_dup_replies'],
            o['e2e_reordered_clients']), '', '0 / 0 / 0'),
    ]
    print_table(('measure', 'value', 'ratio', 'target'), rows)
    targets = {
        'zero loss/dup/reorder over %d packets, %d switchovers' % (
            a.packets, a.switchovers):
            o['e2e_ok'] and o['e2e_switchovers'] - 1 >= a.switchovers and
            o['e2e_sent'] >= a.packets - 2 * a.clients_per_cloud + 1 and
            o['burst_exactly_once'],
        'durable buffering >= 30000 pkt/s':
            o['buffer_pps_normal'] >= 30000,
        'downtime <= 2 x floor + 20 ms (max)': dmax <= target_dt,
    }
    print()
    for k, v in targets.items():
        print('%-62s %s' % (k, 'MET' if v else 'NOT MET'))
    print('downtime samples over the target: %d of %d' % (
        sum(1 for g in gaps if g > target_dt), len(gaps)))
    if o.get('downtime_agent_s'):
        print('agent-reported downtimes: median %.2f ms, max %.2f ms' % (
            statistics.median(o['downtime_agent_s']) * 1e3,
            max(o['downtime_agent_s']) * 1e3))
    if o.get('handing_off_steps_ms_median'):
        print('handing-off side, median ms per step: ' + ', '.join(
            '%s %.2f' % kv for kv in o['handing_off_steps_ms_median'].items()))
    if o.get('activation_steps_ms_median'):
        print('activating side, median ms per step: ' + ', '.join(
            '%s %.2f' % kv for kv in o['activation_steps_ms_median'].items()))
    print('agents and guests ran at nice %d' % a.nice)
    try:
        print('load average during the run: %.2f %.2f %.2f (%d CPUs)' % (
            os.getloadavg() + (os.cpu_count(),)))
    except OSError:
        pass
    o['all_targets_met'] = all(targets.values())


if __name__ == '__main__':
    sys.exit(main())
