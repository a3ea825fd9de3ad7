"""Monotonic fencing epoch kept in a tooz coordination backend.

The epoch of a service is the highest ``N`` among the tooz groups named
``nnr.<service>.epoch.<N>.<holder>``. A new epoch is claimed with a
compare-and-set under a tooz lock: it succeeds only if the current epoch is
the one the claimer expects. A copy is unpaused only while the lock is held
and the agent holds the current epoch (:meth:`EpochFence.run_if_current`), so
a stale agent can never unpause its copy.

The same code runs on every tooz driver that supports groups and locks; the
embedded default is ``file://`` (a directory both agents can reach) and
``redis://`` serves agents on different hosts.
"""

import contextlib
import logging
import re
import threading
import uuid

from tooz import coordination

from nova_netaware.replica.errors import FenceError, StaleEpoch

LOG = logging.getLogger(__name__)

_NAME_RE = re.compile(r'^[A-Za-z0-9_-]{1,64}$')


class EpochFence:

    KEEP = 4  # newest epoch groups kept (diagnosis); older ones removed

    def __init__(self, url, service, member, lock_timeout=10.0):
        for what, v in (('service', service), ('member', member)):
            if not v or not _NAME_RE.match(v):
                raise FenceError('%s name %r must match %s'
                                 % (what, v, _NAME_RE.pattern))
        if not url or '://' not in url:
            raise FenceError('coordination_url %r is not a tooz URL (for '
                             'example file:///var/lib/x or '
                             'redis://127.0.0.1:6379)' % (url,))
        self.service = service
        self.member = member
        self.lock_timeout = lock_timeout
        self._prefix = 'nnr.%s.epoch.' % service
        if 'executor=' not in url:
            # every call is waited for at once: run it inline rather than
            # through tooz's one-thread pool (two thread switches less per
            # backend call, on the switchover's critical path)
            url += ('&' if '?' in url else '?') + 'executor=synchronous'
        try:
            self._coord = coordination.get_coordinator(
                url, ('%s-%s' % (member, uuid.uuid4().hex[:8])).encode())
            self._coord.start(start_heart=False)
        except Exception as e:
            raise FenceError('cannot start coordination backend %s: %s'
                             % (url, e))
        self._lock = self._coord.get_lock(
            ('nnr-%s-epoch-lock' % service).encode())

    def close(self, wait=False):
        """Stop the coordinator. tooz's stop() waits about a second for its
        executor, so by default it runs in the background."""
        def stop():
            with contextlib.suppress(Exception):
                self._coord.stop()
        if wait:
            stop()
        else:
            threading.Thread(target=stop, daemon=True).start()

    def _epochs(self):
        out = []
        for g in self._coord.get_groups().get():
            g = g.decode() if isinstance(g, bytes) else g
            if not g.startswith(self._prefix):
                continue
            rest = g[len(self._prefix):]
            num, _, holder = rest.partition('.')
            if num.isdigit():
                out.append((int(num), holder, g))
        out.sort()
        return out

    def current(self):
        """(epoch, holder); (0, None) when no epoch was ever claimed."""
        eps = self._epochs()
        if not eps:
            return 0, None
        return eps[-1][0], eps[-1][1]

    @contextlib.contextmanager
    def locked(self):
        if not self._lock.acquire(blocking=self.lock_timeout):
            raise FenceError('epoch lock of %s not acquired within %.1fs'
                             % (self.service, self.lock_timeout))
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                self._lock.release()

    def claim(self, expected, holder=None, then=None):
        """Compare-and-set: move the epoch from ``expected`` to
        ``expected + 1`` held by ``holder`` (default: this agent).

        ``then()``, if given, runs under the same lock right after the claim
        (e.g. the unpause), so no other claim can come in between.
        Raises :class:`StaleEpoch` if the current epoch is not
        ``expected``. Returns the new epoch.
        """
        holder = holder or self.member
        if not _NAME_RE.match(holder):
            raise FenceError('holder name %r is invalid' % (holder,))
        with self.locked():
            cur = self.current()
            if cur[0] != expected:
                raise StaleEpoch(expected, cur)
            new = expected + 1
            try:
                self._coord.create_group(
                    ('%s%d.%s' % (self._prefix, new, holder)).encode()).get()
            except coordination.GroupAlreadyExist:
                raise StaleEpoch(expected, self.current())
            self._gc_due = True
            if then is not None:
                then()
        LOG.info('epoch of %s moved %d -> %d (holder %s)',
                 self.service, expected, new, holder)
        return new

    def run_if_current(self, epoch, fn):
        """Run ``fn()`` only if ``epoch`` is current and held by us, with the
        lock held so that no other claim can interleave."""
        with self.locked():
            cur = self.current()
            if cur != (epoch, self.member):
                raise StaleEpoch(epoch, cur)
            return fn()

    _gc_due = False

    def gc(self):
        """Forget old epoch groups (off the switchover's critical path)."""
        if not self._gc_due:
            return
        self._gc_due = False
        with self.locked():
            self._gc()

    def _gc(self):
        eps = self._epochs()
        for num, holder, g in eps[:-self.KEEP]:
            with contextlib.suppress(Exception):
                self._coord.delete_group(g.encode()).get()

    def destroy_all(self):
        """Remove every epoch group of the service (tests, decommission)."""
        with self.locked():
            for num, holder, g in self._epochs():
                with contextlib.suppress(Exception):
                    self._coord.delete_group(g.encode()).get()
