"""Per-pair byte counters kept by the kernel: an nftables ``bridge`` table.

The ruleset (:func:`ruleset`) is one table with a dynamic set keyed by
``ipv4_addr . ipv4_addr`` whose elements each carry a counter, and one
rule per guest-port pattern on the bridge ``forward`` hook::

    iifname "tap*" ether type ip update @flows { ip saddr . ip daddr } accept

* The ``bridge`` family sees frames switched between the ports of a Linux
  bridge (guest to guest on the host, guest to the uplink) without
  br_netfilter; the ``ip``/``inet`` families do not.
* Only frames that *enter from a guest port* are counted, so a packet
  between guests on two hypervisors is counted once, by the sender's
  meter, and Prometheus can sum the meters without double counting.
* ``update`` refreshes an element's timeout; a pair idle for ``timeout``
  seconds is dropped (its series ends; if it comes back its counter starts
  from 0 again, which ``rate()`` treats as a counter reset).
* The counted bytes are the IP packet (the bridge hook's skb length,
  without the Ethernet header): checked, 3 pings of 84-byte IP packets
  count ``packets 3 bytes 252``.

The installed table is replaced atomically (``table X; delete table X;
table X {...}`` in one ``nft -f`` transaction) and read back with
``nft -j list set``. Kernel facts and errors: docs/local-stack.md.
"""

import json
import re
import subprocess

from nova_netaware.core.exceptions import NetawareError

TABLE = 'netaware_flowmeter'
SET = 'flows'
# An interface name (at most 15 characters), optionally ending with the
# nft wildcard '*'.
_PORT_RE = re.compile(r'^[A-Za-z0-9_.:@-]{1,15}\*?$')
_TABLE_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_]{0,63}$')


class FlowMeterError(NetawareError):
    """The flow meter cannot install or read its counters; says why."""


def ruleset(guest_ports=('tap*',), table=TABLE, timeout_s=600,
            size=65535):
    """The ``nft -f`` script that (re)creates the meter's table.

    :param guest_ports: interface names or ``prefix*`` patterns of the
        bridge ports that guests are plugged into (Nova's libvirt driver
        names them ``tap<port id[:11]>``).
    """
    ports = list(guest_ports)
    if not ports:
        raise FlowMeterError('no guest port pattern given')
    for p in ports:
        if not _PORT_RE.match(p):
            raise FlowMeterError('bad guest port pattern %r: an interface '
                                 'name of at most 15 characters, optionally '
                                 'ending with *' % p)
    if not _TABLE_RE.match(table):
        raise FlowMeterError('bad nftables table name %r' % table)
    if int(timeout_s) < 1 or int(size) < 1:
        raise FlowMeterError('timeout and size must be positive (got %r, '
                             '%r)' % (timeout_s, size))
    rules = ''.join(
        '    iifname "%s" ether type ip update @%s '
        '{ ip saddr . ip daddr } accept\n' % (p, SET) for p in ports)
    return ('table bridge {t}\n'
            'delete table bridge {t}\n'
            'table bridge {t} {{\n'
            '  set {s} {{\n'
            '    type ipv4_addr . ipv4_addr\n'
            '    size {size}\n'
            '    flags dynamic,timeout\n'
            '    timeout {timeout}s\n'
            '    counter\n'
            '  }}\n'
            '  chain forward {{\n'
            '    type filter hook forward priority 0; policy accept;\n'
            '{rules}'
            '  }}\n'
            '}}\n').format(t=table, s=SET, size=int(size),
                           timeout=int(timeout_s), rules=rules)


def parse_set(text):
    """``nft -j list set`` output -> ``{(src, dst): (packets, bytes)}``."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise FlowMeterError('nft printed no JSON: %s' % e)
    out = {}
    for item in doc.get('nftables', []):
        s = item.get('set') if isinstance(item, dict) else None
        if s is None:
            continue
        for elem in s.get('elem', []):
            e = elem.get('elem', elem) if isinstance(elem, dict) else {}
            val = e.get('val', {}) if isinstance(e, dict) else {}
            pair = val.get('concat') if isinstance(val, dict) else None
            counter = e.get('counter') if isinstance(e, dict) else None
            if not (isinstance(pair, list) and len(pair) == 2
                    and isinstance(counter, dict)):
                continue
            out[(pair[0], pair[1])] = (int(counter.get('packets', 0)),
                                       int(counter.get('bytes', 0)))
    return out


class Nft(object):
    """Runs ``nft`` for the meter, in network namespace *netns* if given
    (``ip netns exec``; the local stack's hypervisors live in
    namespaces)."""

    def __init__(self, netns=None, table=TABLE, nft='nft', timeout=10):
        self.prefix = ['ip', 'netns', 'exec', netns] if netns else []
        self.netns = netns
        self.table = table
        self.nft = nft
        self.timeout = timeout

    def _run(self, args, stdin=None):
        argv = self.prefix + [self.nft] + args
        try:
            res = subprocess.run(argv, input=stdin, capture_output=True,
                                 text=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise FlowMeterError('%s: %s' % (' '.join(argv), e))
        if res.returncode != 0:
            raise FlowMeterError('%s failed (exit %d): %s' % (
                ' '.join(argv), res.returncode,
                ' '.join(res.stderr.split())[:500]))
        return res.stdout

    def install(self, guest_ports=('tap*',), timeout_s=600, size=65535):
        self._run(['-f', '-'], stdin=ruleset(guest_ports, self.table,
                                             timeout_s, size))

    def read(self):
        return parse_set(self._run(['-j', 'list', 'set', 'bridge',
                                    self.table, SET]))

    def remove(self):
        self._run(['delete', 'table', 'bridge', self.table])
