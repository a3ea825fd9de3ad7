"""Peer channel authentication: wrong key, tampered and replayed messages
are rejected and logged; a valid message is accepted."""

import socket
import struct

import pytest

from nova_netaware.replica import peer

KEY = 'k' * 32


@pytest.fixture
def server():
    calls = []
    codec = peer.Codec(KEY, 'server')
    srv = peer.PeerServer(codec, '127.0.0.1', 0,
                          lambda h, b, ch: (calls.append((h, b)) or
                                        ({'ok': True, 'echo': len(b)}, b'')))
    srv.start()
    yield srv, codec, calls
    srv.stop()


def _send_raw(port, frame):
    with socket.create_connection(('127.0.0.1', port), timeout=3) as s:
        s.sendall(frame)
        s.shutdown(socket.SHUT_WR)
        return s.recv(65536)


def test_valid_message_accepted(server):
    srv, codec, calls = server
    client = peer.Codec(KEY, 'client')
    hdr, body = peer.call(client, '127.0.0.1', srv.port, 'ping', {'x': 1},
                          b'payload')
    assert hdr['ok'] and hdr['echo'] == 7 and hdr['sender'] == 'server'
    assert len(calls) == 1 and calls[0][1] == b'payload'


def test_wrong_key_rejected(server, caplog):
    srv, codec, calls = server
    bad = peer.Codec('x' * 32, 'client')
    with pytest.raises(peer.PeerError):
        peer.call(bad, '127.0.0.1', srv.port, 'ping', timeout=2)
    assert calls == []
    assert codec.rejected['bad-mac'] == 1
    assert 'rejected' in caplog.text


def test_tampered_message_rejected(server):
    srv, codec, calls = server
    client = peer.Codec(KEY, 'client')
    frame = bytearray(client.encode('handoff', {'epoch': 3}, b'state'))
    frame[-1] ^= 0x01  # flip one bit of the body
    assert _send_raw(srv.port, bytes(frame)) == b''
    frame2 = bytearray(client.encode('handoff', {'epoch': 3}, b'state'))
    hl = struct.unpack('!I', frame2[4:8])[0]
    hdr_at = 44
    assert b'"epoch": 3' in frame2[hdr_at:hdr_at + hl]
    i = frame2.index(b'"epoch": 3') + len(b'"epoch": ')
    frame2[i] = ord('9')  # tamper with the epoch
    assert _send_raw(srv.port, bytes(frame2)) == b''
    assert calls == []
    assert codec.rejected['bad-mac'] == 2


def test_replayed_message_rejected(server):
    srv, codec, calls = server
    client = peer.Codec(KEY, 'client')
    frame = client.encode('ping', {}, b'')
    assert _send_raw(srv.port, frame) != b''  # first delivery accepted
    assert _send_raw(srv.port, frame) == b''  # captured and replayed
    assert len(calls) == 1
    assert codec.rejected['replayed'] == 1


def test_stale_and_reflected_and_wrong_reply_rejected(server):
    srv, codec, calls = server
    import time
    client = peer.Codec(KEY, 'client', window=5)
    frame = client.encode('ping')
    # a message whose timestamp is outside the window
    old = peer.Codec(KEY, 'client')
    real_time = time.time
    try:
        time.time = lambda: real_time() - 3600
        stale = old.encode('ping')
    finally:
        time.time = real_time
    assert _send_raw(srv.port, stale) == b''
    assert codec.rejected['stale'] == 1
    mirror = peer.Codec(KEY, 'server').encode('ping')
    assert _send_raw(srv.port, mirror) == b''
    assert codec.rejected['reflected'] == 1
    # a valid reply that answers another request is refused by the client
    reply = peer.Codec(KEY, 'server').encode('reply', {}, reply_to='other')
    a, b = socket.socketpair()
    with a, b:
        a.sendall(reply)
        with pytest.raises(peer.AuthError) as e:
            client.verify(client.read_frame(b), expect_reply_to='mine')
    assert e.value.reason == 'wrong-reply'
    assert _send_raw(srv.port, frame) != b''


def test_short_or_missing_key_is_a_clear_error():
    for k in ('', None, 'short'):
        with pytest.raises(ValueError, match='at least 16'):
            peer.Codec(k, 'a')


@pytest.mark.netns
def test_running_agent_rejects_forged_peer_messages(pair):
    """Against the real agent over the inter-cloud link: wrong key,
    tampered and replayed request_handoff messages never trigger a
    switchover; each is counted by reason."""
    from nova_netaware.replica import lab as lab_mod
    lab = pair

    def send(frame):
        s = lab_mod.ns_socket(lab.ns('hv', 'b'), socket.AF_INET,
                              socket.SOCK_STREAM)
        with s:
            s.settimeout(5)
            s.connect((lab_mod.LINK_IP['a'], lab_mod.PEER_PORT))
            s.sendall(frame)
            s.shutdown(socket.SHUT_WR)
            return s.recv(65536)

    wrong = peer.Codec('w' * 32, 'agent-b').encode('request_handoff')
    assert send(wrong) == b''
    good = peer.Codec(lab.key, 'agent-b')
    tampered = bytearray(good.encode('request_handoff', {'reason': 'x'}))
    tampered[-3] ^= 0x20
    assert send(bytes(tampered)) == b''
    ping = good.encode('ping')
    assert send(ping) != b''
    assert send(ping) == b''  # replay
    st = lab.status('a')
    assert st['state'] == 'ACTIVE' and st['epoch'] == 1
    assert st['peer_rejected'] == {'bad-mac': 2, 'replayed': 1}
    with open(lab.dir + '/agent-a.log') as f:
        log = f.read()
    assert log.count('peer message rejected') == 3


def test_follow_up_frames_belong_to_their_request():
    """A follow-up frame on the request's connection reaches the handler
    only if it is signed and answers that request; one answering another
    exchange is refused (a captured "paused" cannot be replayed into
    another switchover)."""
    codec = peer.Codec(KEY, 'server')
    got = []

    def handler(h, b, ch):
        try:
            fh, fb = ch.next(2.0)
            got.append((fh['type'], fb))
            return {'ok': True}, b''
        except peer.PeerError as e:
            got.append(('error', type(e).__name__))
            return {'ok': False, 'error': str(e)}, b''
    srv = peer.PeerServer(codec, '127.0.0.1', 0, handler)
    srv.start()
    try:
        client = peer.Codec(KEY, 'client')
        with peer.Conversation(client, '127.0.0.1', srv.port) as conv:
            conv.send('takeover', {'epoch': 1}, b'state')
            conv.send('paused', {}, b'more')
            hdr, _ = conv.reply()
        assert hdr['ok'] and got == [('paused', b'more')]
        # a follow-up signed by the right key but for another request
        other = client.encode('paused', {}, reply_to='f' * 32)
        with socket.create_connection(('127.0.0.1', srv.port), 3) as s:
            s.sendall(client.encode('takeover', {'epoch': 2}, b'x') + other)
            frame = client.read_frame(s)
        hdr, _ = client.verify(frame)
        assert not hdr['ok'] and got[-1] == ('error', 'AuthError')
        assert codec.rejected['wrong-reply'] == 1
        # no follow-up at all: the wait ends with a clear error
        with peer.Conversation(client, '127.0.0.1', srv.port) as conv:
            conv.send('takeover', {'epoch': 3}, b'x')
            hdr, _ = conv.reply()
        assert not hdr['ok'] and 'no follow-up' in hdr['error'], hdr
    finally:
        srv.stop()
