"""The ledger: this plugin's own recent scheduling decisions.

Between the moment nova-scheduler picks a host for a move and the moment a
Nova record (the Migration's ``dest_compute``, or the instance's host)
names it, the move is invisible to every other request. The ledger closes
that window: it holds ``{instance uuid: (host, node, t)}`` for each
decision, *t* being the wall-clock time of the decision, and
:func:`nova_netaware.core.moves.apply` counts each entry at its host until
Nova's records show the move; the runtime then calls :meth:`Ledger.forget`.
An entry also leaves after ``[netaware] ledger_ttl`` seconds. The latest
decision for an instance wins.

How the plugin learns Nova's choice
-----------------------------------
The filter and the weigher only see candidates: Nova sorts them after all
weighers, may pick at random among the best ``host_subset_size``, and tries
to claim each in Placement in turn, moving on to the next one when a claim
fails. The one call that names the host Nova finally chose is
``SchedulerManager._consume_selected_host`` ->
``HostState.consume_from_request(spec_obj)``, made once per instance after
its Placement claim succeeded, on the chosen host's ``HostState`` and with
the request's ``spec_obj`` (whose ``instance_uuid`` Nova sets to the
instance being placed, also in a multi-create). :func:`install_hook` wraps
that method once per process (idempotent) to call :meth:`Ledger.record`:
a host whose claim failed is never consumed, so it is never recorded.

Limits: the hook depends on a Nova method that is not a public API
(checked in Nova 34.0.0); when it is missing, that is logged at WARNING
when the filter or weigher is loaded and the ledger stays empty. A decision abandoned *after* the scheduler returned (the conductor
moving on to an alternate host after a failed ``prep_resize``) stays in
the ledger until the Migration row names the alternate (then the row
counts), the move ends, or the TTL.

Backends (stevedore namespace ``nova_netaware.ledgers``, option
``[netaware] ledger_backend``):

``memory``
    In the scheduler process only (default). With several nova-scheduler
    processes (``[scheduler] workers``, several controllers), decisions of
    the others are not seen until Nova records them.
``tooz``
    Shared by every scheduler process through a tooz coordinator
    (``[netaware] ledger_url``, e.g. ``redis://127.0.0.1:6379``). Each
    process joins the group ``nova-netaware-ledger`` and publishes its own
    recent decisions as its member capabilities (one write per decision);
    a request reads all members' capabilities in one round trip
    (``get_members_with_capabilities``). A process that dies leaves the
    group when its heartbeat expires (tooz ``membership_timeout``). When
    the store cannot be reached the ledger falls back to its in-process
    copy, logs once at WARNING which guarantee is lost, and tries the store
    again every :data:`RETRY_S` seconds, or as soon as a call that timed
    out gets its answer after all (a slow store); a request never waits
    for the store longer than ``[netaware] ledger_timeout`` (default 1 s).
    The process connects when Nova loads the filter or the weigher
    (:meth:`ToozLedger.warm`), and each forked worker process
    (``[scheduler] workers``) connects again right after the fork under a
    member id of its own, so that no request pays for connecting.

    The same store gives the *decision turn* (:meth:`ToozLedger.hold`): a
    tooz lock that one scheduler process at a time holds from a move's
    evaluation until Nova consumes its host, so that evaluations of
    different processes never overlap (see
    :meth:`nova_netaware.scheduler.runtime.NovaRuntime.begin`).
"""

import concurrent.futures
import json
import os
import queue
import socket
import threading
import time
import uuid as uuid_mod
import weakref

from oslo_config import cfg
from oslo_log import log as logging

from nova_netaware import conf  # noqa: F401 - registers [netaware]
from nova_netaware.utils.log import LogOnce

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
NAMESPACE = 'nova_netaware.ledgers'
GROUP = b'nova-netaware-ledger'
#: the tooz lock that gives one scheduler process at a time the turn to
#: decide a move (see :meth:`ToozLedger.hold`)
TURN = GROUP + b'-turn'
#: seconds between attempts to reach an unreachable shared store
RETRY_S = 30.0
LOST = ('nova-netaware ledger: the shared store %s is unreachable (%s); '
        'using this process\'s own ledger. Guarantee lost until it is '
        'back: moves decided by other scheduler processes are not counted '
        'until Nova records them.')

log_once = LogOnce(LOG)
#: every ToozLedger of this process, to start afresh in a forked child
_LEDGERS = weakref.WeakSet()


def _before_fork():
    for led in list(_LEDGERS):
        led._quiesce()


def _after_fork_in_child():
    for led in list(_LEDGERS):
        led._forked()


os.register_at_fork(before=_before_fork,
                    after_in_child=_after_fork_in_child)
#: the worker thread's marker: "every call queued before me is done"
_IDLE = object()


class Ledger(object):
    """In-process ledger (backend ``memory``); the base of the others."""

    def __init__(self, ttl=None, clock=time.time):
        self.ttl = CONF.netaware.ledger_ttl if ttl is None else ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._entries = {}

    def record(self, instance_uuid, host, node=None):
        """Note that *instance_uuid* was just placed on *host* (*node*)."""
        with self._lock:
            self._entries[instance_uuid] = (host, node, self.clock())
            self._expire()

    def entries(self):
        """``{instance_uuid: (host, node, t)}`` younger than the TTL."""
        with self._lock:
            self._expire()
            return dict(self._entries)

    def forget(self, instance_uuids):
        """Drop the entries of *instance_uuids* (Nova's records show them)."""
        with self._lock:
            for u in instance_uuids:
                self._entries.pop(u, None)

    def hold(self, wait_s):
        """Take the decision turn of every scheduler process sharing this
        ledger, waiting at most *wait_s* seconds; whether it was taken.
        In one process the runtime's own gate is the turn: nothing to
        do."""
        return True

    def let_go(self):
        """Give the decision turn back (:meth:`hold`)."""

    def _expire(self):
        limit = self.clock() - self.ttl
        for u in [u for u, e in self._entries.items() if e[2] < limit]:
            del self._entries[u]

    def _own(self):
        with self._lock:
            self._expire()
            return dict(self._entries)


class ToozLedger(Ledger):
    """Ledger shared by every scheduler process through tooz (see the
    module docstring).

    Every call to the store runs on one worker thread and is waited for at
    most :attr:`timeout` seconds (tooz and redis-py retry a refused
    connection for about a minute on their own); a call that fails or
    times out marks the store down for :data:`RETRY_S` seconds, during
    which no call is made. Before connecting, a TCP probe of the store's
    address (same timeout) avoids those retries altogether.
    """

    def __init__(self, ttl=None, url=None, clock=time.time, member_id=None,
                 timeout=None):
        super().__init__(ttl, clock)
        self.url = CONF.netaware.ledger_url if url is None else url
        self.timeout = (CONF.netaware.ledger_timeout if timeout is None
                        else timeout)
        self._fixed_member = member_id
        from tooz import coordination  # noqa: F401 - import once, here
        self._start_afresh()
        _LEDGERS.add(self)

    def _start_afresh(self):
        """No connection, no worker thread, a member id of this process."""
        self.member_id = (self._fixed_member or '%s-%d-%s' % (
            socket.gethostname(), os.getpid(), uuid_mod.uuid4().hex[:8])
        ).encode()
        self._coord = None
        self._bad = False
        self._down_since = None
        self._retry_at = 0.0
        self._beat_at = 0.0
        self._state = threading.Lock()
        self._queue = None
        self._turn = None           # the tooz lock of the decision turn
        self._holding = False

    def _quiesce(self):
        """Before a fork: let the worker thread finish what it is doing
        (at most :attr:`timeout` seconds), so that the child does not
        inherit a lock that thread held mid-call (measured: a child forked
        during the parent's first connection could not connect in 5 s)."""
        q = self._queue
        if q is None:
            return
        fut = concurrent.futures.Future()
        q.put((fut, _IDLE))
        try:
            fut.result(timeout=self.timeout)
        except Exception:
            pass

    def _forked(self):
        """In a child process just forked (nova-scheduler's ``[scheduler]
        workers``): the parent's connection and worker thread are not this
        process's. Start afresh under a member id of its own, and connect
        now rather than on the first request."""
        self._lock = threading.Lock()
        self._fixed_member = None
        self._start_afresh()
        self.warm()

    def warm(self):
        """Connect and join the group in the background, now: the first
        request must not pay for it (measured on the local stack: a first
        connection under a burst of requests took longer than
        ``ledger_timeout``, and the store was then skipped for
        :data:`RETRY_S` seconds)."""
        self._submit(lambda coord: None)

    def _url(self):
        url = self.url
        if url.startswith('redis'):
            for key, value in (
                    ('socket_timeout', '%g' % self.timeout),
                    # a holder that died frees the turn this soon
                    ('lock_timeout', '%d' % self._turn_expiry())):
                if key not in url:
                    url += ('&' if '?' in url else '?') + \
                        '%s=%s' % (key, value)
        return url

    @staticmethod
    def _turn_expiry():
        """Seconds after which the store frees a decision turn its holder
        never gave back: ``[netaware] decision_wait`` rounded up, plus
        one."""
        return int(-(-CONF.netaware.decision_wait // 1)) + 1

    def _probe(self):
        """Raise unless the store's address accepts a TCP connection."""
        from urllib import parse
        u = parse.urlsplit(self.url)
        if u.hostname:
            socket.create_connection((u.hostname, u.port or 6379),
                                     timeout=self.timeout).close()

    # -- runs on the worker thread ------------------------------------------
    def _worker(self, q):
        # A daemon thread: a call stuck in tooz's own retries never holds
        # up the process's exit.
        while True:
            fut, op = q.get()
            if op is None:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            if op is _IDLE:
                fut.set_result(None)
                continue
            try:
                result = self._run(op)
            except BaseException as e:
                self._bad = True        # reconnect on the next call
                fut.set_exception(e)
                continue
            self._back()
            fut.set_result(result)

    def _run(self, op):
        now = time.monotonic()
        if self._bad and self._coord is not None:
            coord, self._coord = self._coord, None
            self._turn = None
            try:
                coord.stop()
            except Exception:
                pass
        self._bad = False
        if self._coord is None:
            from tooz import coordination
            self._probe()
            coord = coordination.get_coordinator(self._url(), self.member_id)
            coord.start()
            try:
                # (join_group_create waits a second before creating)
                coord.create_group(GROUP).get()
            except coordination.GroupAlreadyExist:
                pass
            try:
                coord.join_group(GROUP, capabilities=b'{}').get()
            except coordination.MemberAlreadyExist:
                pass        # this member id joined before: publish anew
            self._coord = coord
            self._beat_at = now
            self._publish(coord)
        elif now - self._beat_at > 1.0:
            self._coord.heartbeat()
            self._beat_at = now
        return op(self._coord)

    def _publish(self, coord):
        caps = json.dumps({u: list(e) for u, e in self._own().items()})
        coord.update_capabilities(GROUP, caps.encode()).get()

    # -- request side ------------------------------------------------------
    def _submit(self, op):
        """Queue ``op(coord)`` for the worker thread: its future, or
        ``None`` while the store is considered down (until
        :data:`RETRY_S` seconds after the outage began, or until a call
        already queued succeeds)."""
        with self._state:
            now = time.monotonic()
            if self._down_since is not None and now < self._retry_at:
                return None
            if self._queue is None:
                self._queue = queue.Queue()
                threading.Thread(target=self._worker, args=(self._queue,),
                                 name='netaware-ledger', daemon=True).start()
            fut = concurrent.futures.Future()
            self._queue.put((fut, op))
            return fut

    def _shared(self, op, timeout=None):
        """``op(coord)`` on the store, or ``None`` when it is down or does
        not answer within *timeout* (:attr:`timeout` by default; the call
        itself goes on in the worker thread: a slow store that answers
        later is back at once)."""
        fut = self._submit(op)
        if fut is None:
            return None
        try:
            return fut.result(timeout=timeout or self.timeout)
        except Exception as e:
            self._down(e)
            return None

    def _back(self):
        """A call reached the store: end the outage, if there was one."""
        with self._state:
            if self._down_since is not None:
                self._down_since = None
                self._retry_at = 0.0
                LOG.warning('nova-netaware ledger: the shared store %s is '
                            'reachable again; decisions of every scheduler '
                            'process are counted', self.url)

    def _down(self, error):
        with self._state:
            self._retry_at = time.monotonic() + RETRY_S
            if self._down_since is None:
                # once per outage
                self._down_since = time.monotonic()
                if isinstance(error, TimeoutError):
                    error = 'no answer within %g s ([netaware] ' \
                        'ledger_timeout)' % self.timeout
                else:
                    error = '%s: %s' % (type(error).__name__, error)
                LOG.warning(LOST, self.url, error)

    @property
    def shared(self):
        """Whether the last call reached the shared store."""
        return self._down_since is None

    def hold(self, wait_s):
        """Take the shared decision turn: a tooz lock on the store
        (``<group>-turn``), waited for at most *wait_s* seconds (redis-py
        polls every 0.1 s: it may give up that much earlier). ``True``:
        taken; ``False``: another process kept it; ``None``: the store is
        down or did not answer, and the caller goes on (the outage is
        logged as for every call)."""
        def acquire(coord):
            if self._turn is None:
                self._turn = coord.get_lock(TURN)
            return self._turn.acquire(blocking=wait_s)
        got = self._shared(acquire, wait_s + self.timeout)
        self._holding = bool(got)
        return got

    def let_go(self):
        """Release the turn, without waiting for the store's answer."""
        if not self._holding:
            return
        self._holding = False

        def release(coord):
            try:
                self._turn.release()
            except Exception as e:  # expired meanwhile: nothing held
                LOG.debug('nova-netaware ledger: releasing the decision '
                          'turn: %s', e)
        self._submit(release)

    def record(self, instance_uuid, host, node=None):
        super().record(instance_uuid, host, node)
        self._shared(self._publish)

    def forget(self, instance_uuids):
        before = set(self._own())
        super().forget(instance_uuids)
        if before - set(self._own()):
            self._shared(self._publish)

    def entries(self):
        out = {}
        members = self._shared(_members)
        limit = self.clock() - self.ttl
        for caps in (members or {}).values():
            try:
                data = json.loads(caps or b'{}')
            except (TypeError, ValueError):
                continue
            for u, e in data.items():
                try:
                    host, node, t = e[0], e[1], float(e[2])
                except (TypeError, ValueError, IndexError):
                    continue
                if t >= limit and (u not in out or t > out[u][2]):
                    out[u] = (host, node, t)
        # this process's own decisions, also when the store is down
        for u, e in self._own().items():
            if u not in out or e[2] > out[u][2]:
                out[u] = e
        return out

    def close(self):
        """Leave the group (tests; a dead process leaves by heartbeat
        expiry)."""
        def leave(coord):
            coord.leave_group(GROUP).get()
            self._coord = None
            coord.stop()
        if self._coord is not None and self._queue is not None:
            fut = concurrent.futures.Future()
            self._queue.put((fut, leave))
            try:
                fut.result(timeout=self.timeout)
            except Exception:
                pass
        if self._queue is not None:
            self._queue.put((None, None))


def _members(coord):
    """``{member: capabilities}`` of the group: one round trip where the
    driver has it (tooz >= 8 with Redis), else one per member."""
    from tooz import NotImplemented as ToozNotImplemented
    try:
        return coord.get_members_with_capabilities(GROUP).get()
    except (AttributeError, ToozNotImplemented):
        members = coord.get_members(GROUP).get()
        return {m: coord.get_member_capabilities(GROUP, m).get()
                for m in members}


def load(name=None):
    """The ledger backend *name* (``[netaware] ledger_backend``) from the
    stevedore namespace :data:`NAMESPACE`; an unknown name is logged and
    the in-process ledger used."""
    from stevedore import driver
    name = name or CONF.netaware.ledger_backend
    try:
        return driver.DriverManager(NAMESPACE, name,
                                    invoke_on_load=True).driver
    except Exception as e:
        log_once(logging.ERROR, 'nova-netaware: ledger backend %r cannot be '
                 'loaded (%s); using the in-process ledger', name, e)
        return Ledger()


# -- learning Nova's choice ---------------------------------------------------
_hooked = False
_hook_lock = threading.Lock()


def install_hook(on_consume):
    """Wrap ``HostState.consume_from_request`` once per process so that
    ``on_consume(spec_obj, host_state)`` is called for every host Nova
    selects and claims (see the module docstring). Returns whether the
    hook is in place."""
    global _hooked
    with _hook_lock:
        if _hooked:
            return True
        try:
            from nova.scheduler import host_manager
            original = host_manager.HostState.consume_from_request
        except Exception as e:
            log_once(logging.WARNING, 'nova-netaware: cannot learn Nova\'s '
                     'choices (%s); the ledger stays empty', e)
            return False

        def consume_from_request(self, spec_obj):
            try:
                return original(self, spec_obj)
            finally:
                try:
                    on_consume(spec_obj, self)
                except Exception as e:
                    log_once(logging.ERROR, 'nova-netaware: recording the '
                             'choice in the ledger failed: %s', e)

        consume_from_request._netaware_original = original
        host_manager.HostState.consume_from_request = consume_from_request
        _hooked = True
        return True
