"""Addresses of the test bed and the helpers that work inside a network
namespace: run a command, open a socket, call a guest's endpoint."""

import ctypes
import json
import os
import socket
import subprocess
import threading

from nova_netaware.replica.errors import LabError

CLONE_NEWNET = 0x40000000
NET = '10.201'
VM_IP = NET + '.100.2'
HV_VM_IP = NET + '.100.1'
CLIENT_NET = {'a': NET + '.1', 'b': NET + '.2'}
LINK_IP = {'a': NET + '.250.1', 'b': NET + '.250.2'}
DATA_PORT = 7000
CTL_PORT = 7001
PEER_PORT = 9797


def sh(*cmd, check=True, timeout=30):
    """Run ``cmd``; raise :class:`LabError` with its stderr if it fails
    (unless ``check`` is false). Returns the CompletedProcess."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode:
        raise LabError('%s failed (%d): %s' % (' '.join(cmd), p.returncode,
                                               p.stderr.strip()))
    return p


def is_root():
    return os.geteuid() == 0


def ns_call(ns, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` run in a helper thread that first joins
    network namespace ``ns`` (setns affects that thread only); returns its
    result or raises its exception. Sockets it creates stay in ``ns``."""
    box = {}

    def run():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open('/run/netns/%s' % ns, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), 'setns %s' % ns)
            finally:
                os.close(fd)
            box['r'] = fn(*args, **kwargs)
        except BaseException as e:
            box['e'] = e
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if 'e' in box:
        raise box['e']
    return box['r']


def ns_socket(ns, family=socket.AF_INET, stype=socket.SOCK_DGRAM, proto=0):
    """Create a socket inside network namespace ``ns``."""
    return ns_call(ns, socket.socket, family, stype, proto)


class InNetns:
    """``obj``'s methods, each called from inside network namespace
    ``ns`` (:func:`ns_call`); other attributes are read as they are."""

    def __init__(self, ns, obj):
        self._ns = ns
        self._obj = obj

    def __getattr__(self, name):
        attr = getattr(self._obj, name)
        if not callable(attr):
            return attr
        return lambda *a, **kw: ns_call(self._ns, attr, *a, **kw)


def guest_call(ns, req, timeout=10.0):
    """One request to the state endpoint of the guest in namespace ``ns``."""
    s = ns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    with s:
        s.settimeout(timeout)
        s.connect(('127.0.0.1', CTL_PORT))
        s.sendall(json.dumps(req).encode() + b'\n')
        return json.loads(s.makefile('rb').readline())


def remove_stale(prefix_len=5):
    """Delete namespaces left by a crashed lab run (name r????-xx?)."""
    out = sh('ip', 'netns', 'list', check=False).stdout.split('\n')
    for line in out:
        n = line.split(' ')[0]
        if len(n) == prefix_len + 4 and n.startswith('r') and \
                n[prefix_len] == '-' and n[prefix_len + 1:-1] in ('hv', 'vm',
                                                                  'cl'):
            sh('ip', 'netns', 'del', n, check=False)
