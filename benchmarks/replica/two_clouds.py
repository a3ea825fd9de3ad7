"""``replica_bench.py --two-clouds``: the replica pair across the two
clouds of ``local-stack up --virt libvirt --clouds 2`` (brought up here
unless ``--stack-dir`` names a running one), measured in one run.

1. Replicate: the real ``replicate`` command, cloud-a -> cloud-b, of a
   server booted from a ``--image-mb`` MB image (random bytes, so nothing
   compresses), with its per-step times; beside it, the baseline: a plain
   glance download of the same snapshot from cloud-a and an upload of the
   same bytes to cloud-b.
2. The floor, before the agents start: libvirt's own suspend + resume of
   the source guest (the call the agent's fast path makes), the state size
   over the measured inter-cloud bandwidth, and one round trip between the
   two hypervisors across the link (ICMP).
3. ``--switchovers`` switchovers with one numbered ICMP echo every
   ``--interval`` s from a client in each cloud to its side's copy
   (:mod:`nova_netaware.replica.lab.echo`). The downtime of a switchover
   is the time from the old copy's last reply to the new copy's first
   (both streams in this process: one clock). Each side's echoes sent
   while it is paused are held in its hypervisor's durable buffer and
   replayed at its next activation; at the end, every echo must have been
   answered exactly once and in order. Each downtime is also laid out as
   a timeline (``timeline_ms`` in ``--json``): the agents' CLOCK_MONOTONIC
   marks between the old copy's last reply and the new copy's first.
"""

import bisect
import os
import statistics
import subprocess
import tempfile
import threading
import time

from replica import pct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LAUNCHER = os.path.join(ROOT, 'devstack', 'local-stack')
HOST_A, CLIENT_A = 'lvcmp1', 'lvcmp3'
HOST_B, CLIENT_B = 'lvbcmp1', 'lvbcmp2'


def _stack(stack_dir, log):
    """A running two-cloud stack at ``stack_dir``, or one brought up in a
    new directory (returned with a teardown callable)."""
    if stack_dir:
        return stack_dir, lambda: None
    d = tempfile.mkdtemp(prefix='nnr-two-clouds-')
    env = dict(os.environ, NETAWARE_STACK_DIR=d)
    t0 = time.monotonic()
    res = subprocess.run([LAUNCHER, 'up', '--virt', 'libvirt', '--clouds',
                          '2', '--computes', '2'], env=env,
                         capture_output=True, text=True)
    if res.returncode != 0:
        subprocess.run([LAUNCHER, 'down'], env=env)
        raise SystemExit('two clouds did not come up:\n%s%s'
                         % (res.stdout, res.stderr))
    log('two clouds up in %.0f s (%s)' % (time.monotonic() - t0, d))
    return d, lambda: subprocess.run([LAUNCHER, 'down'], env=env,
                                     capture_output=True)


def big_image(cp, mb, workdir):
    """A machine image of ``mb`` MB of random bytes in cloud-a, booting
    the lab kernel and ramdisk (its disk is only carried along)."""
    from nova_netaware.deploy.localstack.libvirt import guest
    from nova_netaware.deploy.localstack.libvirt import novastack
    conn = cp.conn['a']
    name = '%s-%dmb' % (novastack.IMAGE, mb)
    img = conn.image.find_image(name)
    if img:
        return name
    base = conn.image.find_image(novastack.IMAGE)
    path = os.path.join(workdir, 'disk-%dmb.img' % mb)
    with open(path, 'wb') as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))
    conn.image.create_image(
        name=name, filename=path, disk_format='ami', container_format='ami',
        visibility='public', wait=True, kernel_id=base.kernel_id,
        ramdisk_id=base.ramdisk_id, os_command_line=guest.IMAGE_CMDLINE,
        os_shutdown_timeout='0')
    os.unlink(path)
    return name


def baseline(cp, image_id, workdir):
    """Plain glance download (cloud-a) to a file, then upload of the same
    bytes (cloud-b): seconds of each, bytes."""
    path = os.path.join(workdir, 'baseline.img')
    a, b = cp.conn['a'], cp.conn['b']
    t0 = time.monotonic()
    img = a.image.get_image(image_id)
    with open(path, 'wb') as f:
        a.image.download_image(img, stream=True, output=f)
    t1 = time.monotonic()
    new = b.image.create_image(
        name='netaware-bench-baseline', filename=path,
        disk_format=img.disk_format, container_format=img.container_format,
        wait=True)
    t2 = time.monotonic()
    size = os.path.getsize(path)
    b.image.delete_image(new)
    os.unlink(path)
    return {'download_s': t1 - t0, 'upload_s': t2 - t1, 'bytes': size}


def hypervisor_rtt(cp, n=20):
    """ICMP round trips, ms, hypervisor a -> hypervisor b across the link
    (numbered echoes from hypervisor a's namespace)."""
    import socket
    from nova_netaware.replica.lab.echo import EchoStream
    from nova_netaware.replica.lab.netns import ns_socket
    dst = cp.labs['b'].plan['hosts'][HOST_B]['ip']
    echo = EchoStream(ns_socket(cp.ns('a', HOST_A), socket.AF_INET,
                                socket.SOCK_RAW, socket.IPPROTO_ICMP), dst)
    try:
        echo.send_many(n, 0.05)
        echo.wait_replies(n, 5)
        return [x * 1e3 for x in echo.rtts()]
    finally:
        echo.close()


def _fast_path_driver(dom, uri):
    """The agent's libvirt fast path on the same domain, over its own
    connection (as an agent has)."""
    from nova_netaware.replica.drivers.libvirt_domain import \
        LibvirtCloudDriver
    from nova_netaware.replica.lab.portctl import build_conf
    return LibvirtCloudDriver(build_conf({'agent_id': 'bench'}), None,
                              domain_name=dom.name(),
                              uri=uri)


def run(stack_dir=None, switchovers=20, interval=0.001, image_mb=128,
        log=print, keep=False, agent_opts=None, rps=True, realtime=0):
    from nova_netaware.replica.lab.cloudpair import CloudPair
    d, teardown = _stack(stack_dir, log)
    work = tempfile.mkdtemp(prefix='nnr-pair-')
    out = {'switchovers': switchovers, 'interval_s': interval,
           'image_mb': image_mb, 'rps': rps, 'realtime': realtime}
    cp = None
    libvirtds = []
    try:
        cp = CloudPair(d, work)
        if realtime:
            cp.local_opts['realtime_priority'] = str(realtime)
            libvirtds = hypervisor_daemons(cp)
            out['libvirtd_threads_fifo'] = set_fifo(libvirtds, realtime)
            log('SCHED_FIFO %d: agents and %d libvirtd threads of %d '
                'hypervisors' % (realtime, out['libvirtd_threads_fifo'],
                                 len(libvirtds)))
        cp.local_opts.update(agent_opts or {})
        out['agent_opts'] = dict(cp.local_opts)
        out['link'] = cp.link.state()
        tag = time.strftime('%H%M%S')
        name = 'bench-%s' % tag
        image = big_image(cp, image_mb, work) if image_mb else None
        t0 = time.monotonic()
        sid, ip = cp.boot('a', name, HOST_A, image=image)
        cp.ids = {'a': sid}   # deleted in the finally below, whatever fails
        out['boot_s'] = time.monotonic() - t0
        log('booted %s in cloud-a in %.1f s' % (name, out['boot_s']))
        t0 = time.monotonic()
        rc, res, err = cp.replicate(sid, HOST_B, name,
                                    extra=['--keep-snapshot'])
        out['replicate_s'] = time.monotonic() - t0
        if rc != 0:
            raise SystemExit('replicate failed: %s' % err)
        out['replicate'] = {'timings_s': res['timings_s'],
                            'transfer': res['transfer']}
        log('replicate: %.1f s (%s)' % (out['replicate_s'],
                                        res['timings_s']))
        out['baseline'] = baseline(cp, res['snapshot']['id'], work)
        cp.conn['a'].image.delete_image(res['snapshot']['id'])
        log('baseline: download %.1f s + upload %.1f s of %d bytes'
            % (out['baseline']['download_s'], out['baseline']['upload_s'],
               out['baseline']['bytes']))
        cp.ids = {'a': sid, 'b': res['replica']['id']}
        cp.ips = {'a': ip, 'b': cp.conn['b'].compute.get_server(
            res['replica']['id']).addresses['guests'][0]['addr']}

        # the floor, before the agents start
        doms = cp.domains()
        dom = doms.doms['a']
        drv = _fast_path_driver(dom, doms.uris['a'])
        sus, resm, dsus, dres = [], [], [], []
        for _ in range(switchovers):
            # libvirt's own calls, then the agent's fast-path driver
            # (what a switchover pays), alternating: one process, one
            # moment, so their ratio is the driver's overhead
            t0 = time.monotonic()
            dom.suspend()
            t1 = time.monotonic()
            dom.resume()
            t2 = time.monotonic()
            sus.append((t1 - t0) * 1e3)
            resm.append((t2 - t1) * 1e3)
            time.sleep(0.05)
            t0 = time.monotonic()
            drv.pause('bench')
            t1 = time.monotonic()
            drv.unpause('bench')
            t2 = time.monotonic()
            dsus.append((t1 - t0) * 1e3)
            dres.append((t2 - t1) * 1e3)
            time.sleep(0.05)
        drv.close()
        out['suspend_ms'], out['resume_ms'] = sus, resm
        out['driver_pause_ms'], out['driver_unpause_ms'] = dsus, dres
        log('fast-path driver: pause %.2f + unpause %.2f ms (libvirt alone '
            '%.2f + %.2f ms)' % (statistics.median(dsus),
                                 statistics.median(dres),
                                 statistics.median(sus),
                                 statistics.median(resm)))
        out['rtt_ms'] = hypervisor_rtt(cp)
        log('floor pieces: suspend %.2f + resume %.2f ms, RTT %.2f ms'
            % (statistics.median(sus), statistics.median(resm),
               statistics.median(out['rtt_ms'])))

        if rps:
            out['rps_queues'] = lab_rps(cp)
            log('receive packet steering on %d receive queues of the lab'
                % out['rps_queues'])
        for side in ('a', 'b'):
            cp.start_agent(side)
        out['scheduling'] = {side: cp.call(side, 'status').get('scheduling')
                             for side in ('a', 'b')}
        out['scheduling']['qemu'] = qemu_policies()
        _switchovers(cp, doms, switchovers, interval, out, log)
        mbit = out['link']['measured']['mbit_s']
        state = statistics.median(out['state_bytes'])
        out['state_over_bw_ms'] = state * 8 / (mbit * 1e6) * 1e3
        out['floor_ms'] = (statistics.median(sus) + statistics.median(resm)
                           + out['state_over_bw_ms']
                           + statistics.median(out['rtt_ms']))
        out['target_ms'] = 2 * out['floor_ms'] + 20
    finally:
        if cp is not None:
            cp.stop_agents()
            # the pair's servers (the image stays for the next run)
            for side, sid in (getattr(cp, 'ids', None) or {}).items():
                cp.conn[side].compute.delete_server(sid, ignore_missing=True)
        if libvirtds:
            set_fifo(libvirtds, 0)
        if not keep:
            teardown()
    return out


def _pids(comm):
    """Pids of the processes on this machine whose name starts with
    ``comm``."""
    for p in os.listdir('/proc'):
        try:
            with open('/proc/%s/comm' % p) as f:
                if f.read().startswith(comm):
                    yield int(p)
        except (OSError, ValueError):
            continue


def _tids(pid):
    try:
        return [int(t) for t in os.listdir('/proc/%d/task' % pid)]
    except OSError:
        return []


def hypervisor_daemons(cp):
    """Pids of the libvirtd processes in the two clouds' hypervisor
    namespaces (matched by network namespace)."""
    want = set()
    for side in ('a', 'b'):
        for host in cp.labs[side].plan['hosts']:
            try:
                want.add(os.stat('/run/netns/' + cp.ns(side, host)).st_ino)
            except (OSError, KeyError):
                pass
    pids = []
    for pid in _pids('libvirtd'):
        try:
            if os.stat('/proc/%d/ns/net' % pid).st_ino in want:
                pids.append(pid)
        except OSError:
            continue
    return pids


def set_fifo(pids, prio):
    """Every thread of ``pids`` to SCHED_FIFO ``prio`` (0: back to the
    normal class); returns how many threads were set."""
    n = 0
    pol = os.SCHED_FIFO if prio else os.SCHED_OTHER
    for pid in pids:
        for t in _tids(pid):
            try:
                os.sched_setscheduler(t, pol, os.sched_param(prio))
                n += 1
            except OSError:
                pass
    return n


def qemu_policies():
    """{policy name: thread count} over the QEMU processes on this
    machine (``'fifo'``, ``'other'``, as the agent's ``status`` names
    them)."""
    from nova_netaware.replica.agent import scheduling
    count = {}
    for pid in _pids('qemu-system'):
        for t in _tids(pid):
            try:
                pol = scheduling(t)[0]
            except OSError:
                continue
            count[pol] = count.get(pol, 0) + 1
    return count


def lab_rps(cp):
    """Receive packet steering over all CPUs on every receive queue of
    both clouds' lab namespaces (the guests' taps included, so call it
    after the boot); returns the number of queues set.

    Why: the lab's links are veth pairs and the guests' taps, which hand
    each packet to the backlog of the CPU that sends it. When the sending
    thread (QEMU's, for a guest's reply) moves to the other CPU while the
    first CPU's backlog waits for ksoftirqd, a later packet overtakes an
    earlier one. Seen on 2026-12-04: the client got echo 19,895's reply
    before 19,891's, while a capture on the guest's tap showed the
    requests and the replies in order. Steering hashes each flow to one
    CPU, as a NIC's RSS does, so the lab's network keeps a flow's order
    and the benchmark's order check measures the replica's path.
    ``--no-rps`` leaves the lab as it is."""
    from nova_netaware.deploy.localstack.libvirt import fabric
    mask = format((1 << (os.cpu_count() or 1)) - 1, 'x')
    script = ('n=0; for f in /sys/class/net/*/queues/rx-*/rps_cpus; do '
              '[ -e "$f" ] && echo %s > "$f" && n=$((n+1)); done; echo $n'
              % mask)
    total = 0
    for side in ('a', 'b'):
        for ns in fabric.namespaces(cp.labs[side].plan):
            r = subprocess.run(['ip', 'netns', 'exec', ns, 'sh', '-c',
                                script], capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit('receive packet steering in %s: %s'
                                 % (ns, r.stderr.strip()))
            total += int(r.stdout.split()[-1])
    return total


def _switchovers(cp, doms, n, interval, out, log):
    from nova_netaware.replica.lab.cloudpair import Sampler
    from nova_netaware.replica.lab.cloudpair import pin_arp
    from nova_netaware.replica.lab.echo import EchoStream, paced
    from nova_netaware.replica.lab.netns import ns_socket
    import socket
    # as the e2e's clients: a cloud's ARP responder answers for a paused
    # copy; without the pin, a client that had not yet resolved the paused
    # copy dropped all but ~280 echoes in its own neighbour queue (seen:
    # 1,271 of the first 1,527 lost, and the rest out of order)
    for side, host in (('a', CLIENT_A), ('b', CLIENT_B)):
        pin_arp(cp.ns(side, host), cp.ips[side])
    streams = {
        side: EchoStream(ns_socket(cp.ns(side, host), socket.AF_INET,
                                   socket.SOCK_RAW, socket.IPPROTO_ICMP),
                         cp.ips[side])
        for side, host in (('a', CLIENT_A), ('b', CLIENT_B))}
    stop = []

    def send_both():
        for s in streams.values():
            s.send()
    taps0 = {side: _tap_counters(cp, side) for side in ('a', 'b')}
    guest_stats = {'a': [_guest_netstat(cp, 'a')], 'b': []}
    sampler = Sampler(doms)
    skipped = []        # ticks the sender missed (late), skipped
    th = threading.Thread(target=paced, args=(interval, send_both, stop,
                                              skipped), daemon=True)
    th.start()
    sampler.start()
    marks, results = [], []
    try:
        time.sleep(1.0)
        active = 'a'
        for i in range(n + 1):       # the last one drains the held side
            t = time.monotonic()
            r = cp.call(active, 'switchover')
            if not r.get('ok'):
                raise SystemExit('switchover %d failed: %s' % (i, r))
            marks.append((t, active))
            results.append(r)
            active = 'b' if active == 'a' else 'a'
            if i == n - 1:
                stop.append(1)
                th.join(5)
            time.sleep(1.5)
            guest_stats[active].append(_guest_netstat(cp, active))
        time.sleep(2)
    finally:
        stop.append(1)
        sampler.stop()
        for s in streams.values():
            s.close()
    downs, timeline = [], []
    for (t, old), r in zip(marks[:n], results):
        new = 'b' if old == 'a' else 'a'
        first = min((tt for _, tt in streams[new].replies if tt >= t),
                    default=None)
        last = max((tt for _, tt in streams[old].replies
                    if tt < (first or float('inf'))), default=None)
        if first is not None and last is not None:
            downs.append((first - last) * 1e3)
            timeline.append(_timeline(last, first, r))
    out['downtime_ms'] = downs
    out['timeline_ms'] = timeline
    out['loss_where'] = {side: _where_lost(s, marks, side)
                         for side, s in streams.items()}
    out['loss_detail'] = {side: _lost_detail(s, marks[0][0])
                          for side, s in streams.items()}
    out['taps'] = {side: {k: v - taps0[side].get(k, 0) for k, v in
                          _tap_counters(cp, side).items()}
                   for side in ('a', 'b')}
    out['missing_detail'] = {
        side: [(n, round(s.sent[n] - marks[0][0], 4))
               for n in s.result()['missing']]
        for side, s in streams.items()}
    out['marks'] = [(round(t - marks[0][0], 4), old) for t, old in marks]
    out['t0_monotonic'] = marks[0][0]   # the agents' burst times are
    # CLOCK_MONOTONIC too (one host)
    out['guest_netstat'] = guest_stats
    out['dataplane'] = {}
    for side in ('a', 'b'):
        try:
            st = cp.call(side, 'status')
            out['dataplane'][side] = st.get('dataplane') or st
        except Exception as e:  # diagnosis only
            out['dataplane'][side] = {'error': str(e)}
    out['state_bytes'] = [r.get('state_bytes', 0) for r in results]
    out['switch_steps_ms'] = [r.get('steps_ms') for r in results]
    out['peer_steps_ms'] = [r.get('peer_steps_ms') for r in results]
    # the agents' CLOCK_MONOTONIC marks as they are (the same clock as
    # t0_monotonic): to line a switchover up with other samplers
    out['agent_mono'] = [{'old': r.get('mono'), 'new': r.get('peer_mono')}
                         for r in results]
    out['echo'] = {side: {k: v for k, v in s.result().items()
                          if k not in ('missing', 'first_late')}
                   for side, s in streams.items()}
    # where replies came late: (echo, highest answered before, arrival
    # in s after the first switchover was commanded, previous mark)
    out['late_detail'] = {
        side: [(n, top, round(t - marks[0][0], 4),
                max((round(m - marks[0][0], 4) for m, _ in marks
                     if m <= t), default=None))
               for n, top, t in s.result()['first_late']]
        for side, s in streams.items()}
    out['echo_missing'] = {side: len(s.result()['missing'])
                           for side, s in streams.items()}
    # the sender's schedule: sends under a quarter interval after the one
    # before (a burst), the longest gap, and the ticks it skipped when it
    # came back late (echo.paced sends no catch-up burst)
    out['echo_skipped'] = {'ticks': sum(skipped), 'times': len(skipped),
                           'most': max(skipped, default=0)}
    out['echo_sends'] = {}
    for side, s in streams.items():
        ts = sorted(s.sent.values())
        gaps = [b - a for a, b in zip(ts, ts[1:])] or [0]
        out['echo_sends'][side] = {
            'burst_sends': sum(g < interval / 4 for g in gaps),
            'max_gap_ms': 1e3 * max(gaps)}
    # how long a reply waited in the client's socket before this process
    # read it (not part of the downtime: replies carry the kernel's time)
    out['echo_read_lag_ms'] = {
        side: {'median': 1e3 * statistics.median(s.read_lag or [0]),
               'p99': 1e3 * pct(s.read_lag or [0], 99),
               'max': 1e3 * max(s.read_lag or [0])}
        for side, s in streams.items()}
    out['samples'] = sampler.samples
    out['both_running'] = len(sampler.both)
    log('downtime median %.2f ms over %d switchovers'
        % (statistics.median(downs), len(downs)))


def _timeline(last, first, res):
    """Where one switchover's downtime went, in ms: the old copy's last
    reply, the agents' CLOCK_MONOTONIC marks (one machine, one clock) and
    the new copy's first reply. The new side's claim overlaps the old
    side's fence and export, and the old copy's pause overlaps the state's
    transfer; they are given beside the sequence in parentheses ("old
    paused -> new told" is the flight of the "paused" frame). Empty if
    the agents gave no marks."""
    m, p = res.get('mono') or {}, res.get('peer_mono') or {}
    marks = [('to fence', m.get('fence')),
             ('old: fence+export+send', m.get('sent')),
             ('state message', p.get('state')),
             ('new: await old pause', p.get('confirmed')),
             ('new: resume', p.get('resumed')),
             ('new: import', p.get('restored')),
             ('to replay', p.get('replay_started')),
             ('first reply', first)]
    out, prev = {}, last
    for name, t in marks:
        if t is None:
            return {}
        out[name] = round((t - prev) * 1e3, 2)
        prev = t
    side = [('(new: claim)', p.get('received'), p.get('claimed')),
            ('(new: claim done -> state in)', p.get('claimed'),
             p.get('state')),
            ('(old: pause)', m.get('sent'), m.get('paused')),
            ('(old paused -> new told)', m.get('paused'),
             p.get('confirmed'))]
    for name, t0, t1 in side:
        if t0 is not None and t1 is not None:
            out[name] = round((t1 - t0) * 1e3, 2)
    return out


def _tap_counters(cp, side):
    """Packet counters of the taps on the side's hypervisor (frames to
    the guest are tx, its replies rx)."""
    from nova_netaware.deploy.localstack.libvirt import hypervisor
    host = HOST_A if side == 'a' else HOST_B
    script = ('for d in /sys/class/net/tap*; do for c in rx_packets '
              'tx_packets rx_dropped tx_dropped; do echo ${d##*/}.$c '
              '$(cat $d/statistics/$c); done; done')
    r = subprocess.run(hypervisor.nsenter(cp.holder(side, host), 'sh', '-c',
                                          script),
                       capture_output=True, text=True)
    out = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(' ')
        if v.strip().isdigit():
            out[k] = int(v)
    return out


def _guest_netstat(cp, side):
    """The running copy's kernel counters (``/cgi-bin/netstat``), read
    from its cloud's client host; None if it does not answer."""
    from nova_netaware.deploy.localstack.libvirt import ops
    client = CLIENT_A if side == 'a' else CLIENT_B
    return ops.guest_get(cp.labs[side], client, cp.ips[side],
                         '/cgi-bin/netstat', 3)


def _where_lost(stream, marks, side):
    """Where in the switchover cycle the unanswered echoes of ``side``
    were sent: while its copy was paused (held, then replayed), in the
    first 0.5 s after it became active, or later while it was active."""
    changes = sorted((t, 'b' if old == 'a' else 'a') for t, old in marks)
    out = {'held': 0, 'first_0.5s_active': 0, 'active': 0}
    for n in stream.result()['missing']:
        t = stream.sent[n]
        active, since = 'a', None
        for tc, new in changes:
            if tc > t:
                break
            active, since = new, tc
        if active != side:
            out['held'] += 1
        elif since is not None and t - since < 0.5:
            out['first_0.5s_active'] += 1
        else:
            out['active'] += 1
    return out


def _lost_detail(stream, t0, first=20):
    """The first unanswered echoes: (echo, sent at s after ``t0``, ms since
    the send before it, sends in the 10 ms before it), to tell a loss in
    a burst of sends from one in a steady stream."""
    missing = stream.result()['missing'][:first]
    ts = sorted(stream.sent.values()) if missing else []
    out = []
    for n in missing:
        t = stream.sent[n]
        prev = stream.sent.get(n - 1)
        out.append((n, round(t - t0, 4),
                    None if prev is None else round(1e3 * (t - prev), 3),
                    bisect.bisect_left(ts, t)
                    - bisect.bisect_left(ts, t - 0.01)))
    return out


def report(o, print_table):
    med = statistics.median
    dn = o['downtime_ms']
    fl = o['floor_ms']
    b = o['baseline']
    tr = o['replicate']['transfer']
    rows = [
        ('inter-cloud link, shaped / measured (TCP)', '%.0f / %.1f Mbit/s'
         % (o['link']['gbps'] * 1000, o['link']['measured']['mbit_s']), '',
         ''),
        ('replicate cloud-a -> cloud-b (%d MB image), whole command'
         % o['image_mb'], '%.1f s' % o['replicate_s'], '', ''),
        ('  of which transfer (glance -> glance, streamed)',
         '%.1f s, %d bytes' % (tr['seconds'], tr['bytes']), '', ''),
        ('  baseline: plain download + upload of the snapshot',
         '%.1f s + %.1f s, %d bytes' % (b['download_s'], b['upload_s'],
                                        b['bytes']),
         '%.2f x transfer' % ((b['download_s'] + b['upload_s'])
                              / tr['seconds']) if tr['seconds'] else '',
         ''),
        ('libvirt suspend + resume, median', '%.2f ms' % (
            med(o['suspend_ms']) + med(o['resume_ms'])), '', ''),
        ('  the agent\'s fast-path driver: pause + unpause, median',
         '%.2f ms' % (med(o['driver_pause_ms']) +
                      med(o['driver_unpause_ms'])),
         '%.2f x libvirt' % ((med(o['driver_pause_ms']) +
                              med(o['driver_unpause_ms'])) /
                             (med(o['suspend_ms']) + med(o['resume_ms']))),
         ''),
        ('state size / measured bandwidth', '%d B -> %.3f ms' % (
            med(o['state_bytes']), o['state_over_bw_ms']), '', ''),
        ('hypervisor round trip across the link, median',
         '%.3f ms' % med(o['rtt_ms']), '', ''),
        ('floor', '%.2f ms' % fl, '1.00', ''),
        ('switchover downtime, median', '%.2f ms' % med(dn),
         '%.2f x floor' % (med(dn) / fl), '<= %.2f ms' % o['target_ms']),
        ('switchover downtime, p90', '%.2f ms' % pct(dn, 90),
         '%.2f x floor' % (pct(dn, 90) / fl), '<= %.2f ms' % o['target_ms']),
        ('echoes a / b: sent, lost, dup, in order', ' | '.join(
            '%d %d %d %s' % (o['echo'][s]['sent'], o['echo_missing'][s],
                             o['echo'][s]['duplicates'],
                             o['echo'][s]['in_order']) for s in 'ab'),
         '', 'x 0 0 True'),
        ('domain samples / with both running', '%d / %d' % (
            o['samples'], o['both_running']), '', 'x / 0'),
    ]
    rows.append(('unanswered echoes a / b: sent while held, in the first '
                 '0.5 s active, later active', ' | '.join(
                     '%(held)d %(first_0.5s_active)d %(active)d'
                     % o['loss_where'][s] for s in 'ab'), '', ''))
    if o.get('echo_sends'):
        rows.append(('client sends within a quarter interval a / b; '
                     'longest gap',
                     ' | '.join('%(burst_sends)d %(max_gap_ms).0f ms'
                                % o['echo_sends'][s] for s in 'ab'),
                     '', ''))
    if o.get('echo_skipped'):
        rows.append(('sender late: ticks skipped (times, most at once)',
                     '%(ticks)d (%(times)d, %(most)d)' % o['echo_skipped'],
                     '', ''))
    if o.get('echo_read_lag_ms'):
        # the downtime uses the kernel's receive times, not these
        rows.append(('replies read by the benchmark late by, median / max',
                     ' | '.join('%(median).1f / %(max).0f ms'
                                % o['echo_read_lag_ms'][s] for s in 'ab'),
                     '', ''))
    sch = o.get('scheduling') or {}
    q = sch.get('qemu') or {}
    rows.append(('SCHED_FIFO (--realtime): agents a / b; libvirtd threads; '
                 'QEMU threads',
                 '%s / %s; %d; %d of %d' % (
                     (sch.get('a') or {}).get('policy'),
                     (sch.get('b') or {}).get('policy'),
                     o.get('libvirtd_threads_fifo', 0),
                     q.get('fifo', 0), sum(q.values())),
                 '', ''))
    rows.append(('receive packet steering on the lab\'s interfaces',
                 ('on, %d receive queues' % o['rps_queues'])
                 if o.get('rps') else 'off (--no-rps)', '', ''))
    print_table(['two clouds (%d switchovers, echo every %.1f ms)'
                 % (o['switchovers'], o['interval_s'] * 1e3), 'value',
                 'ratio', 'target'], rows)
    try:
        print('load average during the run: %.2f %.2f %.2f (%d CPUs)'
              % (os.getloadavg() + (os.cpu_count(),)))
    except OSError:
        pass
    ok = (all(o['echo_missing'][s] == 0 and o['echo'][s]['duplicates'] == 0
              and o['echo'][s]['in_order'] for s in 'ab')
          and o['both_running'] == 0 and len(dn) == o['switchovers']
          and med(dn) <= o['target_ms'] and pct(dn, 90) <= o['target_ms'])
    o['all_targets_met'] = ok
    print('zero loss/dup/reorder, never two running, downtime median and '
          'p90 <= 2 x floor + 20 ms: %s' % ('MET' if ok else 'NOT MET'))
    return ok
