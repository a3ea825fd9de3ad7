"""Switchover of the replica agent: handoff, activation and recovery.

Switchover (A active, B standby), all steps logged. One connection carries
the exchange, so that B's claim overlaps A's fence and export, and A's
pause overlaps the state's transfer::

    A  ACTIVE -> FENCING       send "takeover" (epoch N); the data plane of
                               A buffers; export_state(copy A); send
                               "state"
    A  FENCING -> HANDING_OFF  pause(copy A); send "paused" (or "abort" if
                               the pause or the export failed)
    B  STANDBY -> ACTIVATING   on "takeover": claim epoch N+1 (compare-and-
                               set in tooz) and, under the same lock, wait
                               for "state" and "paused"; only then
                               unpause(copy B) and import_state (the
                               checksum must match); replay B's buffer; pass
    B  ACTIVATING -> ACTIVE    reply ok (epoch N+1)
    A  HANDING_OFF -> STANDBY  A now buffers cloud-A traffic

B never unpauses before A reported its copy paused, so both copies never
run at once. If "state" or "paused" does not come (partition, export or
pause failed, peer crash), B hands the epoch back to A (N+2, held by A) and
stays paused. B notes a claimed takeover until its copy imported the state;
restarted with that note (killed in between), it hands the epoch back
rather than resume a copy whose state is older than A's.

If the reply does not come A goes RECOVERING and decides through the epoch
only: if B holds N+1, A stays paused (STANDBY); if the epoch was handed back,
A resumes under it; otherwise A claims N+1 itself, which makes B's late
claim fail, and resumes. A copy is unpaused only under the epoch lock and
the current epoch (``EpochFence.claim(then=...)`` or
``EpochFence.run_if_current``).
"""

from concurrent import futures
import json
import logging
import os
import threading
import time

from nova_netaware.replica import drivers
from nova_netaware.replica import peer
from nova_netaware.replica.errors import DriverError
from nova_netaware.replica.errors import FenceError
from nova_netaware.replica.errors import PeerError
from nova_netaware.replica.errors import StaleEpoch
from nova_netaware.replica.states import (ACTIVATING, ACTIVE, FAILED,
                                          FENCING, HANDING_OFF, RECOVERING,
                                          STANDBY)

LOG = logging.getLogger(__name__)

HOLD_HANDOFF = 'NNR_TEST_HOLD_HANDOFF'
HOLD_ACK = 'NNR_TEST_HOLD_ACK'
HOLD_TAKEOVER = 'NNR_TEST_HOLD_TAKEOVER'
_HOLDS_USED = set()


def fault_hold(var):
    """Fault injection for the partition tests only: once per process,
    sleep the number of seconds in environment variable ``var`` (unset in
    production)."""
    v = os.environ.get(var)
    if v and var not in _HOLDS_USED:
        _HOLDS_USED.add(var)
        LOG.warning('test hook %s: holding %.2fs', var, float(v))
        time.sleep(float(v))


class Switchover:
    """Moves the active role between the two agents of a pair.

    Works on the parts of one :class:`~nova_netaware.replica.agent.Agent`:
    its state machine, fence, cloud and state drivers, data plane, peer
    codec, counters, operation lock and stop event. ``last`` is the result
    of the last switchover on this side.
    """

    def __init__(self, agent):
        self.m = agent.machine
        self.id = agent.id
        self.copy = agent.copy
        self.c = agent.c
        self.fence = agent.fence
        self.cloud = agent.cloud
        self.state_driver = agent.state_driver
        self.dataplane = agent.dataplane
        self.codec = agent.codec
        self.counters = agent.counters
        self.lock = agent.op_lock
        # the import runs beside the resume and the lock's release
        self._importer = futures.ThreadPoolExecutor(
            1, thread_name_prefix='import')
        self.stopping = agent.stopping
        self.last = None

    def unpause_under(self, epoch):
        try:
            self.fence.run_if_current(epoch,
                                      lambda: self.cloud.unpause(self.copy))
        except StaleEpoch:
            self.counters['stale_epoch_refusals'] += 1
            LOG.warning('refused to unpause %s under stale epoch %d',
                        self.copy, epoch)
            raise

    # ------------------------------------------------------------ trigger
    def trigger(self, reason='manual'):
        """Trigger a switchover from either side."""
        if reason == 'manual':
            self.counters['manual_triggers'] += 1
        if self.m.state == STANDBY:
            try:
                hdr, _ = peer.call(self.codec, self.c.peer_host,
                                   self.c.peer_port, 'request_handoff',
                                   {'reason': reason},
                                   timeout=self.c.handoff_timeout +
                                   self.c.peer_timeout + 5)
            except PeerError as e:
                return {'ok': False, 'error': 'peer: %s' % e}
            return {'ok': bool(hdr.get('ok')), 'error': hdr.get('error'),
                    'result': hdr.get('result'), 'via': 'peer'}
        return self.handoff(reason)

    # ------------------------------------------------------------ out
    def handoff(self, reason):
        """Active side: announce, fence, export, send the state, pause,
        confirm."""
        m = self.m
        with self.lock:
            if m.state != ACTIVE:
                return {'ok': False, 'error': 'cannot hand off in state %s'
                        % m.state}
            t0 = time.monotonic()
            m.to(FENCING, reason)
            try:
                conv = peer.Conversation(self.codec, self.c.peer_host,
                                         self.c.peer_port,
                                         self.c.handoff_timeout)
                # the peer claims the next epoch while this side fences
                # and exports
                conv.send('takeover', {'epoch': m.epoch, 'reason': reason})
            except PeerError as e:
                # a frame cut short fails the peer's HMAC: nothing was
                # claimed, and nothing was fenced or paused yet
                LOG.error('handoff: %s; staying active', e)
                return self._stay_active('peer: %s' % e)
            with conv:
                t_announced = time.monotonic()
                self.dataplane.fence()
                t_fenced = time.monotonic()
                try:
                    blob = self.cloud.export_state(self.copy)
                except DriverError as e:
                    LOG.error('export failed, withdrawing the handoff: %s',
                              e)
                    hdr = self._withdraw(conv, 'export: %s' % e)
                    blob = None
                if blob is not None:
                    t_exported = time.monotonic()
                    try:
                        conv.send('state', {'sha256': blob.sha256,
                                            'meta': blob.meta}, blob.data)
                    except PeerError as e:
                        LOG.error('handoff: %s', e)
                        hdr = {'ok': False, 'error': str(e)}
                    else:
                        t_sent = time.monotonic()
                        m.to(HANDING_OFF, '%d bytes of state' % len(blob))
                        hdr, t_paused = self._pause_and_confirm(conv)
            if hdr.get('ok'):
                m.epoch = int(hdr['epoch'])
                m.to(STANDBY, 'peer active under epoch %d' % m.epoch)
                self.counters['switchovers_out'] += 1
                res = {'ok': True, 'direction': 'out', 'reason': reason,
                       'epoch': m.epoch, 'state_bytes': len(blob),
                       'at': time.time(),
                       'duration_s': time.monotonic() - t0,
                       'fence_to_pause_s': t_paused - t_announced,
                       'steps_ms': {
                           'announce': 1e3 * (t_announced - t0),
                           'fence': 1e3 * (t_fenced - t_announced),
                           'export': 1e3 * (t_exported - t_fenced),
                           'send': 1e3 * (t_sent - t_exported),
                           'pause': 1e3 * (t_paused - t_sent),
                           'handoff_rtt': 1e3 * (time.monotonic() -
                                                 t_paused)},
                       'downtime_s': hdr.get('downtime_s'),
                       'replayed': hdr.get('replayed'),
                       'peer_steps_ms': hdr.get('steps_ms'),
                       # CLOCK_MONOTONIC marks, comparable with the
                       # peer's only where both agents share a machine
                       # (the local stack): the benchmark's timeline
                       'mono': {'fence': t_announced, 'sent': t_sent,
                                'paused': t_paused},
                       'peer_mono': hdr.get('mono')}
                self.last = res
                return res
            m.to(RECOVERING, 'handoff not acknowledged: %s'
                 % hdr.get('error'))
            self.counters['switchovers_failed'] += 1
            self.recover()
            return {'ok': False, 'error': hdr.get('error'),
                    'state': m.state, 'epoch': m.epoch}

    def _stay_active(self, error):
        """The handoff failed before the copy paused: serve again."""
        self.dataplane.activate()
        self.m.to(ACTIVE, error)
        self.counters['switchovers_failed'] += 1
        return {'ok': False, 'error': error}

    def _withdraw(self, conv, error):
        """Tell the peer the handoff is off (it hands back what it
        claimed) and read its reply; the copy never paused."""
        try:
            conv.send('abort', {'error': error})
            hdr, _ = conv.reply()
        except PeerError as e:
            LOG.error('withdrawing the handoff: %s', e)
        return {'ok': False, 'error': error}

    def _pause_and_confirm(self, conv):
        """Pause the copy while the state travels, tell the peer the
        outcome ("paused" or "abort") and read its reply. Returns (reply
        header, time the pause returned); a reply that did not come is
        ``{'ok': False, 'error': ...}``."""
        try:
            self.cloud.pause(self.copy)
            follow = ('paused', {})
        except DriverError as e:
            # the copy may still run: the peer must not resume its own
            LOG.error('pause failed, withdrawing the handoff: %s', e)
            follow = ('abort', {'error': 'pause: %s' % e})
        t_paused = time.monotonic()
        fault_hold(HOLD_HANDOFF)
        try:
            conv.send(*follow)
            hdr, _ = conv.reply()
        except PeerError as e:
            LOG.error('handoff to peer failed: %s', e)
            hdr = {'ok': False, 'error': str(e)}
        if follow[0] == 'abort' and hdr.get('ok'):
            # cannot happen with a peer of this version; never trust it
            hdr = {'ok': False, 'error': 'peer took over after an abort'}
        return hdr, t_paused

    # ------------------------------------------------------------ recovery
    def resume_if_handed_back(self):
        """On a standby copy: if the epoch was handed back to this agent
        (the peer's import failed after this side had read the peer's
        claim and gone STANDBY: both sides' waits end at the same timeout),
        recover, so that a copy runs again. Returns True if it did."""
        m = self.m
        with self.lock:
            if m.state != STANDBY:
                return False
            cur, holder = self.fence.current()
            if holder != self.id or cur <= m.epoch:
                return False
            LOG.warning('epoch %d handed back to this standby copy: '
                        'resuming it', cur)
            m.to(RECOVERING, 'epoch %d handed back' % cur)
        self.recover()
        return True

    def recover(self):
        """Decide by the epoch alone whether to resume the paused copy.
        Blocks, retrying every second, while the coordination backend is
        down; if the copy cannot be resumed, ends in FAILED (the policy
        loop retries)."""
        m = self.m
        with self.lock:
            if m.state == FAILED:
                m.to(RECOVERING, 'retry')
            while not self.stopping.is_set():
                try:
                    cur, holder = self.fence.current()
                    if holder == self.id and cur > m.epoch:
                        m.epoch = cur  # handed back by the peer
                        self.counters['handbacks'] += 1
                    elif holder == self.id and cur == m.epoch:
                        m.epoch = self.fence.claim(cur)
                    else:
                        m.epoch = cur
                        self._ensure_paused()
                        m.to(STANDBY, 'epoch %d held by %s' % (cur, holder))
                        return
                    self.unpause_under(m.epoch)
                    self.dataplane.activate()
                    self.counters['recoveries'] += 1
                    m.to(ACTIVE, 'recovered under epoch %d' % m.epoch)
                    return
                except StaleEpoch as e:
                    LOG.warning('recovery raced with a claim: %s', e)
                    continue
                except DriverError as e:
                    # the hypervisor does not resume the copy: FAILED, and
                    # the policy loop calls recover() again
                    LOG.error('cannot resume %s, will retry: %s',
                              self.copy, e)
                    m.to(FAILED, 'resume: %s' % e)
                    return
                except FenceError as e:
                    LOG.error('coordination backend unavailable, copy stays '
                              'paused: %s', e)
                    if m.state != FAILED:
                        m.to(FAILED, str(e))
                    self.stopping.wait(1.0)
                    m.to(RECOVERING, 'retry')

    def _ensure_paused(self):
        """A standby copy is paused (a handoff whose pause failed leaves
        it running); a failure is logged, the epoch already keeps the
        peer from resuming its own copy before this one is paused."""
        try:
            self.cloud.pause(self.copy)
        except DriverError as e:
            LOG.error('copy %s could not be paused on the way to standby: '
                      '%s', self.copy, e)

    # ------------------------------------------------------------ in
    def activate_from(self, hdr, body, channel):
        """Peer announced a handoff ("takeover"): claim the next epoch,
        then take its state and, once it confirms its copy paused, take
        over (runs on the standby). ``channel`` reads the peer's
        follow-up frames. Returns the reply header and body."""
        m = self.m
        with self.lock:
            if m.state != STANDBY:
                return {'ok': False, 'error': 'not standby (state %s)'
                        % m.state}, b''
            t0 = time.monotonic()
            expected = int(hdr['epoch'])
            sender = hdr['sender']
            m.to(ACTIVATING, 'handoff from %s at epoch %d'
                 % (sender, expected))
            try:
                new, marks, failed = self._claim_next(expected, channel,
                                                      sender)
            except (StaleEpoch, FenceError) as e:
                self.counters['stale_epoch_refusals'] += 1
                m.to(STANDBY, 'claim failed: %s' % e)
                return {'ok': False, 'error': 'claim: %s' % e}, b''
            m.epoch = new
            t_released = time.monotonic()
            try:
                self._import(marks.get('blob'), new, failed,
                             marks.get('importing'))
            except Exception as e:
                self._hand_back(new, sender, e)
                return {'ok': False, 'error': str(e),
                        'epoch': self.m.epoch}, b''
            self.clear_takeover()  # before this copy serves anything
            blob = marks['blob']
            t_restored = time.monotonic()
            r = self.dataplane.activate()
            m.to(ACTIVE, 'restored %d bytes, replayed %d packets'
                 % (len(blob), r['replayed']))
            self.counters['switchovers_in'] += 1
            fault_hold(HOLD_ACK)
            t_claimed, t_state = marks['claimed'], marks['state']
            t_confirmed = marks['confirmed']
            # a copy that imports while paused resumes after the import
            t_resumed = marks.get('resumed', t_confirmed)
            res = {'ok': True, 'direction': 'in', 'epoch': new,
                   'reason': hdr.get('reason'), 'at': time.time(),
                   'state_bytes': len(blob), 'replayed': r['replayed'],
                   'replay_seconds': r['replay_seconds'],
                   'restore_s': t_restored - t0,
                   'steps_ms': {
                       'claim': 1e3 * (t_claimed - t0),
                       'await_state': 1e3 * (t_state - t_claimed),
                       'await_pause': 1e3 * (t_confirmed - t_state),
                       'unpause': 1e3 * (t_resumed - t_confirmed),
                       # the import was sent before the resume; the
                       # lock's release overlaps it
                       'release': 1e3 * max(0.0, t_released - t_resumed),
                       'import': 1e3 * (t_restored - t_resumed),
                       'replay': 1e3 * r['replay_seconds']},
                   'mono': {'received': t0, 'claimed': t_claimed,
                            'state': t_state, 'confirmed': t_confirmed,
                            'resumed': t_resumed, 'restored': t_restored,
                            'replay_started': r.get('replay_started')},
                   'duration_s': time.monotonic() - t0,
                   'downtime_s': self._service_downtime(blob)}
            self._guest_import_times(res, new)
            self.last = res
            threading.Thread(target=self._gc, daemon=True).start()
            return res, b''

    def _guest_import_times(self, res, epoch):
        """Split the import step where the state driver tells it: the
        guest endpoint's own time for the import (``import_in_guest``)
        and when its reply was read (``mono['import_replied']``)."""
        last = getattr(getattr(self.cloud, 'state_driver', None),
                       'last_import', None)
        if not isinstance(last, dict) or last.get('epoch') != epoch:
            return
        if isinstance(last.get('server_us'), (int, float)):
            res['steps_ms']['import_in_guest'] = last['server_us'] / 1e3
        res['mono']['import_replied'] = last.get('replied')

    def _follow(self, channel, sender, want):
        """The peer's next follow-up, which must be ``want``; PeerError if
        it withdrew ("abort"), sent something else or nothing within
        ``peer_timeout``."""
        fhdr, fbody = channel.next(self.c.peer_timeout)
        if fhdr['type'] == want:
            return fhdr, fbody
        if fhdr['type'] == 'abort':
            raise PeerError('%s withdrew the handoff: %s'
                            % (sender, fhdr.get('error')))
        raise PeerError('%s sent %r where %r was expected'
                        % (sender, fhdr['type'], want))

    def _claim_next(self, expected, channel, sender):
        """Claim epoch ``expected + 1`` and, under the same lock (no claim
        in between), wait for the peer's state and its word that its copy
        is paused; for a driver that imports into a running copy, send the
        import and unpause there too (the import completes while the lock
        is released).

        Returns (new epoch, marks, the error that stopped it after the
        claim or None). The marks are CLOCK_MONOTONIC ``claimed``,
        ``state``, ``confirmed`` and ``resumed`` as far as reached, the
        state (``blob``) and the running import (``importing``).
        StaleEpoch or FenceError when nothing was claimed."""
        marks = {}

        def then():
            marks['claimed'] = time.monotonic()
            self._mark_takeover(expected + 1, sender)
            shdr, body = self._follow(channel, sender, 'state')
            # transit is protected by the HMAC; the checksum is checked
            # by the copy that imports it (it refuses a mismatch)
            try:
                blob = drivers.StateBlob(body, shdr['sha256'],
                                         shdr.get('meta'), verify=False)
            except (KeyError, TypeError, ValueError) as e:
                raise PeerError('malformed state from %s: %s'
                                % (sender, e))
            marks['blob'] = blob
            marks['state'] = time.monotonic()
            self._follow(channel, sender, 'paused')
            marks['confirmed'] = time.monotonic()
            fault_hold(HOLD_TAKEOVER)
            if self.cloud.requires_running_for_import:
                # the request waits at the paused copy's port and is the
                # first thing it reads when it runs, during the rest of
                # the hypervisor's resume call
                marks['importing'] = self._importer.submit(
                    self.cloud.import_state, self.copy, blob,
                    expected + 1)
                self.cloud.unpause(self.copy)
                marks['resumed'] = time.monotonic()
        try:
            new = self.fence.claim(expected, then=then)
        except (DriverError, PeerError) as e:
            if 'claimed' not in marks:
                raise
            return expected + 1, marks, e
        return new, marks, None

    def _import(self, blob, epoch, failed, importing):
        """Import the state under ``epoch``: wait for the import started
        in the running copy, or import into the paused copy and unpause
        it."""
        if failed is not None:
            raise failed
        if importing is not None:
            importing.result()
            return
        self.cloud.import_state(self.copy, blob, epoch)
        self.unpause_under(epoch)

    def _hand_back(self, epoch, sender, error):
        """The takeover failed after the claim (no pause confirmation,
        unpause or import failed): pause again and give the epoch back."""
        LOG.error('takeover failed, handing the epoch back to %s: %s',
                  sender, error)
        try:
            self.cloud.pause(self.copy)
            back = self.fence.claim(epoch, holder=sender)
            self.clear_takeover()
            self.m.epoch = back
            self.m.to(STANDBY, 'takeover failed, epoch %d handed back'
                      % back)
        except Exception as e2:
            LOG.error('hand back failed: %s', e2)
            self.m.to(FAILED, 'import and hand back failed')
        self.counters['switchovers_failed'] += 1

    # ------------------------------------------------------------ marker
    def _marker_path(self):
        return os.path.join(self.c.state_dir,
                            'takeover-%s.json' % self.c.service_name)

    def _mark_takeover(self, epoch, sender):
        """Note that ``epoch`` was claimed for a takeover from ``sender``
        whose state this copy has not imported yet. Kept in the page cache
        (no fsync): it survives the agent's crash, not the host's."""
        path = self._marker_path()
        with open(path + '.tmp', 'w') as f:
            json.dump({'epoch': epoch, 'from': sender}, f)
        os.replace(path + '.tmp', path)

    def clear_takeover(self):
        try:
            os.unlink(self._marker_path())
        except FileNotFoundError:
            pass

    def pending_takeover(self, epoch):
        """The peer this agent claimed ``epoch`` from for a takeover that
        it did not finish (it stopped before the import), or None. A
        marker of another epoch (settled since) or an unreadable one is
        removed; the latter is reported."""
        try:
            with open(self._marker_path()) as f:
                d = json.load(f)
            mark = (int(d['epoch']), str(d['from']))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            LOG.error('takeover marker %s unreadable, removed: %s',
                      self._marker_path(), e)
            mark = None
        if mark is None or mark[0] != epoch:
            self.clear_takeover()
            return None
        return mark[1]

    def abandon_takeover(self, epoch, sender):
        """At start: this agent holds ``epoch``, claimed for a takeover
        from ``sender``, but stopped before its copy imported the state.
        Its copy's state is older than the sender's, so the epoch goes back
        to the sender (paused with the newest state; it resumes within a
        second) and this copy stays paused."""
        m = self.m
        LOG.warning('restarted after claiming epoch %d for a takeover from '
                    '%s without importing its state: pausing %s and handing '
                    'the epoch back', epoch, sender, self.copy)
        self.cloud.pause(self.copy)
        m.epoch = self.fence.claim(epoch, holder=sender)
        self.clear_takeover()
        self.counters['takeovers_abandoned'] += 1
        m.to(STANDBY, 'takeover from %s abandoned, epoch %d handed back'
             % (sender, m.epoch))

    def _gc(self):
        try:
            self.fence.gc()
        except Exception as e:
            LOG.warning('epoch garbage collection failed: %s', e)

    def _service_downtime(self, blob):
        """Last request served by the old copy -> first served by this one
        (CLOCK_MONOTONIC of the same machine; None if not known yet)."""
        stats = getattr(self.state_driver, 'stats', None)
        last = blob.meta.get('last_served_ns') or 0
        if not stats or not last:
            return None
        try:
            first = stats().get('first_served_after_import_ns') or 0
        except DriverError:
            return None
        return (first - last) / 1e9 if first else None
