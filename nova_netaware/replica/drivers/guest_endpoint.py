"""State driver ``guest_endpoint``: talks to the state endpoint inside the
guest (protocol in :mod:`nova_netaware.replica.guest`).

One TCP connection is kept open between requests, also while the copy is
paused: the import into a just-resumed copy is on the switchover's critical
path, and a new connection costs a handshake into the guest first (about 2
ms more into a just-resumed QEMU TCG guest, measured in docs/replica.md).
An endpoint that closes after each request (the reference guest does) is
detected before the next request and a new connection is opened. If a kept
connection fails before any reply byte (the guest rebooted, the endpoint
restarted), the request is sent once more on a new connection; export and
import are both safe to repeat (an import at the same epoch is allowed).
A timeout is never retried.
"""

import json
import select
import socket
import threading
import time

from nova_netaware.replica.drivers import (ChecksumMismatch, DriverError,
                                           StateBlob, StateDriver)


class _Closed(Exception):
    """The kept connection was closed before the reply began."""


class GuestEndpointStateDriver(StateDriver):

    def __init__(self, conf):
        super().__init__(conf)
        c = conf.replica
        if not c.guest_endpoint_host:
            raise DriverError('[replica] guest_endpoint_host is required by '
                              'the guest_endpoint state driver')
        self.addr = (c.guest_endpoint_host, c.guest_endpoint_port)
        self.timeout = c.state_timeout
        self._sock = self._rf = None
        self._lock = threading.Lock()
        self.reconnects = 0
        self.last_import = None

    # ------------------------------------------------------------ connection
    def _open(self):
        s = socket.create_connection(self.addr, timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._rf = s, s.makefile('rb')

    def _drop(self):
        for x in (self._rf, self._sock):
            if x is not None:
                try:
                    x.close()
                except OSError:
                    pass
        self._sock = self._rf = None

    def _usable(self):
        """The kept connection is open and idle (the endpoint neither
        closed it nor sent anything unasked)."""
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return False
        # readable while idle: closed (EOF), reset, or bytes nobody asked
        # for; none of them can carry the next request
        return not readable

    def close(self):
        with self._lock:
            self._drop()

    # ------------------------------------------------------------ protocol
    def _exchange(self, req, body):
        if self._sock is None:
            self._open()
        # one write: with TCP_NODELAY, a separate body would be a second
        # segment and a second wake-up of the guest's endpoint (each costs
        # milliseconds under QEMU TCG)
        try:
            self._sock.sendall(json.dumps(req).encode() + b'\n' + body)
            line = self._rf.readline(65536)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise _Closed(str(e))
        if not line:
            raise _Closed('closed the connection')
        if not line.endswith(b'\n'):
            raise DriverError('guest endpoint %s:%s: reply line cut short'
                              % self.addr)
        hdr = json.loads(line)
        data = b''
        if hdr.get('ok') and req['op'] == 'export':
            data = self._rf.read(int(hdr['size']))
            if len(data) != int(hdr['size']):
                raise DriverError('short state export: %d of %d bytes'
                                  % (len(data), hdr['size']))
        return hdr, data

    def _call(self, req, body=b''):
        with self._lock:
            if self._sock is not None and not self._usable():
                self._drop()
            reused = self._sock is not None
            try:
                try:
                    hdr, data = self._exchange(req, body)
                except _Closed:
                    self._drop()
                    if not reused:
                        raise
                    self.reconnects += 1
                    hdr, data = self._exchange(req, body)
            except _Closed as e:
                self._drop()
                raise DriverError('guest endpoint %s:%s %s'
                                  % (self.addr + (e,)))
            except (OSError, ValueError, KeyError, TypeError,
                    DriverError) as e:
                self._drop()  # a timeout or a bad reply: start afresh
                if isinstance(e, DriverError):
                    raise
                raise DriverError('guest endpoint %s:%s: %s'
                                  % (self.addr + (e,)))
        if not hdr.get('ok'):
            raise DriverError('guest endpoint refused %s: %s'
                              % (req.get('op'), hdr.get('error')))
        return hdr, data

    def export_state(self, copy):
        hdr, data = self._call({'op': 'export'})
        meta = {'last_served_ns': hdr.get('last_served_ns', 0)}
        # verified where it lands (the receiving agent and the guest that
        # imports it); the peer channel's HMAC protects the transfer
        return StateBlob(data, hdr['sha256'], meta, verify=False)

    def import_state(self, copy, blob, epoch):
        hdr, _ = self._call({'op': 'import', 'size': len(blob.data),
                             'sha256': blob.sha256, 'epoch': int(epoch)},
                            blob.data)
        # for the switchover's timeline: the guest endpoint's own time for
        # the request and when its reply was read (CLOCK_MONOTONIC)
        self.last_import = {'epoch': int(epoch),
                            'server_us': hdr.get('server_us'),
                            'replied': time.monotonic()}
        if hdr.get('sha256') != blob.sha256:
            raise ChecksumMismatch('copy %s restored state %s, exported '
                                   'state was %s' % (copy, hdr.get('sha256'),
                                                     blob.sha256))
        return hdr['sha256']

    def stats(self):
        return self._call({'op': 'stats'})[0]
