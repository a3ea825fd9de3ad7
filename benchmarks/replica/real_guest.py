"""``replica_bench.py --real-guest``: the floor pieces of a switchover for a
real QEMU (TCG) guest under libvirt, and the held traffic's downtime of one
pause/resume cycle through the nfqueue data plane at the guest's bridge
port. One bed (nova_netaware.replica.lab.guestbed), one run:

1. libvirt's own suspend + resume of the guest (``--cycles`` times, the
   ``libvirt`` cloud driver: virDomainSuspend / virDomainResume until
   libvirt reports the state), no traffic held;
2. one round trip client -> guest -> client: ICMP echo through the data
   plane in pass mode (the guest kernel answers), and one request to the
   guest's counter service (HTTP, a CGI under TCG) for scale;
3. ``--cycles`` hold/release cycles (one ``cycle`` command of the port
   controller each) while the client sends a numbered echo every
   ``--interval`` seconds: fence (buffer mode) + suspend, then at once
   resume + ordered replay + pass. Downtime of a cycle = the
   longest gap between two consecutive replies at the client from 50 ms
   before its fence to 50 ms before the next cycle's (cycles are 0.3 s
   apart).
   Every echo must come back exactly once, in order.

floor = median(suspend + resume) + median(echo RTT). The issue's switchover
target shape, 2 x floor + 20 ms, is printed beside it for reference: this
is one side's pause/resume, not a two-cloud switchover (no state
transfer, no peer).
"""

import os
import socket
import statistics
import tempfile
import threading
import time

from nova_netaware.replica.lab import guestbed
from nova_netaware.replica.lab.echo import EchoStream, paced
from replica import pct


def run(cycles=20, interval=0.001, log=print, workdir=None):
    problem = guestbed.problem()
    if problem:
        raise SystemExit('replica_bench --real-guest: ' + problem)
    bed = guestbed.GuestBed(workdir or tempfile.mkdtemp(
        prefix='nnr-guest-bench-'))
    out = {'cycles': cycles, 'interval_s': interval}
    log('guest bed %s in %s' % (bed.p, bed.dir))
    try:
        bed.build()
        out['guest_boot_s'] = bed.start_guest()
        out['hypervisor_up_s'] = bed.timings['hypervisor_up_s']
        log('hypervisor up in %.1f s, guest answers %.1f s after start'
            % (out['hypervisor_up_s'], out['guest_boot_s']))
        ctl = bed.start_port('pass')
        try:
            _measure(bed, ctl, cycles, interval, out, log)
        finally:
            ctl.close()
    finally:
        bed.destroy()
    return out


def _measure(bed, ctl, cycles, interval, out, log):
    sr = ctl.call('suspend_resume', n=cycles)
    both = [p + r for p, r in zip(sr['pause_ms'], sr['resume_ms'])]
    out['suspend_ms'] = sr['pause_ms']
    out['resume_ms'] = sr['resume_ms']
    out['suspend_resume_ms'] = both
    log('libvirt suspend+resume: median %.2f ms' % statistics.median(both))

    echo = EchoStream(bed.client_socket(socket.SOCK_RAW,
                                        socket.IPPROTO_ICMP), bed.guest_ip)
    try:
        echo.send_many(100, 0.01)
        echo.wait_replies(100, 10)
        rtts = [x * 1e3 for x in echo.rtts()]
        out['echo_rtt_ms'] = rtts
        http = []
        for _ in range(10):
            t0 = time.monotonic()
            bed.count()
            http.append((time.monotonic() - t0) * 1e3)
        out['http_rtt_ms'] = http
        log('echo RTT median %.3f ms, HTTP count RTT median %.1f ms'
            % (statistics.median(rtts), statistics.median(http)))

        base = len(echo.replies)
        stop = []

        th = threading.Thread(target=paced, args=(interval, echo.send,
                                                  stop), daemon=True)
        th.start()
        time.sleep(0.5)
        marks = []
        for _ in range(cycles):
            c = ctl.call('cycle')
            marks.append((c, c))
            time.sleep(0.3)
        time.sleep(0.5)
        stop.append(1)
        th.join(5)
        sent = len(echo.sent)
        echo.wait_replies(sent, 20)
        res = echo.result()
        out['echo_result'] = {k: v for k, v in res.items() if k != 'missing'}
        out['echo_missing'] = len(res['missing'])
        arrivals = [t for _, t in echo.replies[base:]]
        downs, steps = [], []
        # each cycle's window: from 50 ms before its fence to 50 ms before
        # the next cycle's fence (the windows do not overlap)
        bounds = [h['t_fence'] - 0.05 for h, _ in marks] + [float('inf')]
        for i, (h, r) in enumerate(marks):
            lo, hi = bounds[i], bounds[i + 1]
            win = [t for t in arrivals if lo <= t < hi]
            gaps = [b - a for a, b in zip(win, win[1:])]
            downs.append(max(gaps) * 1e3 if gaps else float('nan'))
            steps.append({'fence_ms': h['fence_ms'],
                          'suspend_ms': h['pause_ms'],
                          'resume_ms': r['unpause_ms'],
                          'cycle_ms': (r['t_released'] - h['t_fence']) * 1e3,
                          'replay_ms': r['replay_ms'],
                          'replayed': r['replayed']})
        out['downtime_ms'] = downs
        out['cycle_steps'] = steps
    finally:
        echo.close()
    floor = statistics.median(both) + statistics.median(rtts)
    out['floor_ms'] = floor
    out['target_ms'] = 2 * floor + 20


def report(o, print_table):
    sr = o['suspend_resume_ms']
    dn = o['downtime_ms']
    fl = o['floor_ms']
    med = statistics.median
    rows = [
        ('guest boot to first service answer', '%.1f s' % o['guest_boot_s'],
         '', ''),
        ('libvirt suspend, median', '%.2f ms' % med(o['suspend_ms']), '', ''),
        ('libvirt resume, median', '%.2f ms' % med(o['resume_ms']), '', ''),
        ('libvirt suspend + resume, median / p90',
         '%.2f / %.2f ms' % (med(sr), pct(sr, 90)), '', ''),
        ('echo round trip (data plane in pass), median',
         '%.3f ms' % med(o['echo_rtt_ms']), '', ''),
        ('service request round trip (HTTP CGI), median',
         '%.1f ms' % med(o['http_rtt_ms']),
         '%.1f x echo' % (med(o['http_rtt_ms']) / med(o['echo_rtt_ms'])),
         ''),
        ('floor = suspend + resume + echo RTT', '%.2f ms' % fl, '1.00', ''),
        ('held-traffic downtime, median', '%.2f ms' % med(dn),
         '%.2f x floor' % (med(dn) / fl), '<= %.2f ms' % o['target_ms']),
        ('held-traffic downtime, p90', '%.2f ms' % pct(dn, 90),
         '%.2f x floor' % (pct(dn, 90) / fl), '<= %.2f ms' % o['target_ms']),
        ('held-traffic downtime, max', '%.2f ms' % max(dn),
         '%.2f x floor' % (max(dn) / fl), ''),
        ('echoes sent / lost / dup / in order',
         '%d / %d / %d / %s' % (o['echo_result']['sent'], o['echo_missing'],
                                o['echo_result']['duplicates'],
                                o['echo_result']['in_order']), '',
         'x / 0 / 0 / True'),
    ]
    print_table(['real guest (%d cycles, echo every %.1f ms)'
                 % (o['cycles'], o['interval_s'] * 1e3), 'value', 'ratio',
                 'target'], rows)
    st = o['cycle_steps']
    print('\nper cycle, median ms: fence %.2f, suspend %.2f, resume %.2f, '
          'replay %.2f, fence to replayed %.2f (%.0f packets replayed per '
          'cycle)' % (
              med([s['fence_ms'] for s in st]),
              med([s['suspend_ms'] for s in st]),
              med([s['resume_ms'] for s in st]),
              med([s['replay_ms'] for s in st]),
              med([s['cycle_ms'] for s in st]),
              med([s['replayed'] for s in st])))
    try:
        print('load average during the run: %.2f %.2f %.2f (%d CPUs)'
              % (os.getloadavg() + (os.cpu_count(),)))
    except OSError:
        pass
    ok = (o['echo_missing'] == 0 and o['echo_result']['duplicates'] == 0
          and o['echo_result']['in_order'] and
          med(dn) <= o['target_ms'] and pct(dn, 90) <= o['target_ms'])
    o['all_targets_met'] = ok
    print('zero loss/dup/reorder and downtime median, p90 <= 2 x floor + '
          '20 ms: %s' % ('MET' if ok else 'NOT MET'))
    return ok
