"""Control API of the replica agent: one JSON line over a UNIX socket.

Request ``{"op": "status"}`` or ``{"op": "switchover"}``; the reply is one
JSON line with ``ok``. :class:`ControlServer` is the agent's side,
:func:`control_call` the client's (the CLI and the tests).
"""

import json
import logging
import os
import socket
import threading

from nova_netaware.replica.errors import AgentError

LOG = logging.getLogger(__name__)


class ControlServer:
    """Serves ``ops`` (name -> callable returning the reply dict) on the
    UNIX socket ``path`` (mode 0600), one thread per connection."""

    def __init__(self, path, ops):
        self.path = path
        self.ops = ops
        self._sock = None
        self._stop = threading.Event()

    def start(self):
        path = self.path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        os.chmod(path, 0o600)
        s.listen(8)
        self._sock = s
        threading.Thread(target=self._loop, daemon=True,
                         name='control').start()

    def stop(self):
        self._stop.set()
        if self._sock:
            try:
                self._sock.close()
                os.unlink(self.path)
            except OSError:
                pass

    def _loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,),
                             daemon=True).start()

    def _conn(self, conn):
        with conn:
            try:
                req = json.loads(conn.makefile('rb').readline(65536))
                op = req['op']
            except (ValueError, KeyError, TypeError, OSError):
                res = {'ok': False, 'error': 'bad request: expected a JSON '
                                             'line with "op"'}
            else:
                res = self._dispatch(op)
            try:
                conn.sendall(json.dumps(res, default=str).encode() + b'\n')
            except OSError:
                pass

    def _dispatch(self, op):
        try:
            fn = self.ops.get(op) if isinstance(op, str) else None
            if fn is None:
                return {'ok': False, 'error': 'unknown op %r (%s)'
                        % (op, ', '.join(self.ops))}
            return fn()
        except Exception as e:
            LOG.exception('control op %s failed', op)
            return {'ok': False, 'error': str(e)}


def control_call(path, op, timeout=60.0):
    """Client side of the control API (used by the CLI and tests)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(json.dumps({'op': op}).encode() + b'\n')
        line = s.makefile('rb').readline()
    except OSError as e:
        raise AgentError('agent control socket %s: %s' % (path, e))
    finally:
        s.close()
    if not line:
        raise AgentError('agent closed the control connection')
    return json.loads(line)
