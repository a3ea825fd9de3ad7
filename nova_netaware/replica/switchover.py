"""Switchover of the replica agent: handoff, activation and recovery.

Switchover (A active, B standby), all steps logged::

    A  ACTIVE -> FENCING       data plane of A buffers; export_state(copy A)
    A  FENCING -> HANDING_OFF  pause(copy A); send "handoff" (epoch N, state)
    B  STANDBY -> ACTIVATING   claim epoch N+1 (compare-and-set in tooz);
                               unpause(copy B) under N+1; import_state; the
                               checksum must match; replay B's buffer; pass
    B  ACTIVATING -> ACTIVE    reply ok (epoch N+1)
    A  HANDING_OFF -> STANDBY  A now buffers cloud-A traffic

If the reply does not come (partition, peer crash) A goes RECOVERING and
decides through the epoch only: if B claimed N+1, A stays paused (STANDBY);
otherwise A claims N+1 itself, which makes B's late claim fail, and resumes.
A copy is unpaused only by ``EpochFence.run_if_current`` -- under the lock
and the current epoch -- so both copies never run at once.
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
        """Active side: fence, export, pause and hand the state over."""
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
                self.dataplane.activate()
                m.to(ACTIVE, 'export failed')
                self.counters['switchovers_failed'] += 1
                return {'ok': False, 'error': 'export: %s' % e}
            t_exported = time.monotonic()
            self.cloud.pause(self.copy)
            t_paused = time.monotonic()
            m.to(HANDING_OFF, '%d bytes of state' % len(blob))
            fault_hold(HOLD_HANDOFF)
            fields = {'epoch': m.epoch, 'sha256': blob.sha256,
                      'meta': blob.meta, 'reason': reason}
            try:
                hdr, _ = peer.call(self.codec, self.c.peer_host,
                                   self.c.peer_port, 'handoff', fields,
                                   blob.data, timeout=self.c.handoff_timeout)
            except PeerError as e:
                LOG.error('handoff to peer failed: %s', e)
                hdr = {'ok': False, 'error': str(e)}
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
                           'pause': 1e3 * (t_paused - t_exported),
                           'handoff_rtt': 1e3 * (time.monotonic() -
                                                 t_paused)},
                       'downtime_s': hdr.get('downtime_s'),
                       'replayed': hdr.get('replayed'),
                       'peer_steps_ms': hdr.get('steps_ms'),
                       # CLOCK_MONOTONIC marks, comparable with the
                       # peer's only where both agents share a machine
                       # (the local stack): the benchmark's timeline
                       'mono': {'fence': t0, 'paused': t_paused},
                       'peer_mono': hdr.get('mono')}
                self.last = res
                return res
            m.to(RECOVERING, 'handoff not acknowledged: %s'
                 % hdr.get('error'))
            self.counters['switchovers_failed'] += 1
            self.recover()
            return {'ok': False, 'error': hdr.get('error'),
                    'state': m.state, 'epoch': m.epoch}

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
        """Decide by the epoch alone whether to resume the paused copy."""
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
                except FenceError as e:
                    LOG.error('coordination backend unavailable, copy stays '
                              'paused: %s', e)
                    if m.state != FAILED:
                        m.to(FAILED, str(e))
                    self.stopping.wait(1.0)
                    m.to(RECOVERING, 'retry')

    # ------------------------------------------------------------ in
    def activate_from(self, hdr, body):
        """Peer handed us its state: take over (runs on the standby).
        Returns the reply header and body."""
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
                new, t_claimed, t_resumed, failed = \
                    self._claim_next(expected)
            except (StaleEpoch, FenceError) as e:
                self.counters['stale_epoch_refusals'] += 1
                m.to(STANDBY, 'claim failed: %s' % e)
                return {'ok': False, 'error': 'claim: %s' % e}, b''
            m.epoch = new
            try:
                t_unpaused = self._import(blob, new, failed)
            except Exception as e:
                self._hand_back(new, sender, e)
                return {'ok': False, 'error': 'import: %s' % e}, b''
            t_restored = time.monotonic()
            r = self.dataplane.activate()
            m.to(ACTIVE, 'restored %d bytes, replayed %d packets'
                 % (len(blob), r['replayed']))
            self.counters['switchovers_in'] += 1
            fault_hold(HOLD_ACK)
            t_unpaused = t_unpaused or t_claimed
            t_resumed = t_resumed or t_unpaused
            res = {'ok': True, 'direction': 'in', 'epoch': new,
                   'reason': hdr.get('reason'), 'at': time.time(),
                   'state_bytes': len(blob), 'replayed': r['replayed'],
                   'replay_seconds': r['replay_seconds'],
                   'restore_s': t_restored - t0,
                   'steps_ms': {
                       'verify': 1e3 * (t_verified - t0),
                       'claim': 1e3 * (t_claimed - t_verified),
                       'unpause': 1e3 * (t_resumed - t_claimed),
                       'release': 1e3 * (t_unpaused - t_resumed),
                       'import': 1e3 * (t_restored - t_unpaused),
                       'replay': 1e3 * r['replay_seconds']},
                   'mono': {'received': t0, 'claimed': t_claimed,
                            'resumed': t_resumed, 'restored': t_restored,
                            'replay_started': r.get('replay_started')},
                   'duration_s': time.monotonic() - t0,
                   'downtime_s': self._service_downtime(blob)}
            self.last = res
            threading.Thread(target=self._gc, daemon=True).start()
            return res, b''

    def _claim_next(self, expected):
        """Claim epoch ``expected + 1``; for a driver that imports into a
        running copy, unpause under the same lock: no claim in between.
        Returns (new epoch, time of the claim, time the copy resumed under
        the lock or None, the driver error if claimed but the copy did not
        resume, else None)."""
        box = {}

        def unpause_now():
            box['claimed'] = time.monotonic()
            self.cloud.unpause(self.copy)
            box['resumed'] = time.monotonic()
        then = unpause_now if self.cloud.requires_running_for_import \
            else None
        try:
            new = self.fence.claim(expected, then=then)
        except DriverError as e:
            return (expected + 1, box.get('claimed', time.monotonic()),
                    None, e)
        return (new, box.get('claimed', time.monotonic()),
                box.get('resumed'), None)

    def _import(self, blob, epoch, failed):
        """Import the state under ``epoch`` (unpausing after it unless the
        copy already runs). Returns when the copy was unpaused for the
        import, or None."""
        if failed is not None:
            raise failed
        if self.cloud.requires_running_for_import:
            t_unpaused = time.monotonic()
            self.cloud.import_state(self.copy, blob, epoch)
            return t_unpaused
        self.cloud.import_state(self.copy, blob, epoch)
        self.unpause_under(epoch)
        return None

    def _hand_back(self, epoch, sender, error):
        """The import failed: pause again and give the epoch back."""
        LOG.error('import failed, handing the epoch back to %s: %s',
                  sender, error)
        try:
            self.cloud.pause(self.copy)
            back = self.fence.claim(epoch, holder=sender)
            self.m.epoch = back
            self.m.to(STANDBY, 'import failed, epoch %d handed back' % back)
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
