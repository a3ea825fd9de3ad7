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
* ``GET /cgi-bin/ping?peer=IP``: three ICMP echoes from the guest;
* ``GET /cgi-bin/traffic?peer=IP&kbps=R`` (or ``mbps=R``): send R to the
  peer's sink (TCP port 5001) from now on; rate 0 stops that flow;
  ``GET /cgi-bin/traffic`` lists the running flows;
* a sink on TCP port 5001 that discards what it receives.

The generator paces itself on /proc/uptime (centiseconds): it sends
chunks of zeros through ``nc`` as long as the bytes sent stay below
``elapsed * rate``, and never builds more than one second of backlog (a
shaped or congested path makes it send less, not burst later).
"""

SINK_PORT = 5001
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
for m in $(cat /etc/modules.order); do insmod /lib/modules/$m || echo "init: insmod $m failed"; done
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
echo 0 > /tmp/counter
mkdir -p /tmp/flows
httpd -p %(http)d -h /www
nc -ll -p %(sink)d -e /bin/na-sink &
echo "netaware-guest: up, eth0 $mac $addr/$prefix"
# answer on the serial console too (debugging)
while :; do setsid cttyhack sh -l 2>/dev/null || sleep 3600; done
''' % {'http': HTTP_PORT, 'sink': SINK_PORT}

SINK = '''#!/bin/sh
exec cat > /dev/null
'''

CGI_COUNT = '''#!/bin/sh
echo "Content-Type: text/plain"
echo
exec 9>/tmp/counter.lock
flock 9
n=$(cat /tmp/counter)
n=$((n+1))
echo $n > /tmp/counter
echo "count $n host $(hostname) ip $(cat /run/ip)"
'''

CGI_PEEK = '''#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "count $(cat /tmp/counter) host $(hostname) ip $(cat /run/ip)"
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


def files():
    """{path in the initramfs: (mode, text)} of the guest's scripts."""
    return {
        'init': (0o755, INIT),
        'bin/na-sink': (0o755, SINK),
        'bin/na-gen': (0o755, GEN),
        'www/cgi-bin/count': (0o755, CGI_COUNT),
        'www/cgi-bin/peek': (0o755, CGI_PEEK),
        'www/cgi-bin/traffic': (0o755, CGI_TRAFFIC),
        'www/cgi-bin/ping': (0o755, CGI_PING),
        'www/index.html': (0o644, 'netaware guest\n'),
    }
