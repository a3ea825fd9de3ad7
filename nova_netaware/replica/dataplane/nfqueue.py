"""Data plane ``nfqueue``: iptables NFQUEUE + durable buffer + raw replay.

The iptables rules and the kernel messages are in :mod:`.netfilter`. One
thread owns the queue, the buffer and the raw socket, so every mode change
happens between two packets and the order of packets is kept:

* ``buffer`` mode: each packet is appended to the pending batch; the batch is
  committed to SQLite (group commit) and only then are the originals
  dropped. No bypass flag: if the agent is dead, traffic toward the paused
  copy is dropped by the kernel, never delivered out of order.
* ``activate``: pending packets are committed, the buffer is re-injected in
  order and the replay position is committed per step. ``replay_via``
  ``ip``: through a raw IPv4 socket (locally generated packets take the
  OUTPUT path, so the FORWARD rule does not catch them again; needs a route
  to the guest); ``port``: as Ethernet frames to ``guest_mac`` written
  straight onto the guest's port with an AF_PACKET socket (no bridge, no
  netfilter hook, no address on the hypervisor: what a bridge port
  needs); packets that arrive meanwhile wait in the kernel queue and are
  accepted, in order, once the mode is ``pass``.
* ``pass`` mode: packets are accepted in order; the rule carries
  ``--queue-bypass`` so traffic still reaches the active copy if the agent
  dies. A backlog (``replay_window`` frames or more in one receive loop,
  after this thread was off the CPU) goes to the guest at its own pace,
  as the replay's tail does (:meth:`NfqueueDataPlane._pace_backlog`), and
  no more than ``replay_window`` accepted frames wait in a tap for its
  QEMU (:meth:`NfqueueDataPlane._tap_window`).

Overflow (buffer bound reached) applies ``[replica] overflow_policy`` to the
new packet only: ``refuse`` drops it and answers the sender with ICMP
"communication administratively prohibited"; ``drop-newest`` drops it
silently. Both are counted and logged (rate-limited); old data is never
evicted.
"""

import collections
import errno
import ipaddress
import logging
import os
import select
import socket
import threading
import time

from nova_netaware.replica import dataplane as dp
from nova_netaware.replica.dataplane import netfilter

LOG = logging.getLogger(__name__)

try:
    import netfilterqueue
except ImportError:  # reported when the plugin is started
    netfilterqueue = None


REPLAY_VIA = ('auto', 'ip', 'port')


def parse_mac(text):
    """``aa:bb:cc:dd:ee:ff`` -> 6 bytes; DataPlaneError if malformed."""
    parts = str(text).strip().split(':')
    try:
        b = bytes(int(p, 16) for p in parts)
    except ValueError:
        b = b''
    if len(parts) != 6 or len(b) != 6 or any(len(p) != 2 for p in parts):
        raise dp.DataPlaneError('guest_mac %r is not a MAC address '
                                '(aa:bb:cc:dd:ee:ff)' % (text,))
    return b


def port_mac(ifname, sysfs='/sys/class/net'):
    """The MAC address of ``ifname`` (the source of replayed frames)."""
    try:
        with open(os.path.join(sysfs, ifname, 'address')) as f:
            return parse_mac(f.read())
    except OSError as e:
        raise dp.DataPlaneError('cannot read the address of %s: %s'
                                % (ifname, e))


class _GuestWindow:
    """Replay pacing by the guest's own output: at most ``size`` replayed
    frames ahead of the frames the guest has sent since the replay began
    (its interface's receive counter).

    A guest answers held requests as it processes them; it only falls
    behind when its own transmit path stalls, and then replies that find
    the sending socket's buffer full are discarded (measured:
    ``Ip.OutDiscards`` inside the guest matched the unanswered echoes
    exactly; docs/replica.md, "Replay pace"). Traffic that the guest does
    not answer (one-way flows) cannot hold the replay up: when the guest
    sends nothing for ``wait`` seconds, another window goes out.

    ``read`` (default: :func:`netfilter.rx_packets`) is the counter it
    follows; ``timeouts`` names the counter of windows that waited out
    ``wait``, ``waits`` (if given) the counter of full windows; ``going``
    (if given) is asked while waiting, and False ends the wait at once (a
    fence)."""

    def __init__(self, ifname, size, wait, counters, read=None,
                 timeouts='replay_window_timeouts', waits=None, going=None):
        self.ifname, self.size, self.wait = ifname, size, wait
        self.counters = counters
        self.read = read or netfilter.rx_packets
        self.timeouts, self.waits, self.going = timeouts, waits, going
        self.ahead = 0
        self.left = 0           # frames still to pace after the replay
        self.backlog = False    # pacing a pass-mode backlog, not a replay
        self.base = self.read(ifname) if size else None
        if self.base is None:
            self.size = 0      # no counter: rate pacing only

    def sent_one(self):
        """Count one frame sent; wait while the window is full. False if
        the counter did not move within ``wait`` (or no counter)."""
        self.ahead += 1
        if self.ahead < self.size:
            return True
        deadline = time.monotonic() + self.wait
        waited = False
        while True:
            out = self.read(self.ifname)
            if out is None:
                self.size = 0
                return False
            if out > self.base:
                self.ahead = max(0, self.ahead - (out - self.base))
                self.base = out
                if self.ahead < self.size:
                    return True
            if not waited and self.waits is not None:
                self.counters[self.waits] += 1    # once per full window
            waited = True
            if time.monotonic() >= deadline or \
                    (self.going is not None and not self.going()):
                self.counters[self.timeouts] += 1
                self.ahead = 0
                return False
            time.sleep(0.0005)


class NfqueueDataPlane(dp.DataPlane):

    BURST = 256

    def __init__(self, conf, buffer):
        super().__init__(conf, buffer)
        c = conf.replica
        if not c.guest_interface:
            raise dp.DataPlaneError('[replica] guest_interface is required '
                                    'by the nfqueue data plane')
        if len(c.guest_interface) > 15:
            raise dp.DataPlaneError('guest_interface %r is longer than 15 '
                                    'characters' % c.guest_interface)
        if not c.iptables_chain or len(c.iptables_chain) > 28:
            raise dp.DataPlaneError('iptables_chain must be 1..28 characters')
        self.ifname = c.guest_interface
        self.qnum = c.nfqueue_num
        self.max_len = c.nfqueue_max_len
        self.chain = c.iptables_chain
        self.policy = c.overflow_policy
        if self.policy not in ('refuse', 'drop-newest'):
            raise dp.DataPlaneError('unknown overflow_policy %r'
                                    % self.policy)
        self.batch = c.buffer_commit_batch
        self.interval = c.buffer_commit_interval
        self.replay_batch = c.replay_batch
        self.replay_rate = c.replay_rate
        self.replay_window = c.replay_window
        self.replay_window_wait = c.replay_window_wait
        self.mode = None
        self._pending = []
        self._pending_pkts = []
        self._pending_bytes = 0
        self._cmds = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self._thread = None
        self.counters = collections.Counter()
        self._passed = 0
        self._burst_max = 0
        self._catchup = None      # _GuestWindow pacing a kernel backlog
        self._run_n = 0           # frames accepted in this receive loop
        self._bursts = collections.deque(maxlen=256)
        self._batch_verdicts = True
        self._plock = threading.RLock()
        self._nlseq = 0
        self._last_overflow_log = 0.0
        self.kind_opt = c.guest_interface_kind
        if self.kind_opt not in netfilter.KINDS:
            raise dp.DataPlaneError('unknown guest_interface_kind %r'
                                    % (self.kind_opt,))
        self.replay_via = c.replay_via
        if self.replay_via not in REPLAY_VIA:
            raise dp.DataPlaneError('unknown replay_via %r (one of %s)'
                                    % (self.replay_via,
                                       ', '.join(REPLAY_VIA)))
        self.guest_mac = None
        if c.guest_mac:
            self.guest_mac = parse_mac(c.guest_mac)
        self.guest_mac_text = c.guest_mac
        self.endpoint_host = c.guest_endpoint_host
        self.arp_responder_on = c.arp_responder
        self.arp = None
        self.rules = None

    def _resolve(self):
        """Interface kind and replay path, from the options and the
        interface as it is now (the guest's tap exists once it runs)."""
        if self.rules is not None:
            return
        kind = netfilter.interface_kind(self.ifname, self.kind_opt)
        via = self.replay_via
        if via == 'auto':
            via = 'port' if kind == netfilter.BRIDGE_PORT else 'ip'
        if via == 'port' and self.guest_mac is None:
            raise dp.DataPlaneError(
                'replay_via port (the default for a bridge port) needs '
                '[replica] guest_mac, the MAC address of the copy\'s NIC')
        self.kind, self.via = kind, via
        self.rules = netfilter.Rules(self.chain, self.ifname, self.qnum,
                                     kind)

    def remove_rules(self):
        self._resolve()
        self.rules.remove()
        if self.arp is not None:
            self.arp.remove()
            self.arp = None

    def _answer_arp(self):
        """The ARP responder for a paused copy
        (:class:`netfilter.ArpResponder`), on a bridge port that names the
        guest's MAC and IPv4 address; a failure is logged, not raised
        (the hold works without it, for clients that know the MAC)."""
        if not (self.arp_responder_on and self.kind == netfilter.BRIDGE_PORT
                and self.guest_mac and self.endpoint_host):
            return
        try:
            ip = str(ipaddress.IPv4Address(self.endpoint_host))
        except ValueError:
            LOG.warning('arp_responder: guest_endpoint_host %r is not an '
                        'IPv4 address; a paused copy answers no ARP',
                        self.endpoint_host)
            return
        arp = netfilter.ArpResponder(self.chain, self.ifname, ip,
                                     self.guest_mac_text)
        try:
            arp.install()
        except dp.DataPlaneError as e:
            LOG.warning('arp_responder: not installed (%s); a paused copy '
                        'answers no ARP', e)
            return
        self.arp = arp

    # ---------------------------------------------------------- lifecycle
    def start(self, mode):
        if mode not in dp.MODES:
            raise dp.DataPlaneError('unknown mode %r' % (mode,))
        if netfilterqueue is None:
            raise dp.DataPlaneError('python package NetfilterQueue is not '
                                    'installed (needs libnetfilter-queue)')
        self._resolve()
        self.mode = mode
        self._nfq = netfilterqueue.NetfilterQueue()
        try:
            self._nfq.bind(self.qnum, self._make_callback(),
                           max_len=self.max_len,
                           sock_len=64 << 20)
        except OSError as e:
            raise dp.DataPlaneError('cannot bind NFQUEUE %d (root? another '
                                    'listener?): %s' % (self.qnum, e))
        self._sock = socket.fromfd(self._nfq.get_fd(), socket.AF_NETLINK,
                                   socket.SOCK_RAW)
        if self.via == 'port':
            self._raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            try:
                self._raw.bind((self.ifname, 0))
            except OSError as e:
                raise dp.DataPlaneError('cannot bind a packet socket to %s: '
                                        '%s' % (self.ifname, e))
            self._l2 = (self.guest_mac + port_mac(self.ifname) +
                        b'\x08\x00')
        else:
            self._raw = socket.socket(socket.AF_INET, socket.SOCK_RAW,
                                      socket.IPPROTO_RAW)
        self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        self._icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW,
                                   socket.IPPROTO_ICMP)
        self.rules.install(mode)
        if self.kind == netfilter.BRIDGE_PORT and self.guest_mac and \
                self.endpoint_host:
            try:
                netfilter.pin_neighbour(self.ifname, self.endpoint_host,
                                        self.guest_mac_text)
            except OSError as e:
                LOG.warning('guest endpoint %s: neighbour entry not pinned '
                            '(%s); a long-paused copy may be unreachable '
                            'until it answers ARP', self.endpoint_host, e)
        self._answer_arp()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='nfqueue-%d' % self.qnum)
        self._thread.start()
        LOG.info('nfqueue data plane on %s (%s, replay via %s, queue %d) '
                 'started in %s mode', self.ifname, self.kind, self.via,
                 self.qnum, mode)

    def stop(self):
        if self._thread is None:
            return
        try:
            self._call(self._locked_flush, timeout=10)
        except dp.DataPlaneError:
            pass
        self._stop = True
        os.write(self._wake_w, b'x')
        self._thread.join(5)
        try:
            self._nfq.unbind()
        except Exception:
            pass
        self._thread = None

    # ---------------------------------------------------------- commands
    def _call(self, fn, timeout=60.0):
        if self._thread is None or not self._thread.is_alive():
            raise dp.DataPlaneError('data plane thread is not running')
        done = threading.Event()
        box = {}

        def run():
            try:
                box['r'] = fn()
            except BaseException as e:
                box['e'] = e
            done.set()
        self._cmds.append(run)
        os.write(self._wake_w, b'x')
        if not done.wait(timeout):
            raise dp.DataPlaneError('data plane did not answer in %.1fs'
                                    % timeout)
        if 'e' in box:
            raise box['e']
        return box.get('r')

    # fence and activate run in the caller's thread under the packet lock:
    # the callback holds it for each packet, so a mode change falls between
    # two packets, without a round trip through the data plane thread
    def fence(self):
        with self._plock:
            self.mode = dp.BUFFER
            self._catchup = None
        self.rules.set_mode_async(dp.BUFFER)

    def activate(self):
        with self._plock:
            r = self._replay()
        self.rules.set_mode_async(dp.PASS)
        return r

    def _locked_flush(self):
        with self._plock:
            self._flush()

    def flush(self):
        self._locked_flush()

    # ---------------------------------------------------------- thread
    def _run_cmds(self):
        while self._cmds:
            self._cmds.popleft()()

    def _loop(self):
        wake = self._wake_r
        nfs = self._sock
        while not self._stop:
            if self._pending:
                timeout = max(0.0, self.interval -
                              (time.time() - self._pending[0][0]))
            else:
                timeout = 0.5
            try:
                r, _, _ = select.select([nfs, wake], [], [], timeout)
            except InterruptedError:
                continue
            if wake in r:
                os.read(wake, 4096)
            self._run_cmds()
            if nfs in r:
                before, t_run = self._passed, time.monotonic()
                catchup = self._catchup
                self._run_n = 0
                try:
                    # C receive loop until the queue is empty
                    self._nfq.run(block=False)
                except OSError as e:
                    LOG.error('NFQUEUE receive failed: %s', e)
                    time.sleep(0.01)
                if catchup is not None:
                    # the queue ran empty: what waited during the replay
                    # has reached the guest
                    self._end_catchup(catchup)
                backlog = self._catchup
                if backlog is not None and backlog.backlog:
                    # and so has the backlog this loop found
                    self._end_catchup(backlog)
                self._note_burst(self._passed - before, t_run)
            if self._pending and (time.time() - self._pending[0][0]
                                  >= self.interval):
                self._locked_flush()
        self._locked_flush()

    def _make_callback(self):
        """The per-packet callback, with everything it touches bound to
        closure variables (the hot path of the data plane)."""
        pending = self._pending          # cleared in place by _flush
        pending_pkts = self._pending_pkts
        add, add_pkt = pending.append, pending_pkts.append
        buf = self.buffer
        now = time.time
        batch, interval = self.batch, self.interval
        PASS = dp.PASS
        lock = self._plock
        backlog_at = self.replay_window
        tap = self._tap_window()
        tap_sent = tap.sent_one if tap.size else None

        def on_packet(pkt):
            with lock:  # mode changes and replay fall between two packets
                if self.mode == PASS:
                    pkt.accept()
                    self._passed += 1
                    self._run_n += 1
                    catchup = self._catchup
                    if catchup is None and self._run_n == backlog_at:
                        catchup = self._pace_backlog()
                else:
                    data = pkt.get_payload()
                    n = len(data)
                    if (buf.count + len(pending) >= buf.max_packets or
                            buf.nbytes + self._pending_bytes + n >
                            buf.max_bytes):
                        self._overflow(pkt, data)
                        return
                    t = now()
                    add((t, data))
                    add_pkt(pkt)
                    self._pending_bytes += n
                    if len(pending) >= batch or \
                            t - pending[0][0] >= interval:
                        self._flush()
                    return
            # outside the lock, so that a fence need not wait: no more
            # than a window of frames its QEMU has not taken yet
            if tap_sent is not None:
                tap_sent()
            if catchup is None:
                return
            # a backlog, or just after a replay: paced by the guest's output
            answered = catchup.sent_one()
            self.counters['caught_up'] += 1
            catchup.left -= 1
            if catchup.left <= 0 or not answered:
                # done, or the guest does not answer this traffic (pacing
                # by its answers would only hold it back): pass it on
                self._end_catchup(catchup)
        return on_packet

    TAP_STALL_MAX = 1.0

    def _tap_window(self):
        """At most ``replay_window`` accepted frames in the guest's tap
        that its QEMU has not read yet (the tap's ``tx_packets``).

        A QEMU held off the CPU (or stopped) reads nothing; what the data
        plane accepted meanwhile used to pile up in the tap's queue and
        reach the guest as one burst when QEMU ran again (measured on the
        guest bed: QEMU stopped for 0.3 s at 2,000 echoes/s, 600 frames
        in the tap, 47-125 replies discarded by the guest in 5 runs). Now
        the rest waits in the kernel queue; once QEMU reads again, the
        receive loop goes on and paces it by the guest's output
        (:meth:`_pace_backlog`). QEMU reads its tap
        whether or not the guest answers, so a one-way flow is not held.
        The wait ends after :attr:`TAP_STALL_MAX` seconds (a QEMU that
        reads nothing for that long gets the frames anyway, as before;
        counted as ``tap_window_timeouts``) or at a fence. Full windows
        are counted as ``tap_window_waits``. Only on a bridge port (a
        tap); off with ``replay_window = 0``."""
        size = self.replay_window if self.kind == netfilter.BRIDGE_PORT \
            else 0
        return _GuestWindow(self.ifname, size, self.TAP_STALL_MAX,
                            self.counters, read=netfilter.tx_packets,
                            timeouts='tap_window_timeouts',
                            waits='tap_window_waits',
                            going=lambda: self.mode == dp.PASS)

    def _pace_backlog(self):
        """One receive loop of ``pass`` mode has accepted
        ``replay_window`` frames: they had waited in the kernel queue
        while this thread was off the CPU (on a busy hypervisor), and the
        rest of that backlog would reach the guest as one burst, whose
        replies beyond the guest's socket buffer it discards. The rest
        goes through a :class:`_GuestWindow`, bounded as the replay's
        tail: it ends once as many frames went through as were waiting
        now (+1, the one being accepted), when the queue runs empty, or
        at the first window the guest leaves unanswered. Counted as
        ``backlogs_paced`` (and its frames as ``caught_up``); called
        under the packet lock. None when there is nothing to pace by."""
        window = _GuestWindow(self.ifname, self.replay_window,
                              self.replay_window_wait, self.counters)
        if not window.size:
            return None
        window.backlog = True
        self.counters['backlogs_paced'] += 1
        return self._pace_queue(window, 0)

    def _pace_queue(self, window, unknown):
        """Pace what waits in the kernel queue now (``unknown`` frames
        if it cannot be read), +1 for the frame being handled, through
        ``window``; returns it."""
        window.left = netfilter.kernel_queue_stats(self.qnum).get(
            'kernel_queue_total', unknown) + 1
        self._catchup = window
        return window

    def _end_catchup(self, window):
        """Stop pacing by ``window`` unless a newer replay (or a fence)
        has replaced it meanwhile."""
        if self._catchup is window:
            self._catchup = None

    def _flush(self):
        if not self._pending:
            return
        items, pkts = list(self._pending), list(self._pending_pkts)
        self._pending.clear()
        self._pending_pkts.clear()
        self._pending_bytes = 0
        self.buffer.append_many(items)  # durable before originals dropped
        self._drop_all(pkts)
        self.counters['buffered'] += len(items)
        self.counters['commits'] += 1

    def _drop_all(self, pkts):
        """Drop verdict for every packet of the batch. Every packet with a
        lower id already has its verdict (pass and overflow verdicts are
        immediate), so one NFQNL_MSG_VERDICT_BATCH message covers the batch;
        per-packet verdicts are the fallback."""
        if self._batch_verdicts:
            self._nlseq = (self._nlseq + 1) & 0xffffffff
            msg = netfilter.drop_batch_message(self.qnum, self._nlseq,
                                               pkts[-1].id)
            try:
                self._sock.send(msg)
                self.counters['batch_verdicts'] += 1
                return
            except OSError as e:
                LOG.warning('batch verdict failed (%s); per-packet verdicts '
                            'from now on', e)
                self._batch_verdicts = False
        for p in pkts:
            p.drop()

    def _overflow(self, pkt, data):
        pkt.drop()
        key = ('overflow_refused' if self.policy == 'refuse'
               else 'overflow_dropped')
        self.counters[key] += 1
        if self.policy == 'refuse':
            self._send_refusal(data)
        now = time.monotonic()
        if now - self._last_overflow_log > 5.0:
            self._last_overflow_log = now
            LOG.warning('buffer full (%d packets, %d bytes; bounds %d/%d): '
                        'policy %s applied to new packets, %d so far; '
                        'buffered data is kept',
                        self.buffer.count, self.buffer.nbytes,
                        self.buffer.max_packets, self.buffer.max_bytes,
                        self.policy, self.counters[key])

    def _send_refusal(self, data):
        icmp = netfilter.admin_prohibited(data)
        if icmp is None:
            return
        try:
            self._icmp.sendto(icmp, (socket.inet_ntoa(data[12:16]), 0))
            self.counters['refusals_sent'] += 1
        except OSError:
            self.counters['refusal_send_errors'] += 1

    def _send_retry(self, send, *args):
        for attempt in range(1000):
            try:
                send(*args)
                return
            except OSError as e:
                if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    raise
                time.sleep(0.0005)
        raise dp.DataPlaneError('replay send kept failing with ENOBUFS')

    REPLAY_QUEUE_HEADROOM = 1024

    def _grow_tap_queue(self):
        """Room in the guest interface's transmit queue for the whole
        replay (see :func:`netfilter.ensure_tx_queue`); returns its
        tx_dropped counter before the replay."""
        want = self.buffer.count + self.REPLAY_QUEUE_HEADROOM
        try:
            old, new = netfilter.ensure_tx_queue(self.ifname, want)
        except (OSError, ValueError) as e:
            self.counters['tx_queue_grow_errors'] += 1
            LOG.warning('cannot grow the transmit queue of %s to %d: %s',
                        self.ifname, want, e)
        else:
            if new > old:
                LOG.info('transmit queue of %s grown %d -> %d frames for a '
                         'replay of %d', self.ifname, old, new,
                         self.buffer.count)
        return netfilter.tx_dropped(self.ifname)

    def _replay(self):
        self._flush()
        dropped0 = self._grow_tap_queue()
        t0 = time.monotonic()
        n = 0
        first = None
        sendto = self._raw.sendto
        port = self.via == 'port'
        if port:
            send, l2 = self._raw.send, self._l2
        dsts = {}
        rate = self.replay_rate
        window = _GuestWindow(self.ifname, self.replay_window,
                              self.replay_window_wait, self.counters)
        step = min(64, self.replay_batch)  # first packets out sooner
        while True:
            rows = self.buffer.peek(step)
            step = self.replay_batch
            if not rows:
                break
            if first is None:
                first = time.monotonic()
            for _seq, _ts, data in rows:
                if len(data) < 20 or data[0] >> 4 != 4:
                    self.counters['replay_skipped_non_ipv4'] += 1
                    continue
                if port:
                    frame = l2 + data
                    try:
                        send(frame)
                    except OSError:
                        self._send_retry(send, frame)
                else:
                    key = data[16:20]
                    dst = dsts.get(key)
                    if dst is None:
                        dst = dsts[key] = (socket.inet_ntoa(key), 0)
                    try:
                        sendto(data, dst)
                    except OSError:
                        self._send_retry(sendto, data, dst)
                n += 1
                if rate:
                    delay = t0 + n / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if window.size:
                    window.sent_one()
            self.buffer.ack(rows)  # replay position is durable per step
        self.mode = dp.PASS
        if n and window.size:
            # what arrived during the replay waits in the kernel queue; it
            # goes to the guest at the guest's pace too, not as one burst
            # (seen: 250-330 packets at once, 1 kHz, and the guest's
            # replies beyond its socket buffer discarded). Only that: the
            # pacing ends once as many frames as were waiting went through
            # (+1, the one the blocked callback holds), or at the first
            # window the guest does not answer, so a flow it does not
            # answer is not held to one window per replay_window_wait
            self._pace_queue(window, n)
        dt = time.monotonic() - t0
        self.counters['replayed'] += n
        dropped1 = netfilter.tx_dropped(self.ifname)
        if dropped0 is not None and dropped1 is not None and \
                dropped1 > dropped0:
            # the guest did not keep up: frames were lost at its interface
            self.counters['tx_dropped_during_replay'] += dropped1 - dropped0
            LOG.warning('%s dropped %d frames during the replay of %d',
                        self.ifname, dropped1 - dropped0, n)
        if n:
            LOG.info('replayed %d packets in %.3fs (%.0f pkt/s)', n, dt,
                     n / dt if dt else 0)
        return {'replayed': n, 'replay_seconds': dt,
                'replay_started': first}

    BIG_BURST = 16

    def _note_burst(self, n, t_run):
        """Packets accepted in one receive loop of ``pass`` mode. Many at
        once means they had waited in the kernel queue (during a replay,
        or while this thread was off the CPU); the last receive loops of
        :attr:`BIG_BURST` packets or more are kept as (monotonic start,
        packets, seconds)."""
        if n > self._burst_max:
            self._burst_max = n
        if n >= self.BIG_BURST:
            self._bursts.append((round(t_run, 4), n,
                                 round(time.monotonic() - t_run, 4)))

    def kernel_queue_stats(self):
        return netfilter.kernel_queue_stats(self.qnum)

    def stats(self):
        s = dict(self.counters)
        s['passed'] = self._passed
        s['pass_burst_max'] = self._burst_max
        s['pass_bursts'] = list(self._bursts)
        s['pending'] = len(self._pending)
        s['arp_responder'] = self.arp.ip if self.arp else None
        s.update(self.kernel_queue_stats())
        return s
