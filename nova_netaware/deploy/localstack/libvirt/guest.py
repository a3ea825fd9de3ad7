"""The guest's programs: /init, the counter service and the traffic
generator, as busybox shell scripts (text only; :mod:`.image` packs them).

Network address: the guest takes its IPv4 address from its own MAC. The
last three bytes of ``fa:16:3e:AA:BB:CC`` give ``10.AA.BB.CC`` (decimal), on
the prefix length given by ``na.prefix=`` on the kernel command line
(default 16). Whoever creates the NIC (``virsh`` in the lab, the network
stand-in for Nova's ports) picks the MAC from the address, see
:func:`mac_for_ip`. No DHCP server is needed on any bridge, the address
survives a live migration (it is in guest memory) and it is the fixed IP
the ports API reports.

Services (busybox httpd on port 80, CGI):

* ``GET /cgi-bin/count``: increments the counter kept in guest RAM and
  answers ``count N host IP``; the state survives a live migration;
* ``GET /cgi-bin/peek``: the counter without incrementing it;
* ``GET /cgi-bin/req?c=<client>&n=<seq>``: a numbered request, applied
  exactly once (below); answers one line
  ``ok <c> <n> total <T> client <C> last <L> <how>``: T the global total,
  C the client's applied requests, L its last applied number, ``how`` is
  ``applied`` (n = L+1 before), ``gap`` (n > L+1: applied, gap counted) or
  ``dup`` (n <= L: not applied again, duplicate counted). ``c`` is 1-32 of
  ``[A-Za-z0-9_-]``, ``n`` a decimal >= 1 without leading zeros; anything
  else answers ``bad c`` / ``bad n`` and changes nothing;
* ``GET /cgi-bin/netstat``: the guest kernel's counters (``/proc/net/snmp``,
  ``/proc/net/dev``, ``softnet_stat``), neighbour table, command line and
  virtio_net's parameters, for diagnosis;
* ``GET /cgi-bin/ping?peer=IP``: three ICMP echoes from the guest;
* ``GET /cgi-bin/traffic?peer=IP&kbps=R`` (or ``mbps=R``): send R to the
  peer's sink (TCP port 5001) from now on; rate 0 stops that flow;
  ``GET /cgi-bin/traffic`` lists the running flows;
* a sink on TCP port 5001 that discards what it receives;
* the state endpoint on TCP port 7001 (below).

Service state (``/tmp/st``, guest RAM): ``counter`` (``/cgi-bin/count``),
``total``, ``epoch``, ``c/<client>`` = ``last count dups gaps``, and
``log``, one line ``<c> <n>`` per applied request in the order applied.
Its canonical serialisation (``dump`` in ``na_state.c``) is text::

    netaware-guest-state 1
    epoch E
    counter N
    total T
    client <c> <last> <count> <dups> <gaps>     (sorted by client, bytewise)
    log <c> <n>                                 (in the order applied)

**Lock.** busybox-static has no ``flock``; ``mkdir /tmp/st.lock`` is
atomic, so the lock is that directory (``na_lock``: mkdir, else usleep 2
ms and retry; ``na_unlock``: rmdir). Every read-modify-write of the state
holds it and writes its reply only after releasing it (SIGPIPE ignored),
so a client that goes away cannot leave it held. The guest is one box and
nothing kills the CGIs: stale-lock recovery is not needed.

**State endpoint** (``/bin/na-state 7001``: a static C program,
``na_state.c`` next to this module, compiled by :mod:`.image` with ``gcc
-static``; requests served one at a time with a 10 s socket timeout,
one JSON line each way; a connection stays open for more requests until
the client closes it, at most 16 kept; no process is spawned per
request), the protocol of the reference guest
:mod:`nova_netaware.replica.guest` that the ``guest_endpoint`` state
driver speaks:

* ``{"op": "export"}`` -> ``{"ok": true, "size": N, "sha256": H,
  "epoch": E, "frozen": true, "server_us": U}`` then the N bytes of the
  serialisation (U: the endpoint's own time for the request, in
  microseconds, also in the import reply);
* ``{"op": "import", "size": N, "sha256": H, "epoch": E}`` then N bytes ->
  ``{"ok": true, "sha256": H2, "server_us": U}``. The bytes (at most 32
  MiB) are parsed (fields split on blanks, as awk does) into a fresh
  directory, which is serialised again; H2 is the SHA-256 of *that*, i.e.
  of what was actually loaded. Refused with ``{"ok": false, "error": ...}``
  and nothing changed: ``short import``, ``bad state blob`` (any line
  outside the format), ``stale epoch E < current`` (equal is allowed),
  ``checksum mismatch`` (H2 != H; so a reordered or duplicated line is
  refused too). On success the directory replaces the state, ``epoch``
  becomes E and the copy is thawed;
* ``{"op": "stats"}`` -> ``total``, ``counter``, ``epoch``, ``frozen``,
  ``clients`` ({c: [last, count, dups, gaps]}), ``dups``, ``gaps``,
  ``log_lines``, ``imports``, ``state_size``, ``sha256`` (of the current
  serialisation);
* ``{"op": "log"}`` -> ``{"ok": true, "log": ["c n", ...]}``;
* anything else -> ``bad request`` or ``unknown op X``.

**Consistency: freeze at export.** Export takes the lock, sets the flag
``/tmp/st.frozen``, serialises and releases the lock. From then on no
request is applied on this copy: ``/cgi-bin/req`` and ``/cgi-bin/count``
(``na_lock_live``) take the lock, and if the flag is set they release it
and wait (usleep 20 ms, retry) -- they do not fail and do not apply. An
import clears the flag under the lock, and the waiting requests are then
applied on top of the imported state. The replica agent pauses the copy
right after the export, and activation imports into a copy before it
serves, so a request is applied either before the export (and is in the
exported state) or after an import (on top of it), never on a copy whose
state is about to be replaced: every request is applied exactly once.
A copy that is exported and never imported again keeps its requests
waiting (they are not lost: a client's retry of the same number is a
``dup`` once one attempt has been applied). ``peek`` and ``stats`` read
under the lock and do not wait.

The generator paces itself on /proc/uptime (centiseconds): it sends
chunks of zeros through ``nc`` as long as the bytes sent stay below
``elapsed * rate``, and never builds more than one second of backlog (a
shaped or congested path makes it send less, not burst later).
"""

SINK_PORT = 5001
STATE_PORT = 7001  # [replica] guest_endpoint_port's default
HTTP_PORT = 80
MAC_PREFIX = 'fa:16:3e'


def mac_for_ip(ip):
    """The MAC whose last three bytes are the last three octets of
    ``ip`` (the guest derives its address back from it)."""
    octets = [int(x) for x in ip.split('.')]
    if len(octets) != 4 or octets[0] != 10:
        raise ValueError('guest addresses are 10.x.y.z, got %r' % ip)
    return '%s:%02x:%02x:%02x' % (MAC_PREFIX, octets[1], octets[2],
                                  octets[3])


#: The guest kernel's command line in the lab's own domains (the guest bed,
#: where the replica's data plane is tested against a stock guest): the
#: serial console and the prefix length of the guest's address (above).
CMDLINE = 'console=ttyS0 quiet na.prefix=16'

#: The command line of the image Nova boots (the local stack, its e2e and
#: the two-cloud benchmark). It adds ``virtio_net.napi_tx=0``: the driver
#: then releases a frame's charge on its socket when it queues the frame
#: to QEMU, not when QEMU has sent it. With the default, a QEMU late on
#: the CPU keeps the guest's replies charged to the kernel's one ICMP
#: socket, whose send buffer is fixed (about 130 KB); the guest then
#: discards its own replies (``Ip.OutDiscards`` = ``Icmp.OutErrors``). On
#: the guest bed (2026-12-05, QEMU stopped 0.3 s at 2,000 echoes a
#: second, the data plane's tap window off): 71-125 replies discarded in 6
#: runs with the default, none in 3 with ``napi_tx=0`` (docs/replica.md).
IMAGE_CMDLINE = CMDLINE + ' virtio_net.napi_tx=0'


def ip_for_mac(mac):
    """Inverse of :func:`mac_for_ip`."""
    b = mac.lower().split(':')
    return '10.%d.%d.%d' % (int(b[3], 16), int(b[4], 16), int(b[5], 16))


INIT = r'''#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
# module parameters from the kernel command line (virtio_net.napi_tx=0), as
# modprobe takes them: insmod alone does not read /proc/cmdline
for m in $(cat /etc/modules.order); do
  n=${m##*/}; n=${n%%.ko}; args=
  for w in $(cat /proc/cmdline); do
    case $w in "$n".*=*) args="$args ${w#"$n".}";; esac
  done
  insmod /lib/modules/$m $args || echo "init: insmod $m$args failed"
done
prefix=16
for w in $(cat /proc/cmdline); do
  case $w in na.prefix=*) prefix=${w#na.prefix=};; esac
done
hostname guest
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0/address ] && [ $i -lt 50 ]; do usleep 100000; i=$((i+1)); done
mac=$(cat /sys/class/net/eth0/address)
IFS=: ; set -- $mac ; unset IFS
addr=10.$((0x$4)).$((0x$5)).$((0x$6))
echo $addr > /run/ip
ip addr add $addr/$prefix dev eth0
ip link set eth0 up
mkdir -p /tmp/st/c
for f in counter total epoch; do echo 0 > /tmp/st/$f; done
: > /tmp/st/log
echo 0 > /tmp/st.imports
mkdir -p /tmp/flows
httpd -p %(http)d -h /www
nc -ll -p %(sink)d -e /bin/na-sink &
/bin/na-state %(state)d &
echo "netaware-guest: up, eth0 $mac $addr/$prefix"
# answer on the serial console too (debugging)
while :; do setsid cttyhack sh -l 2>/dev/null || sleep 3600; done
''' % {'http': HTTP_PORT, 'sink': SINK_PORT, 'state': STATE_PORT}

SINK = '''#!/bin/sh
exec cat > /dev/null
'''

# Sourced by every script that touches the service state (see the module
# docstring, "Service state"). mkdir is atomic, so a directory is the lock.
LIB = r'''# /bin/na-lib: sourced, not run
# NA_ROOT: only for tests of the scripts outside the guest
ST=${NA_ROOT:-/tmp}/st
LOCK=$ST.lock
FROZEN=$ST.frozen
na_lock() { until mkdir $LOCK 2>/dev/null; do usleep 2000; done; }
na_unlock() { rmdir $LOCK; }
# the lock on a state that may change: while an export has frozen this
# copy, wait (without holding the lock) until an import thaws it
na_lock_live() {
  while :; do
    na_lock
    [ -e $FROZEN ] || return 0
    na_unlock
    usleep 20000
  done
}
'''

CGI_COUNT = r'''#!/bin/sh
. /bin/na-lib
trap '' PIPE
na_lock_live
read n < $ST/counter
n=$((n+1))
echo $n > $ST/counter
na_unlock
echo "Content-Type: text/plain"
echo
echo "count $n host $(hostname) ip $(cat /run/ip)"
'''

CGI_PEEK = r'''#!/bin/sh
. /bin/na-lib
na_lock
read n < $ST/counter
na_unlock
echo "Content-Type: text/plain"
echo
echo "count $n host $(hostname) ip $(cat /run/ip)"
'''

CGI_REQ = r'''#!/bin/sh
. /bin/na-lib
trap '' PIPE
reply() { echo "Content-Type: text/plain"; echo; echo "$*"; exit 0; }
c=; n=
IFS='&'
for kv in $QUERY_STRING; do
  case $kv in c=*) c=${kv#c=};; n=*) n=${kv#n=};; esac
done
unset IFS
case $c in ''|*[!A-Za-z0-9_-]*) reply "bad c";; esac
[ ${#c} -le 32 ] || reply "bad c"
case $n in ''|0*|*[!0-9]*) reply "bad n";; esac
[ ${#n} -le 15 ] || reply "bad n"
na_lock_live
f=$ST/c/$c
last=0; cnt=0; dups=0; gaps=0
[ -e $f ] && read last cnt dups gaps < $f
read total < $ST/total
if [ $n -le $last ]; then
  dups=$((dups+1)); r=dup
else
  r=applied
  [ $n -eq $((last+1)) ] || { gaps=$((gaps+1)); r=gap; }
  last=$n; cnt=$((cnt+1)); total=$((total+1))
  echo $total > $ST/total
  echo "$c $n" >> $ST/log
fi
echo "$last $cnt $dups $gaps" > $f
na_unlock
reply "ok $c $n total $total client $cnt last $last $r"
'''

CGI_PING = r'''#!/bin/sh
echo "Content-Type: text/plain"
echo
peer=${QUERY_STRING#peer=}
case $peer in ''|*[!0-9.]*) echo "bad peer"; exit 0;; esac
ping -c 3 -W 2 $peer 2>&1 | tail -2
'''

CGI_TRAFFIC = r'''#!/bin/sh
echo "Content-Type: text/plain"
echo
peer=; kbps=
IFS='&'
for kv in $QUERY_STRING; do
  case $kv in
    peer=*) peer=${kv#peer=};;
    kbps=*) kbps=${kv#kbps=};;
    mbps=*) kbps=$(( ${kv#mbps=} * 1000 ));;
  esac
done
unset IFS
if [ -n "$peer" ]; then
  case $peer in *[!0-9.]*) echo "bad peer"; exit 0;; esac
  case $kbps in ''|*[!0-9]*) echo "bad rate"; exit 0;; esac
  if [ -f /tmp/flows/$peer.pid ]; then
    kill -TERM -$(cat /tmp/flows/$peer.pid) 2>/dev/null
    rm -f /tmp/flows/$peer.pid /tmp/flows/$peer.kbps
  fi
  if [ "$kbps" -gt 0 ]; then
    setsid /bin/na-gen $peer $kbps </dev/null >/dev/null 2>&1 &
    echo $! > /tmp/flows/$peer.pid
    echo $kbps > /tmp/flows/$peer.kbps
  fi
fi
for f in /tmp/flows/*.kbps; do
  [ -e "$f" ] || continue
  p=${f##*/}; echo "flow ${p%.kbps} kbps $(cat $f)"
done
echo "end"
'''

# bytes per centisecond at R kbit/s = R * 1000 / 8 / 100 = R * 5 / 4
GEN = r'''#!/bin/sh
peer=$1; kbps=$2
chunk=$(( kbps * 125 / 10 ))
[ $chunk -lt 4096 ] && chunk=4096
[ $chunk -gt 262144 ] && chunk=262144
cs() { read up rest < /proc/uptime; echo ${up%%.*}${up##*.}; }
while :; do
  {
    start=$(cs); sent=0
    while :; do
      now=$(cs)
      allowed=$(( (now - start) * kbps * 5 / 4 ))
      lag=$(( allowed - sent - kbps * 125 ))
      [ $lag -gt 0 ] && sent=$(( sent + lag ))
      if [ $sent -lt $allowed ]; then
        dd if=/dev/zero bs=$chunk count=1 2>/dev/null || exit 0
        sent=$(( sent + chunk ))
      else
        usleep 20000
      fi
    done
  } | nc %(peer)s %(sink)d
  sleep 1
done
'''.replace('%(peer)s', '$peer').replace('%(sink)d', str(SINK_PORT))


CGI_NETSTAT = r'''#!/bin/sh
echo "Content-Type: text/plain"
echo
cat /proc/net/snmp /proc/net/dev /proc/net/softnet_stat
echo "txqueuelen $(cat /sys/class/net/eth0/tx_queue_len)"
cat /proc/net/stat/arp_cache /proc/net/arp
tc qdisc show dev eth0 2>&1
echo "cmdline $(cat /proc/cmdline)"
grep -H . /sys/module/virtio_net/parameters/* 2>/dev/null
'''


def files():
    """{path in the initramfs: (mode, text)} of the guest's scripts."""
    return {
        'init': (0o755, INIT),
        'bin/na-sink': (0o755, SINK),
        'bin/na-gen': (0o755, GEN),
        'bin/na-lib': (0o644, LIB),
        'www/cgi-bin/req': (0o755, CGI_REQ),
        'www/cgi-bin/count': (0o755, CGI_COUNT),
        'www/cgi-bin/peek': (0o755, CGI_PEEK),
        'www/cgi-bin/traffic': (0o755, CGI_TRAFFIC),
        'www/cgi-bin/ping': (0o755, CGI_PING),
        'www/cgi-bin/netstat': (0o755, CGI_NETSTAT),
        'www/index.html': (0o644, 'netaware guest\n'),
    }
