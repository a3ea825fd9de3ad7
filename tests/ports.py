"""Ports for the tests' own servers, outside the kernel's ephemeral range.

``bind(('127.0.0.1', 0))`` hands out an ephemeral port. Between that probe
and the server's own ``bind``, any outgoing connection on the machine (a
Prometheus scrape, an HTTP client of another test) may be given the same
port as its local end, and the server then fails with ``EADDRINUSE``. CI
saw exactly that: a flow meter could not listen on 58888. Ports below
``net.ipv4.ip_local_port_range`` are never handed out to connections, so a
port found free there stays free until a server of ours takes it.

The range also stays clear of the local stack's fixed ports (25000 up,
:mod:`nova_netaware.deploy.localstack.settings`) and of RabbitMQ's 25672.
"""

import random
import socket

#: the window the ports are drawn from; shrunk below the ephemeral range if
#: a machine starts that range lower
LOW, HIGH = 11000, 19999
_given = set()


def _ephemeral_low():
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port):
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_ports(n=1):
    """The first of ``n`` consecutive ports, all bindable now on 127.0.0.1,
    below the ephemeral range and not given to an earlier caller in this
    process."""
    high = min(HIGH, _ephemeral_low() - 1) - n
    if high <= LOW:
        raise RuntimeError('no room below the ephemeral port range')
    for _ in range(500):
        base = random.randint(LOW, high)
        ports = range(base, base + n)
        if _given.isdisjoint(ports) and all(_bindable(p) for p in ports):
            _given.update(ports)
            return base
    raise RuntimeError('no %d free ports in a row in %d-%d' % (n, LOW, high))


def free_port():
    """One port for a server to listen on (see :func:`free_ports`)."""
    return free_ports(1)
