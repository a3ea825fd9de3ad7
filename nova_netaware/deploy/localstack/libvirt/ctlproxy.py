"""Reach the control plane (on 127.0.0.1 of the root namespace) from the
hosts' namespaces, unchanged: the same URLs (``http://127.0.0.1:<port>``
in the catalog, ``rabbit://...@127.0.0.1:5672``) work inside them.

One process, started in the root namespace, opens a listening socket on
127.0.0.1:<port> *inside* each host namespace (``setns(2)`` to the
namespace, ``socket()``/``bind()``/``listen()``, back to the root
namespace: a socket stays in the namespace it was made in) and relays
every accepted connection to 127.0.0.1:<port> in the root namespace. So
the services keep listening on loopback only and the computes need no
address on a management network.

Usage: ``python -m nova_netaware.deploy.localstack.libvirt.ctlproxy --ns NS ... --port
P ...`` (the lab starts it and records its pid).
"""

import argparse
import asyncio
import ctypes
import os
import socket

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listeners(namespaces, ports, host='127.0.0.1'):
    """{(ns, port): listening socket made inside namespace ``ns``}."""
    socks = {}
    root = os.open('/proc/self/ns/net', os.O_RDONLY)
    try:
        for ns in namespaces:
            fd = os.open('/run/netns/' + ns, os.O_RDONLY)
            try:
                setns(fd)
                for port in ports:
                    s = socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((host, port))
                    s.listen(128)
                    s.setblocking(False)
                    socks[(ns, port)] = s
            finally:
                setns(root)
                os.close(fd)
    finally:
        os.close(root)
    return socks


async def _pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


def _handler(port):
    async def handle(reader, writer):
        try:
            up_r, up_w = await asyncio.open_connection('127.0.0.1', port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
    return handle


async def serve(socks):
    servers = [await asyncio.start_server(_handler(port), sock=s)
               for (_, port), s in socks.items()]
    await asyncio.gather(*(srv.serve_forever() for srv in servers))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('--ns', action='append', required=True)
    parser.add_argument('--port', action='append', type=int, required=True)
    args = parser.parse_args(argv)
    socks = listeners(args.ns, args.port)
    print('relaying 127.0.0.1 ports %s into %s' % (
        ', '.join(map(str, args.port)), ', '.join(args.ns)), flush=True)
    asyncio.run(serve(socks))


if __name__ == '__main__':
    main()
