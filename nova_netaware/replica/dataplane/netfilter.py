"""Kernel side of the ``nfqueue`` data plane: the iptables rules, the
netlink batch verdict, the ICMP refusal and the kernel queue counters.

Rules (in the namespace the agent runs in, i.e. the hypervisor side)::

    -A FORWARD -o <guest_interface> -j <chain>                    (routed)
    -A FORWARD -m physdev --physdev-out <guest_interface>
               --physdev-is-bridged -j <chain>                    (bridge port)
    -A <chain> -j NFQUEUE --queue-num <n> [--queue-bypass]

A *bridge port* is the guest's tap plugged into a Linux bridge (libvirt's
``<interface type='bridge'>``, Nova's linuxbridge VIFs): frames between
two ports of the bridge are not routed, and reach iptables' FORWARD chain
only through br_netfilter (``net.bridge.bridge-nf-call-iptables = 1``);
there ``-o`` names the bridge, so the port is matched with ``physdev``.
The facts measured on this project's kernel are in docs/replica.md,
"Data plane at a real guest's port".
"""

import os

import logging
import socket
import struct
import subprocess
import threading

from nova_netaware.replica import dataplane as dp

LOG = logging.getLogger(__name__)

_NFNL_SUBSYS_QUEUE = 3
_NFQNL_MSG_VERDICT_BATCH = 3
_NFQA_VERDICT_HDR = 2
_NF_DROP = 0


def checksum(b):
    """Internet checksum (RFC 1071): one's complement of the one's
    complement sum of the 16-bit words of ``b``."""
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def _run(cmd, check):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise dp.DataPlaneError('%s failed: %s' % (' '.join(cmd),
                                                   p.stderr.strip()))
    return p.returncode == 0


def iptables(*args, check=True):
    """Run ``iptables -w 5 args``; raise DataPlaneError if it fails and
    ``check``. Returns whether it succeeded."""
    return _run(['iptables', '-w', '5'] + list(args), check)


def ebtables(*args, check=True):
    """Run ``ebtables --concurrent args`` (the bridge tables), like
    :func:`iptables`."""
    return _run(['ebtables', '--concurrent'] + list(args), check)


ROUTED = 'routed'
BRIDGE_PORT = 'bridge-port'
AUTO = 'auto'
KINDS = (AUTO, ROUTED, BRIDGE_PORT)

BRIDGE_NF_SYSCTL = '/proc/sys/net/bridge/bridge-nf-call-iptables'


def is_bridge_port(ifname, sysfs='/sys/class/net'):
    """True if ``ifname`` (in this network namespace) is a port of a Linux
    bridge."""
    return os.path.isdir(os.path.join(sysfs, ifname, 'brport'))


def pin_neighbour(ifname, ip, mac, sysfs='/sys/class/net'):
    """A permanent neighbour entry ``ip -> mac`` on the bridge whose port
    is ``ifname``: the hypervisor reaches its guest's state endpoint
    without ARP, which a paused guest cannot answer (after a long pause
    the kernel's entry is FAILED and the export or import after the
    unpause fails with "No route to host"). Returns the bridge, or None
    when ``ifname`` is not a bridge port."""
    master = os.path.join(sysfs, ifname, 'master')
    if not os.path.exists(master):
        return None
    bridge = os.path.basename(os.path.realpath(master))
    r = subprocess.run(['ip', 'neigh', 'replace', ip, 'lladdr', mac, 'dev',
                        bridge, 'nud', 'permanent'], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise OSError('ip neigh replace %s lladdr %s dev %s: %s'
                      % (ip, mac, bridge, r.stderr.strip()))
    return bridge


class ArpResponder:
    """Answer ARP for the guest at its bridge, in the hypervisor::

        ebtables -t nat -N <chain>
        ebtables -t nat -A <chain> -p ARP --arp-opcode Request
                 --arp-ip-dst <ip> ! -i <port> -j arpreply
                 --arpreply-mac <mac>
        ebtables -t nat -I PREROUTING -j <chain>

    A paused guest answers no ARP, and ARP is not IPv4, so the NFQUEUE
    hold never sees it: a client whose neighbour entry for the copy
    expired during a hold kept a few packets in its own neighbour queue
    and dropped the rest, before they reached the hold. ``arpreply``
    (kernel ``ebt_arpreply``) answers for the copy with its own MAC, as
    Neutron's ARP responder does, and drops the request; requests the
    guest itself sends (``-i <port>``, e.g. its duplicate address probe)
    are left alone. The facts measured on this kernel are in
    docs/replica.md, "Data plane at a real guest's port"."""

    def __init__(self, chain, port, ip, mac):
        self.chain = chain
        self.port = port
        self.ip = ip
        self.mac = mac

    def install(self):
        """Idempotent: after an agent that was killed, the chain is
        rebuilt and jumped to once."""
        ebtables('-t', 'nat', '-N', self.chain, check=False)
        ebtables('-t', 'nat', '-F', self.chain)
        ebtables('-t', 'nat', '-A', self.chain, '-p', 'ARP',
                 '--arp-opcode', 'Request', '--arp-ip-dst', self.ip,
                 '!', '-i', self.port, '-j', 'arpreply',
                 '--arpreply-mac', self.mac)
        self._unjump()
        ebtables('-t', 'nat', '-I', 'PREROUTING', '-j', self.chain)

    def _unjump(self):
        # every jump to the chain (ebtables -C does not work here)
        while ebtables('-t', 'nat', '-D', 'PREROUTING', '-j', self.chain,
                       check=False):
            pass

    def remove(self):
        self._unjump()
        ebtables('-t', 'nat', '-F', self.chain, check=False)
        ebtables('-t', 'nat', '-X', self.chain, check=False)


TAP_QUEUE_MAX = 1 << 16


def _counter(ifname, name, sysfs):
    try:
        with open(os.path.join(sysfs, ifname, 'statistics', name)) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def tx_dropped(ifname, sysfs='/sys/class/net'):
    """The interface's tx_dropped counter (None if unreadable)."""
    return _counter(ifname, 'tx_dropped', sysfs)


def rx_packets(ifname, sysfs='/sys/class/net'):
    """The interface's rx_packets counter: on a guest's tap, the frames
    the guest has sent (None if unreadable)."""
    return _counter(ifname, 'rx_packets', sysfs)


def tx_packets(ifname, sysfs='/sys/class/net'):
    """The interface's tx_packets counter: on a guest's tap, the frames
    its QEMU has read from the tap (the tun driver counts a frame when
    the reader takes it, not when it is queued; checked: frozen while the
    QEMU was stopped, 600 frames queued meanwhile). None if unreadable."""
    return _counter(ifname, 'tx_packets', sysfs)


def ensure_tx_queue(ifname, want, sysfs='/sys/class/net'):
    """Grow ``ifname``'s transmit queue to at least ``want`` frames (at
    most :data:`TAP_QUEUE_MAX`); never shrink it. Returns (old, new).

    A tap's transmit queue is the ring of frames waiting for the guest to
    read them; its length is the device's ``tx_queue_len`` (1,000 by
    default), and the tun driver resizes the ring, keeping what it holds,
    when the length changes. A frame sent to a full ring is dropped
    silently (only ``tx_dropped`` counts it): a replay of a few thousand
    held frames into a slow guest overflowed it."""
    path = os.path.join(sysfs, ifname, 'tx_queue_len')
    with open(path) as f:
        old = int(f.read())
    new = min(max(int(want), old), TAP_QUEUE_MAX)
    if new > old:
        with open(path, 'w') as f:
            f.write(str(new))
    return old, max(new, old)


def interface_kind(ifname, kind=AUTO, sysfs='/sys/class/net'):
    """Resolve ``kind`` (``auto``: bridge-port if ``ifname`` is plugged
    into a bridge, else routed). A bridge port needs br_netfilter: raise
    DataPlaneError when bridged frames would not reach iptables."""
    if kind not in KINDS:
        raise dp.DataPlaneError('unknown guest_interface_kind %r (one of %s)'
                                % (kind, ', '.join(KINDS)))
    if kind == AUTO:
        kind = BRIDGE_PORT if is_bridge_port(ifname, sysfs) else ROUTED
    if kind == BRIDGE_PORT:
        try:
            with open(BRIDGE_NF_SYSCTL) as f:
                on = f.read().strip() == '1'
        except OSError:
            raise dp.DataPlaneError(
                '%s is a bridge port but %s does not exist: br_netfilter is '
                'not available, so bridged frames never reach iptables '
                '(route the guest at L3 instead)' % (ifname,
                                                    BRIDGE_NF_SYSCTL))
        if not on:
            raise dp.DataPlaneError(
                '%s is a bridge port but %s is 0: bridged frames bypass '
                'iptables; set it to 1 in this namespace' % (
                    ifname, BRIDGE_NF_SYSCTL))
    return kind


class Rules:
    """The FORWARD jump toward ``ifname`` and the NFQUEUE rule of
    ``chain``; ``pass`` mode adds ``--queue-bypass``. ``kind`` is
    ``routed`` (``-o ifname``) or ``bridge-port`` (``physdev``)."""

    def __init__(self, chain, ifname, qnum, kind=ROUTED):
        if kind not in (ROUTED, BRIDGE_PORT):
            raise dp.DataPlaneError('Rules needs a resolved kind, got %r'
                                    % (kind,))
        self.chain = chain
        self.ifname = ifname
        self.qnum = qnum
        self.kind = kind
        self._lock = threading.Lock()

    def _jump(self):
        if self.kind == BRIDGE_PORT:
            match = ['-m', 'physdev', '--physdev-out', self.ifname,
                     '--physdev-is-bridged']
        else:
            match = ['-o', self.ifname]
        return ['FORWARD'] + match + ['-j', self.chain]

    def _rule_args(self, mode):
        a = ['-j', 'NFQUEUE', '--queue-num', str(self.qnum)]
        if mode == dp.PASS:
            a.append('--queue-bypass')
        return a

    def install(self, mode):
        with self._lock:
            iptables('-N', self.chain, check=False)
            iptables('-F', self.chain)
            iptables('-A', self.chain, *self._rule_args(mode))
            jump = self._jump()
            if not iptables('-C', *jump, check=False):
                iptables('-I', *jump)

    def set_mode(self, mode):
        with self._lock:
            iptables('-R', self.chain, '1', *self._rule_args(mode))

    def set_mode_async(self, mode):
        def run():
            try:
                self.set_mode(mode)
            except dp.DataPlaneError as e:
                LOG.error('could not update NFQUEUE rule: %s', e)
        threading.Thread(target=run, daemon=True).start()

    def remove(self):
        with self._lock:
            iptables('-D', *self._jump(), check=False)
            iptables('-F', self.chain, check=False)
            iptables('-X', self.chain, check=False)


def drop_batch_message(qnum, seq, last_id):
    """One netlink NFQNL_MSG_VERDICT_BATCH message: drop every packet of
    queue ``qnum`` up to id ``last_id``."""
    body = (struct.pack('=BBH', socket.AF_UNSPEC, 0, socket.htons(qnum)) +
            struct.pack('=HH', 12, _NFQA_VERDICT_HDR) +
            struct.pack('!II', _NF_DROP, last_id))
    return struct.pack('=IHHII', 16 + len(body),
                       (_NFNL_SUBSYS_QUEUE << 8) | _NFQNL_MSG_VERDICT_BATCH,
                       1, seq, 0) + body


def admin_prohibited(data):
    """ICMP destination unreachable, "communication administratively
    prohibited" (type 3, code 13), quoting the IPv4 packet ``data``;
    None if ``data`` is not IPv4."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0f) * 4
    quoted = data[:ihl + 8]
    icmp = struct.pack('!BBHI', 3, 13, 0, 0) + quoted
    return icmp[:2] + struct.pack('!H', checksum(icmp)) + icmp[4:]


def kernel_queue_stats(qnum):
    """Counters of queue ``qnum`` from /proc/net/netfilter/nfnetlink_queue
    (empty if not readable)."""
    try:
        with open('/proc/net/netfilter/nfnetlink_queue') as f:
            for line in f:
                p = line.split()
                if p and int(p[0]) == qnum:
                    return {'kernel_queue_total': int(p[2]),
                            'kernel_queue_dropped': int(p[5]),
                            'kernel_user_dropped': int(p[6])}
    except (OSError, ValueError, IndexError):
        pass
    return {}
