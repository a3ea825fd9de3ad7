"""The nfqueue data plane at a real guest's bridge port: hold while the
libvirt domain is paused, then resume and replay in order, exactly once."""

import os
import signal
import socket
import subprocess
import threading
import time

from nova_netaware.replica.lab.echo import EchoStream

ECHOES = 200
INTERVAL = 0.002
HELD_SECONDS = 2.0


def test_port_is_a_bridge_port_replayed_at_l2(port, bed):
    st = port.call('stats')
    assert st['running'] is True
    # the data plane resolved the tap as a bridge port and replays onto it
    info = port.call('info')
    assert info['kind'] == 'bridge-port', info
    assert info['replay_via'] == 'port', info
    # in pass mode the guest's service answers through the data plane
    before = st['dataplane'].get('passed', 0)
    c0 = bed.peek()
    assert bed.count() == c0 + 1
    assert port.call('stats')['dataplane']['passed'] > before


def test_hold_while_paused_then_replay_in_order_exactly_once(port, bed):
    echo = EchoStream(bed.client_socket(socket.SOCK_RAW, socket.IPPROTO_ICMP),
                      bed.guest_ip)
    try:
        # warm: the path works and every echo comes back
        echo.send_many(10, INTERVAL)
        assert echo.wait_replies(10, 10) == 10
        c0 = bed.peek()

        hold = port.call('hold')
        assert hold['running'] is False
        assert bed.domain_state() == 'paused'   # libvirt's own view

        # a numbered service request and numbered echoes, all while paused
        box = {}
        t_req = threading.Thread(
            target=lambda: box.update(count=bed.count()), daemon=True)
        t_req.start()
        echo.send_many(ECHOES, INTERVAL)
        time.sleep(HELD_SECONDS)
        assert len(echo.replies) == 10, 'a reply came while paused'
        assert 'count' not in box, 'the service answered while paused'
        held = port.call('stats')
        assert held['running'] is False
        # every echo (and the request's SYN, with its retransmissions) is
        # in the durable buffer, none was dropped by the kernel queue
        assert held['buffer_packets'] >= ECHOES + 1, held
        assert held['dataplane']['kernel_queue_dropped'] == 0, held

        rel = port.call('release')
        assert rel['running'] is True
        assert bed.domain_state() == 'running'
        # everything held is replayed; the request's SYN may be
        # retransmitted (1 s, 3 s) between the stats read and the release,
        # and is then held and replayed too (seen in CI: 210 after 209)
        assert rel['replayed'] >= held['buffer_packets']
        assert echo.wait_replies(10 + ECHOES, 20) == 10 + ECHOES
        t_req.join(30)
        assert box.get('count') == c0 + 1, box

        # no reply before the replay began; exactly once, in order
        first_held_reply = echo.replies[10][1]
        assert first_held_reply >= rel['replay_started']
        r = echo.result()
        assert r['missing'] == [] and r['duplicates'] == 0, r
        assert r['in_order'], [s for s, _ in echo.replies]
        st = port.call('stats')
        assert st['buffer_packets'] == 0
        assert st['dataplane']['replayed'] >= rel['replayed']

        # the service state counts the held request once, then goes on
        for i in range(1, 4):
            assert bed.count() == c0 + 1 + i
        assert bed.peek() == c0 + 4
        time.sleep(0.5)
        assert echo.result()['duplicates'] == 0
    finally:
        echo.close()


def test_libvirt_driver_suspend_resume(port, bed):
    r = port.call('suspend_resume', n=3)
    assert len(r['pause_ms']) == 3 and len(r['resume_ms']) == 3
    assert all(0 < x < 10000 for x in r['pause_ms'] + r['resume_ms'])
    assert bed.domain_state() == 'running'
    assert port.call('stats')['running'] is True


def _tap_link(bed):
    """(tx_queue_len, tx_dropped) of the guest's tap, read with ``ip``
    in the hypervisor's namespaces."""
    from nova_netaware.deploy.localstack.libvirt import hypervisor
    out = subprocess.run(
        hypervisor.nsenter(bed.holder, 'cat',
                           '/sys/class/net/%s/tx_queue_len' % bed.tap,
                           '/sys/class/net/%s/statistics/tx_dropped'
                           % bed.tap),
        capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def _guest_out_discards(bed):
    """The guest kernel's ``Ip.OutDiscards`` (``/cgi-bin/netstat``)."""
    lines = bed.http('/cgi-bin/netstat').splitlines()
    for head, vals in zip(lines, lines[1:]):
        if head.startswith('Ip:') and vals.startswith('Ip:'):
            row = dict(zip(head.split()[1:], vals.split()[1:]))
            return int(row['OutDiscards'])
    raise AssertionError('no Ip counters in the guest\'s netstat')


def _warm_echo_stream(bed):
    """Echoes from the bed's client to the guest, 5 of them already
    answered (the client's neighbour entry resolved)."""
    echo = EchoStream(bed.client_socket(socket.SOCK_RAW, socket.IPPROTO_ICMP),
                      bed.guest_ip)
    try:
        echo.send_many(5, INTERVAL)
        assert echo.wait_replies(5, 10) == 5
    except BaseException:
        echo.close()
        raise
    return echo


def test_a_held_burst_larger_than_the_tap_queue_is_replayed_whole(port,
                                                                   bed):
    """More held frames than the tap's default queue (1,000) go to the
    slow TCG guest in one replay: the data plane grows the tap's queue
    first, so no frame is dropped at the tap and every echo is answered,
    once and in order."""
    burst = 3000
    echo = _warm_echo_stream(bed)
    try:
        qlen0, dropped0 = _tap_link(bed)
        assert qlen0 < burst, 'the tap queue already fits the burst'
        port.call('hold')
        echo.send_many(burst, 0.0001)
        deadline = time.monotonic() + 20
        while port.call('stats')['buffer_packets'] < burst and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        held = port.call('stats')
        assert held['buffer_packets'] >= burst, held
        assert held['dataplane']['kernel_queue_dropped'] == 0, held
        rel = port.call('release')
        assert rel['replayed'] >= burst
        echo.wait_replies(5 + burst, 60)
        r = echo.result()
        qlen1, dropped1 = _tap_link(bed)
        assert qlen1 >= burst, (qlen0, qlen1)
        assert dropped1 == dropped0, 'the tap dropped %d frames' % (
            dropped1 - dropped0)
        assert r['missing'] == [] and r['duplicates'] == 0, (
            len(r['missing']), r['duplicates'])
        assert r['in_order']
        st = port.call('stats')['dataplane']
        assert st.get('tx_dropped_during_replay', 0) == 0, st
    finally:
        echo.close()


def test_what_arrives_during_the_replay_follows_at_the_guests_pace(port,
                                                                   bed):
    """A steady stream that goes on through a hold, the replay and after:
    what arrives while the held frames are replayed waits in the kernel
    queue, and it must not reach the guest as one burst afterwards (at
    1 kHz in the two-cloud benchmark, 250-330 frames at once, and the
    guest discarded the replies beyond its socket buffer). It follows at
    the guest's own pace (``caught_up``): the hypervisor side loses
    nothing, and every echo is answered once and in order, except those
    the guest's own IP output discarded (``Ip.OutDiscards``), at most 1 %.
    Why that allowance: 5,000 echoes a second is near what this TCG
    guest answers on a busy 2-CPU host; on the machine of 2026-12-04 the
    guest itself discarded 20-182 replies in about one run of four,
    whether or not the pacing code had changed, while the data plane and
    the tap passed every echo."""
    rate_interval = 0.0002          # 5,000 echoes/s, about 2,500 arrive
    held_seconds = 1.0              # during a replay of about 5,000
    total = int((0.5 + held_seconds + 2.5) / rate_interval)
    echo = _warm_echo_stream(bed)
    try:
        discards0 = _guest_out_discards(bed)
        tap_dropped0 = _tap_link(bed)[1]
        sender = threading.Thread(target=echo.send_many,
                                  args=(total, rate_interval), daemon=True)
        sender.start()
        time.sleep(0.5)
        port.call('hold')
        time.sleep(held_seconds)
        held = port.call('stats')['buffer_packets']
        rel = port.call('release')
        sender.join(60)
        assert not sender.is_alive()
        echo.wait_replies(5 + total, 20)
        time.sleep(0.5)
        st = port.call('stats')['dataplane']
        r = echo.result()
        discarded = _guest_out_discards(bed) - discards0
        assert held >= 0.5 * held_seconds / rate_interval, held
        assert rel['replayed'] >= held
        assert st['kernel_queue_dropped'] == 0, st
        assert _tap_link(bed)[1] == tap_dropped0
        assert st.get('caught_up', 0) > 0, st   # the tail was paced
        detail = (len(r['missing']), r['missing'][:5], discarded,
                  r['duplicates'],
                  {k: v for k, v in st.items() if k != 'pass_bursts'})
        # what is missing is what the guest itself discarded, and little
        assert len(r['missing']) == discarded, detail
        assert discarded <= total // 100, detail
        assert r['duplicates'] == 0, detail
        assert r['in_order'], r['late']
    finally:
        echo.close()


def _echoes_through_a_stall(port, bed, rate_interval, stall, signal_to):
    """Echoes at one per ``rate_interval`` for about 3 s; after 1 s a
    process is stopped (``signal_to(SIGSTOP)``, as a busy hypervisor keeps
    it off the CPU) for ``stall`` seconds while the data plane is in
    ``pass`` mode. Returns (echo result, echoes sent, guest discards,
    data plane stats)."""
    total = int(3.0 / rate_interval)
    echo = _warm_echo_stream(bed)
    try:
        discards0 = _guest_out_discards(bed)
        sender = threading.Thread(target=echo.send_many,
                                  args=(total, rate_interval), daemon=True)
        sender.start()
        time.sleep(1.0)
        signal_to(signal.SIGSTOP)
        try:
            time.sleep(stall)
        finally:
            signal_to(signal.SIGCONT)
        sender.join(60)
        assert not sender.is_alive()
        echo.wait_replies(5 + total, 20)
        time.sleep(0.5)
        st = port.call('stats')['dataplane']
        return (echo.result(), total, _guest_out_discards(bed) - discards0,
                st)
    finally:
        echo.close()


def _stall_detail(r, discarded, st):
    """What a failed stall test prints: missing echoes, the first five,
    the guest's discards, duplicates and the data plane's counters."""
    return (len(r['missing']), r['missing'][:5], discarded, r['duplicates'],
            {k: v for k, v in st.items() if k != 'pass_bursts'})


def test_a_backlog_built_while_the_agent_was_off_the_cpu_is_paced(bed):
    """In ``pass`` mode every frame toward the active copy goes through
    the agent. Held off the CPU (here: stopped for 0.5 s at 2,000 echoes
    a second, about 1,000 frames), it finds a backlog in the kernel queue
    when it runs again. Accepted at once, that backlog reaches the guest
    as one burst, and the guest discards the replies beyond its ICMP
    socket's buffer. The data plane paces it by the guest's output
    (``backlogs_paced``), so every echo is answered, once and in order.
    Without the pacing (``replay_window = 0``) this test fails."""
    port = bed.start_port('pass')
    try:
        # portctl leads its own session: stop all of it
        r, total, discarded, st = _echoes_through_a_stall(
            port, bed, 0.0005, 0.5,
            lambda sig: os.killpg(port.proc.pid, sig))
    finally:
        port.close()
    detail = _stall_detail(r, discarded, st)
    assert st['kernel_queue_dropped'] == 0, detail
    assert st.get('pass_burst_max', 0) >= 300, detail   # it did build up
    assert st.get('backlogs_paced', 0) >= 1, detail
    # what is missing is what the guest itself discarded, and almost
    # nothing: 0 in 7 runs here (2026-12-04); without the pacing 19, 67
    # and 103 of the 6,000 (a little slack for a loaded CI machine)
    assert len(r['missing']) == discarded <= 10, detail
    assert r['duplicates'] == 0, detail
    assert r['in_order'], r['late']


def _qemu_pid(bed):
    out = subprocess.run(['pgrep', '-f', 'guest=%s' % bed.domain],
                         capture_output=True, text=True).stdout.split()
    assert len(out) == 1, 'QEMU of %s: pids %s' % (bed.domain, out)
    return int(out[0])


def test_frames_for_a_qemu_held_off_the_cpu_wait_in_the_kernel_queue(
        bed):
    """The guest's QEMU itself off the CPU (stopped for 0.3 s at 2,000
    echoes a second) reads nothing from its tap. The data plane keeps at
    most ``replay_window`` frames in the tap that QEMU has not read (the
    tap's ``tx_packets``, ``tap_window_waits``); the rest waits in the
    kernel queue and then goes at the guest's pace (``backlogs_paced``).
    Before, the frames piled up in the tap and QEMU took them in one
    burst: 47-112 of the replies were discarded by the guest in 3 runs
    (2026-12-04), although the agent passed every frame as it came."""
    qemu = _qemu_pid(bed)
    port = bed.start_port('pass')
    try:
        r, total, discarded, st = _echoes_through_a_stall(
            port, bed, 0.0005, 0.3, lambda sig: os.kill(qemu, sig))
    finally:
        port.close()
    detail = _stall_detail(r, discarded, st)
    assert st['kernel_queue_dropped'] == 0, detail
    assert st.get('tap_window_waits', 0) >= 1, detail
    assert st.get('tap_window_timeouts', 0) == 0, detail
    assert st.get('backlogs_paced', 0) >= 1, detail
    assert len(r['missing']) == discarded <= 10, detail
    assert r['duplicates'] == 0, detail
    assert r['in_order'], r['late']


def test_traffic_the_guest_does_not_answer_is_not_held_after_the_replay(
        port, bed):
    """One-way frames (UDP to a closed port; the guest's ICMP errors are
    rate-limited to about one a second) through a hold. The replay paces
    them by the guest's output, one window per replay_window_wait; what
    waited meanwhile in the kernel queue must not be paced that way too
    (that would keep a steady one-way flow behind for good): the pacing
    gives up at the first window the guest leaves unanswered, and the
    kernel queue drains."""
    rate_interval = 0.0002
    total = int(3.0 / rate_interval)
    sock = bed.client_socket(socket.SOCK_DGRAM)
    stop = []

    def send():
        t0 = time.monotonic()
        for i in range(total):
            if stop:
                return
            delay = t0 + i * rate_interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(b'x' * 32, (bed.guest_ip, 9))
    sender = threading.Thread(target=send, daemon=True)
    try:
        sender.start()
        time.sleep(0.3)
        port.call('hold')
        time.sleep(0.7)
        rel = port.call('release')
        sender.join(30)
        time.sleep(0.5)
        st = port.call('stats')['dataplane']
        assert rel['replayed'] > 1000, rel
        assert st['kernel_queue_dropped'] == 0, st
        # drained: nothing of the flow is still waiting for the guest
        assert st['kernel_queue_total'] < 50, {
            k: v for k, v in st.items() if k != 'pass_bursts'}
    finally:
        stop.append(1)
        sock.close()


def _bridge_nat(bed):
    return subprocess.run(['ip', 'netns', 'exec', bed.hv, 'ebtables',
                           '--concurrent', '-t', 'nat', '-L'],
                          capture_output=True, text=True,
                          check=True).stdout


def test_a_client_that_must_resolve_the_paused_copy_reaches_the_hold(bed):
    """The client's neighbour entry for the copy is gone while the copy is
    paused: its ARP requests go to the bridge, which answers for the copy
    (``arp_responder``), and its echoes reach the hold. Without the
    answer the client gives up after three probes (about 3 s) and drops
    what it queued meanwhile."""
    ctl = bed.start_port('pass', guest_endpoint_host=bed.guest_ip)
    echo = EchoStream(bed.client_socket(socket.SOCK_RAW, socket.IPPROTO_ICMP),
                      bed.guest_ip)
    n = 40
    try:
        assert ctl.call('stats')['dataplane']['arp_responder'] == \
            bed.guest_ip
        assert 'arpreply' in _bridge_nat(bed)
        echo.send_many(5, INTERVAL)
        assert echo.wait_replies(5, 10) == 5
        ctl.call('hold')
        assert bed.domain_state() == 'paused'
        subprocess.run(['ip', '-n', bed.cl, 'neigh', 'del', bed.guest_ip,
                        'dev', 'cl0'], check=True)
        echo.send_many(n, 0.1)      # 4 s: longer than three ARP probes
        time.sleep(0.5)
        assert len(echo.replies) == 5, 'a reply came while paused'
        held = ctl.call('stats')
        assert held['buffer_packets'] >= n, held
        rel = ctl.call('release')
        assert rel['running'] is True
        assert echo.wait_replies(5 + n, 20) == 5 + n
        r = echo.result()
        assert r['missing'] == [] and r['duplicates'] == 0, r
        assert r['in_order'], [s for s, _ in echo.replies]
    finally:
        echo.close()
        ctl.close()
        subprocess.run(['ip', '-n', bed.cl, 'neigh', 'replace', bed.guest_ip,
                        'lladdr', bed.guest_mac, 'dev', 'cl0', 'nud',
                        'permanent'], check=True)
    # stopping the data plane takes the responder away with the rules
    assert 'arpreply' not in _bridge_nat(bed)
