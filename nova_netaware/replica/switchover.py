"""Switchover of the replica agent: handoff, activation and recovery.

Switchover (A active, B standby), all steps logged. One connection carries
the exchange, so that A's pause overlaps the message and B's claim::

    A  ACTIVE -> FENCING       data plane of A buffers; export_state(copy A)
    A  FENCING -> HANDING_OFF  send "takeover" (epoch N, state); then
                               pause(copy A) and send "paused" (or "abort"
                               if the pause failed)
    B  STANDBY -> ACTIVATING   on "takeover": claim epoch N+1 (compare-and-
                               set in tooz) and, under the same lock, wait
                               for "paused"; only then unpause(copy B);
                               import_state (the checksum must match);
                               replay B's buffer; pass
    B  ACTIVATING -> ACTIVE    reply ok (epoch N+1)
    A  HANDING_OFF -> STANDBY  A now buffers cloud-A traffic

B never unpauses before A reported its copy paused, so both copies never
run at once. If "paused" does not come (partition, pause failed, peer
crash), B hands the epoch back to A (N+2, held by A) and stays paused.

If the reply does not come A goes RECOVERING and decides through the epoch
only: if B holds N+1, A stays paused (STANDBY); if the epoch was handed back,
A resumes under it; otherwise A claims N+1 itself, which makes B's late
claim fail, and resumes. A copy is unpaused only under the epoch lock and
the current epoch (``EpochFence.claim(then=...)`` or
``EpochFence.run_if_current``).
"""

import logging
import os
import threading
import time

from nova_netaware.replica import drivers
from nova_netaware.replica import peer
from nova_netaware.replica.errors import ChecksumMismatch
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


class _Background(threading.Thread):
    """``fn(*args)`` in a thread of its own; :meth:`result` joins it and
    raises what it raised."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True, name='import')
        self.fn, self.args, self.error = fn, args, None
        self.start()

    def run(self):
        try:
            self.fn(*self.args)
        except BaseException as e:  # re-raised by result()
            self.error = e

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error


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
        """Active side: fence, export, send the state, pause, confirm."""
        m = self.m
        with self.lock:
            if m.state != ACTIVE:
                return {'ok': False, 'error': 'cannot hand off in state %s'
                        % m.state}
            t0 = time.monotonic()
            m.to(FENCING, reason)
            self.dataplane.fence()
            t_fenced = time.monotonic()
            try:
                blob = self.cloud.export_state(self.copy)
            except DriverError as e:
                LOG.error('export failed, staying active: %s', e)
                return self._stay_active('export: %s' % e)
            t_exported = time.monotonic()
            fields = {'epoch': m.epoch, 'sha256': blob.sha256,
                      'meta': blob.meta, 'reason': reason}
            try:
                conv = peer.Conversation(self.codec, self.c.peer_host,
                                         self.c.peer_port,
                                         self.c.handoff_timeout)
            except PeerError as e:
                LOG.error('handoff: %s; staying active', e)
                return self._stay_active('peer: %s' % e)
            with conv:
                try:
                    conv.send('takeover', fields, blob.data)
                except PeerError as e:
                    # a frame cut short fails the peer's HMAC: nothing was
                    # claimed, and the copy never paused
                    LOG.error('handoff: %s; staying active', e)
                    return self._stay_active('peer: %s' % e)
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
                       'fence_to_pause_s': t_paused - t0,
                       'steps_ms': {
                           'fence': 1e3 * (t_fenced - t0),
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
                       'mono': {'fence': t0, 'sent': t_sent,
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

    def _pause_and_confirm(self, conv):
        """Pause the copy while the peer claims, tell the peer the outcome
        ("paused" or "abort") and read its reply. Returns (reply header,
        time the pause returned); a reply that did not come is
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
        """Peer sent its state ("takeover"): take over once it confirms
        its copy paused (runs on the standby). ``channel`` reads the
        peer's follow-up frames. Returns the reply header and body."""
        m = self.m
        with self.lock:
            if m.state != STANDBY:
                return {'ok': False, 'error': 'not standby (state %s)'
                        % m.state}, b''
            t0 = time.monotonic()
            expected = int(hdr['epoch'])
            sender = hdr['sender']
            try:
                # transit is protected by the HMAC; the checksum is checked
                # by the copy that imports it (it refuses a mismatch)
                blob = drivers.StateBlob(body, hdr['sha256'],
                                         hdr.get('meta'), verify=False)
            except ChecksumMismatch as e:
                return {'ok': False, 'error': str(e)}, b''
            m.to(ACTIVATING, 'handoff from %s at epoch %d'
                 % (sender, expected))
            t_verified = time.monotonic()
            try:
                new, marks, failed = self._claim_next(
                    expected, lambda: self._await_pause(channel, sender),
                    blob)
            except (StaleEpoch, FenceError) as e:
                self.counters['stale_epoch_refusals'] += 1
                m.to(STANDBY, 'claim failed: %s' % e)
                return {'ok': False, 'error': 'claim: %s' % e}, b''
            m.epoch = new
            t_released = time.monotonic()
            try:
                self._import(blob, new, failed, marks.get('importing'))
            except Exception as e:
                self._hand_back(new, sender, e)
                return {'ok': False, 'error': str(e),
                        'epoch': self.m.epoch}, b''
            t_restored = time.monotonic()
            r = self.dataplane.activate()
            m.to(ACTIVE, 'restored %d bytes, replayed %d packets'
                 % (len(blob), r['replayed']))
            self.counters['switchovers_in'] += 1
            fault_hold(HOLD_ACK)
            t_claimed = marks['claimed']
            t_confirmed = marks.get('confirmed', t_claimed)
            # a copy that imports while paused resumes after the import
            t_resumed = marks.get('resumed', t_confirmed)
            res = {'ok': True, 'direction': 'in', 'epoch': new,
                   'reason': hdr.get('reason'), 'at': time.time(),
                   'state_bytes': len(blob), 'replayed': r['replayed'],
                   'replay_seconds': r['replay_seconds'],
                   'restore_s': t_restored - t0,
                   'steps_ms': {
                       'verify': 1e3 * (t_verified - t0),
                       'claim': 1e3 * (t_claimed - t_verified),
                       'await_pause': 1e3 * (t_confirmed - t_claimed),
                       'unpause': 1e3 * (t_resumed - t_confirmed),
                       # the lock's release overlaps the import
                       'release': 1e3 * max(0.0, t_released - t_resumed),
                       'import': 1e3 * (t_restored - t_resumed),
                       'replay': 1e3 * r['replay_seconds']},
                   'mono': {'received': t0, 'claimed': t_claimed,
                            'confirmed': t_confirmed,
                            'resumed': t_resumed, 'restored': t_restored,
                            'replay_started': r.get('replay_started')},
                   'duration_s': time.monotonic() - t0,
                   'downtime_s': self._service_downtime(blob)}
            self.last = res
            threading.Thread(target=self._gc, daemon=True).start()
            return res, b''

    def _await_pause(self, channel, sender):
        """Wait (under the claim's lock) for the peer's word that its
        copy is paused; PeerError if it aborted or said nothing within
        ``peer_timeout``."""
        fhdr, _ = channel.next(self.c.peer_timeout)
        if fhdr['type'] == 'paused':
            return
        if fhdr['type'] == 'abort':
            raise PeerError('%s withdrew the handoff: %s'
                            % (sender, fhdr.get('error')))
        raise PeerError('%s sent %r where "paused" was expected'
                        % (sender, fhdr['type']))

    def _claim_next(self, expected, await_pause, blob):
        """Claim epoch ``expected + 1`` and, under the same lock (no claim
        in between), wait for the peer's pause; for a driver that imports
        into a running copy, unpause there too and start the import, which
        runs while the lock is released.

        Returns (new epoch, marks, the error that stopped it after the
        claim or None). The marks are CLOCK_MONOTONIC ``claimed``,
        ``confirmed`` and ``resumed`` as far as reached, and the running
        import (``importing``). StaleEpoch or FenceError when nothing was
        claimed."""
        marks = {}

        def then():
            marks['claimed'] = time.monotonic()
            await_pause()
            marks['confirmed'] = time.monotonic()
            if self.cloud.requires_running_for_import:
                self.cloud.unpause(self.copy)
                marks['resumed'] = time.monotonic()
                marks['importing'] = _Background(
                    self.cloud.import_state, self.copy, blob,
                    expected + 1)
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
            self.m.epoch = back
            self.m.to(STANDBY, 'takeover failed, epoch %d handed back'
                      % back)
        except Exception as e2:
            LOG.error('hand back failed: %s', e2)
            self.m.to(FAILED, 'import and hand back failed')
        self.counters['switchovers_failed'] += 1

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
