"""Authenticated peer channel between the two agents of a replica pair.

Frame on the wire (TCP; one request, then any follow-up frames of the same
exchange, then one reply, per connection)::

    b'NNR1' | u32 header length | u32 body length | 32-byte HMAC | header | body

``header`` is UTF-8 JSON with ``type``, ``sender``, ``nonce`` (random, 128
bit), ``seq`` (per-process counter), ``ts`` (wall clock) and, on replies
and follow-ups, ``reply_to`` (the request's nonce). The HMAC-SHA256 (key
from config) covers the two lengths, the header and the body, so any
tampered byte is detected.

Replay protection: a message whose timestamp is outside the replay window is
rejected, and so is any nonce seen within the window (the nonce memory is
bounded by the window). Rejected messages are logged and counted by reason.
"""

import collections
import hashlib
import hmac
import json
import logging
import os
import socket
import struct
import threading
import time

from nova_netaware.replica.errors import AuthError, PeerError

LOG = logging.getLogger(__name__)

MAGIC = b'NNR1'
_HDR = struct.Struct('!4sII32s')
MAX_HEADER = 64 * 1024
MAX_BODY = 1 << 30


def _recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if not k:
            raise PeerError('connection closed after %d of %d bytes'
                            % (got, n))
        got += k
    return bytes(buf) if n < 65536 else buf  # large bodies: no extra copy


class Codec:
    """Signs and verifies frames; remembers nonces to refuse replays."""

    def __init__(self, key, sender, window=60.0):
        if isinstance(key, str):
            key = key.encode()
        if not key or len(key) < 16:
            raise ValueError('peer_hmac_key must be set and at least 16 '
                             'characters long')
        if not sender:
            raise ValueError('sender id must not be empty')
        self._key = key
        self.sender = sender
        self.window = float(window)
        self._seq = 0
        self._seen = collections.OrderedDict()  # nonce -> expiry
        self._lock = threading.RLock()
        self.rejected = collections.Counter()

    def encode(self, mtype, fields=None, body=b'', reply_to=None):
        return b''.join(self.encode_parts(mtype, fields, body, reply_to)[0])

    def encode_parts(self, mtype, fields=None, body=b'', reply_to=None):
        """The frame as (prefix, header, body) without copying the body,
        and the nonce."""
        with self._lock:
            self._seq += 1
            seq = self._seq
        hdr = dict(fields or {})
        hdr.update(type=mtype, sender=self.sender, seq=seq,
                   nonce=os.urandom(16).hex(), ts=time.time())
        if reply_to:
            hdr['reply_to'] = reply_to
        hb = json.dumps(hdr, sort_keys=True).encode()
        lens = struct.pack('!II', len(hb), len(body))
        mac = hmac.new(self._key, lens + hb, hashlib.sha256)
        mac.update(body)
        prefix = _HDR.pack(MAGIC, len(hb), len(body), mac.digest())
        return (prefix, hb, body), hdr['nonce']

    def read_frame(self, sock):
        """Read one raw frame: (lens, mac, header bytes, body)."""
        magic, hl, bl, mac = _HDR.unpack(_recv_exact(sock, _HDR.size))
        if magic != MAGIC:
            raise AuthError('bad-magic', repr(magic))
        if hl > MAX_HEADER or bl > MAX_BODY:
            raise AuthError('oversize', 'header %d body %d' % (hl, bl))
        hb = _recv_exact(sock, hl)
        body = _recv_exact(sock, bl) if bl else b''
        return hl, bl, mac, hb, body

    def verify(self, frame, expect_reply_to=None):
        hl, bl, mac, hb, body = frame
        calc = hmac.new(self._key, struct.pack('!II', hl, bl) + hb,
                        hashlib.sha256)
        calc.update(body)
        if not hmac.compare_digest(calc.digest(), mac):
            return self._reject('bad-mac', 'HMAC mismatch (wrong key or '
                                           'tampered message)')
        try:
            hdr = json.loads(hb)
            nonce, ts = str(hdr['nonce']), float(hdr['ts'])
            hdr['type'], hdr['sender']
        except (ValueError, KeyError, TypeError) as e:
            return self._reject('malformed', str(e))
        now = time.time()
        if abs(now - ts) > self.window:
            return self._reject('stale', 'timestamp %.3f is %.1fs away from '
                                         'now' % (ts, now - ts))
        with self._lock:
            for n, exp in list(self._seen.items()):
                if exp > now:
                    break
                del self._seen[n]
            if nonce in self._seen:
                return self._reject('replayed', 'nonce %s from %s already '
                                                'seen' % (nonce,
                                                          hdr['sender']))
            self._seen[nonce] = now + self.window
        if hdr.get('sender') == self.sender:
            return self._reject('reflected', 'message carries our own '
                                             'sender id')
        if expect_reply_to is not None and \
                hdr.get('reply_to') != expect_reply_to:
            return self._reject('wrong-reply', 'reply does not answer our '
                                               'request')
        return hdr, body

    def _reject(self, reason, detail):
        with self._lock:
            self.rejected[reason] += 1
        LOG.warning('peer message rejected (%s): %s', reason, detail)
        raise AuthError(reason, detail)


class Channel:
    """The server's side of one exchange: the request's follow-up frames.

    A follow-up is a signed frame on the request's connection that answers
    the request's nonce (``reply_to``); anything else is refused as a reply
    to another exchange would be."""

    def __init__(self, codec, conn, nonce):
        self.codec, self.conn, self.nonce = codec, conn, nonce

    def next(self, timeout):
        """The next follow-up frame as (header, body); PeerError if none
        comes within ``timeout`` seconds or the connection closes."""
        try:
            self.conn.settimeout(timeout)
            frame = self.codec.read_frame(self.conn)
        except OSError as e:
            raise PeerError('no follow-up from the peer within %.1fs: %s'
                            % (timeout, e))
        return self.codec.verify(frame, expect_reply_to=self.nonce)


class Conversation:
    """The requester's side of one exchange: :meth:`send` the request,
    then any follow-ups (each answers the request's nonce), then read the
    :meth:`reply`. Every socket operation waits at most ``timeout`` s."""

    def __init__(self, codec, host, port, timeout=3.0):
        self.codec, self.where = codec, '%s:%s' % (host, port)
        self.nonce = None
        try:
            self.sock = socket.create_connection((host, port),
                                                 timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            raise PeerError('peer %s unreachable: %s' % (self.where, e))

    def send(self, mtype, fields=None, body=b''):
        (prefix, hb, body), nonce = self.codec.encode_parts(
            mtype, fields, body, reply_to=self.nonce)
        try:
            self.sock.sendall(prefix + hb)
            if body:
                self.sock.sendall(body)
        except OSError as e:
            raise PeerError('peer %s: sending %s failed: %s'
                            % (self.where, mtype, e))
        if self.nonce is None:
            self.nonce = nonce

    def reply(self):
        try:
            frame = self.codec.read_frame(self.sock)
        except OSError as e:
            raise PeerError('peer %s: no reply: %s' % (self.where, e))
        return self.codec.verify(frame, expect_reply_to=self.nonce)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PeerServer:
    """Threaded TCP listener; ``handler(header, body, channel) -> (fields,
    body)``, where ``channel`` (a :class:`Channel`) reads the request's
    follow-up frames."""

    def __init__(self, codec, host, port, handler):
        self.codec = codec
        self.handler = handler
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as e:
            raise PeerError('cannot listen on %s:%s: %s' % (host, port, e))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name='peer-server')

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    def _serve(self):
        while not self._stop:
            try:
                conn, addr = self._sock.accept()
            except OSError:
                if self._stop:
                    return
                continue
            threading.Thread(target=self._handle, args=(conn, addr),
                             daemon=True).start()

    def _handle(self, conn, addr):
        with conn:
            conn.settimeout(60)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                frame = self.codec.read_frame(conn)
                hdr, body = self.codec.verify(frame)
            except AuthError as e:
                LOG.warning('rejected peer message from %s: %s', addr, e)
                return
            except (PeerError, OSError) as e:
                LOG.warning('bad peer connection from %s: %s', addr, e)
                return
            try:
                fields, rbody = self.handler(
                    hdr, body, Channel(self.codec, conn, hdr['nonce']))
            except Exception as e:  # reported to the peer, never swallowed
                LOG.exception('peer request %s failed', hdr.get('type'))
                fields, rbody = {'ok': False, 'error': str(e)}, b''
            try:
                conn.settimeout(60)
                conn.sendall(self.codec.encode(
                    'reply', fields, rbody, reply_to=hdr['nonce']))
            except OSError as e:
                LOG.warning('could not reply to %s: %s', addr, e)


def call(codec, host, port, mtype, fields=None, body=b'', timeout=3.0):
    """Send one authenticated request and return the verified reply."""
    with Conversation(codec, host, port, timeout) as conv:
        conv.send(mtype, fields, body)
        return conv.reply()
