"""The replica agent: switchover state machine, fencing, peer channel,
policy triggers, control API and metrics.

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

import json
import logging
import os
import socket
import threading
import time

from nova_netaware.replica import buffer as buffer_mod
from nova_netaware.replica import dataplane as dp
from nova_netaware.replica import drivers
from nova_netaware.replica import fencing
from nova_netaware.replica import peer

LOG = logging.getLogger(__name__)

INIT = 'INIT'
STANDBY = 'STANDBY'
ACTIVE = 'ACTIVE'
FENCING = 'FENCING'
HANDING_OFF = 'HANDING_OFF'
ACTIVATING = 'ACTIVATING'
RECOVERING = 'RECOVERING'
FAILED = 'FAILED'

TRANSITIONS = {
    INIT: {ACTIVE, STANDBY, ACTIVATING, RECOVERING, FAILED},
    STANDBY: {ACTIVATING},
    ACTIVATING: {ACTIVE, STANDBY, FAILED},
    ACTIVE: {FENCING},
    FENCING: {HANDING_OFF, ACTIVE, RECOVERING},
    HANDING_OFF: {STANDBY, RECOVERING},
    RECOVERING: {ACTIVE, STANDBY, FAILED},
    FAILED: {RECOVERING},
}

ROLE = {ACTIVE: 'active', STANDBY: 'standby', INIT: 'starting',
        FENCING: 'switching', HANDING_OFF: 'switching',
        ACTIVATING: 'switching', RECOVERING: 'recovering',
        FAILED: 'failed'}


_HOLDS_USED = set()


def _test_hold(var):
    """Fault injection for the partition tests only: once per process,
    sleep the number of seconds in environment variable ``var`` (unset in
    production)."""
    v = os.environ.get(var)
    if v and var not in _HOLDS_USED:
        _HOLDS_USED.add(var)
        LOG.warning('test hook %s: holding %.2fs', var, float(v))
        time.sleep(float(v))


class AgentError(Exception):
    pass


class InvalidTransition(AgentError):
    pass


class Agent:

    def __init__(self, conf):
        self.conf = conf
        c = conf.replica
        self.c = c
        self.id = c.agent_id
        self.copy = c.copy_name
        self.state = INIT
        self.epoch = 0
        self.since = time.monotonic()
        self.counters = {'switchovers_out': 0, 'switchovers_in': 0,
                         'switchovers_failed': 0, 'recoveries': 0,
                         'stale_epoch_refusals': 0, 'policy_triggers': 0,
                         'manual_triggers': 0, 'handbacks': 0}
        self.last_switchover = None
        self.history = []  # transitions, bounded
        self._op = threading.RLock()
        self._stop = threading.Event()
        if not c.peer_host:
            raise AgentError('[replica] peer_host is required')
        self.codec = peer.Codec(c.peer_hmac_key or '', self.id,
                                c.peer_replay_window)
        os.makedirs(c.state_dir, exist_ok=True)
        self.buffer = buffer_mod.DurableBuffer(
            os.path.join(c.state_dir, 'buffer-%s.sqlite' % c.service_name),
            c.buffer_max_packets, c.buffer_max_bytes, c.buffer_synchronous)
        self.buffer.start_checkpointer()
        self.state_driver = drivers.load(
            'nova_netaware.replica.state_drivers', c.state_driver, conf)
        self.cloud = drivers.load(
            'nova_netaware.replica.cloud_drivers', c.cloud_driver, conf,
            self.state_driver)
        self.dataplane = drivers.load(
            'nova_netaware.replica.dataplanes', c.dataplane, conf,
            self.buffer)
        self.fence = fencing.EpochFence(c.coordination_url, c.service_name,
                                        self.id, c.coordination_lock_timeout)
        self.peer_server = None
        self._ctl_sock = None

    # ------------------------------------------------------------ machine
    def _to(self, new, why=''):
        if new not in TRANSITIONS[self.state]:
            raise InvalidTransition('%s -> %s is not allowed'
                                    % (self.state, new))
        LOG.info('state %s -> %s (epoch %d)%s', self.state, new, self.epoch,
                 (': ' + why) if why else '')
        self.history.append((time.time(), self.state, new, self.epoch, why))
        del self.history[:-50]
        self.state = new
        self.since = time.monotonic()

    def _unpause_under(self, epoch):
        try:
            self.fence.run_if_current(epoch,
                                      lambda: self.cloud.unpause(self.copy))
        except fencing.StaleEpoch:
            self.counters['stale_epoch_refusals'] += 1
            LOG.warning('refused to unpause %s under stale epoch %d',
                        self.copy, epoch)
            raise

    # ------------------------------------------------------------ start
    def start(self):
        c = self.c
        epoch, holder = self.fence.current()
        LOG.info('agent %s starting: epoch %d held by %s; %d packets '
                 'buffered', self.id, epoch, holder, self.buffer.count)
        # never let traffic reach the copy before the role is known
        self.dataplane.start(dp.BUFFER)
        if epoch == 0 and c.initial_role == 'active':
            self.epoch = self.fence.claim(0)
            self._to(ACTIVATING, 'initial role active')
            self._unpause_under(self.epoch)
            self.dataplane.activate()
            self._to(ACTIVE)
        elif epoch and holder == self.id:
            self.epoch = epoch
            if self.cloud.is_running(self.copy):
                self._to(ACTIVATING, 'restart while holding the epoch')
                self.dataplane.activate()
                self._to(ACTIVE)
            else:
                # stopped in the middle of a handoff: decide by the epoch
                self._to(RECOVERING, 'restart with the copy paused')
                self._recover()
        else:
            self.cloud.pause(self.copy)
            self.epoch = epoch
            self._to(STANDBY, 'epoch %d held by %s' % (epoch, holder))
        self.peer_server = peer.PeerServer(self.codec, c.peer_listen_host,
                                           c.peer_listen_port,
                                           self._on_peer)
        self.peer_server.start()
        self._start_control()
        if c.metrics_port:
            from nova_netaware.replica import metrics
            metrics.serve(self, c.metrics_host, c.metrics_port)
        threading.Thread(target=self._policy_loop, daemon=True,
                         name='policy').start()

    def stop(self):
        self._stop.set()
        if self.peer_server:
            self.peer_server.stop()
        if self._ctl_sock:
            try:
                self._ctl_sock.close()
                os.unlink(self.c.control_socket)
            except OSError:
                pass
        self.dataplane.stop()
        self.fence.close()
        self.buffer.close()

    # ------------------------------------------------------------ switchover
    def switchover(self, reason='manual'):
        """Trigger a switchover from either side."""
        if reason == 'manual':
            self.counters['manual_triggers'] += 1
        if self.state == STANDBY:
            try:
                hdr, _ = peer.call(self.codec, self.c.peer_host,
                                   self.c.peer_port, 'request_handoff',
                                   {'reason': reason},
                                   timeout=self.c.handoff_timeout +
                                   self.c.peer_timeout + 5)
            except peer.PeerError as e:
                return {'ok': False, 'error': 'peer: %s' % e}
            return {'ok': bool(hdr.get('ok')), 'error': hdr.get('error'),
                    'result': hdr.get('result'), 'via': 'peer'}
        return self._handoff(reason)

    def _handoff(self, reason):
        with self._op:
            if self.state != ACTIVE:
                return {'ok': False, 'error': 'cannot hand off in state %s'
                        % self.state}
            t0 = time.monotonic()
            self._to(FENCING, reason)
            self.dataplane.fence()
            t_fenced = time.monotonic()
            try:
                blob = self.cloud.export_state(self.copy)
            except drivers.DriverError as e:
                LOG.error('export failed, staying active: %s', e)
                self.dataplane.activate()
                self._to(ACTIVE, 'export failed')
                self.counters['switchovers_failed'] += 1
                return {'ok': False, 'error': 'export: %s' % e}
            t_exported = time.monotonic()
            self.cloud.pause(self.copy)
            t_paused = time.monotonic()
            self._to(HANDING_OFF, '%d bytes of state' % len(blob))
            _test_hold('NNR_TEST_HOLD_HANDOFF')
            fields = {'epoch': self.epoch, 'sha256': blob.sha256,
                      'meta': blob.meta, 'reason': reason}
            try:
                hdr, _ = peer.call(self.codec, self.c.peer_host,
                                   self.c.peer_port, 'handoff', fields,
                                   blob.data, timeout=self.c.handoff_timeout)
            except peer.PeerError as e:
                LOG.error('handoff to peer failed: %s', e)
                hdr = {'ok': False, 'error': str(e)}
            if hdr.get('ok'):
                self.epoch = int(hdr['epoch'])
                self._to(STANDBY, 'peer active under epoch %d' % self.epoch)
                self.counters['switchovers_out'] += 1
                res = {'ok': True, 'direction': 'out', 'reason': reason,
                       'epoch': self.epoch, 'state_bytes': len(blob),
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
                       'replayed': hdr.get('replayed')}
                self.last_switchover = res
                return res
            self._to(RECOVERING, 'handoff not acknowledged: %s'
                     % hdr.get('error'))
            self.counters['switchovers_failed'] += 1
            self._recover()
            return {'ok': False, 'error': hdr.get('error'),
                    'state': self.state, 'epoch': self.epoch}

    def _recover(self):
        """Decide by the epoch alone whether to resume the paused copy."""
        with self._op:
            if self.state == FAILED:
                self._to(RECOVERING, 'retry')
            while not self._stop.is_set():
                try:
                    cur, holder = self.fence.current()
                    if holder == self.id and cur > self.epoch:
                        self.epoch = cur  # handed back by the peer
                        self.counters['handbacks'] += 1
                    elif holder == self.id and cur == self.epoch:
                        self.epoch = self.fence.claim(cur)
                    else:
                        self.epoch = cur
                        self._to(STANDBY, 'epoch %d held by %s'
                                 % (cur, holder))
                        return
                    self._unpause_under(self.epoch)
                    self.dataplane.activate()
                    self.counters['recoveries'] += 1
                    self._to(ACTIVE, 'recovered under epoch %d' % self.epoch)
                    return
                except fencing.StaleEpoch as e:
                    LOG.warning('recovery raced with a claim: %s', e)
                    continue
                except fencing.FenceError as e:
                    LOG.error('coordination backend unavailable, copy stays '
                              'paused: %s', e)
                    if self.state != FAILED:
                        self._to(FAILED, str(e))
                    self._stop.wait(1.0)
                    self._to(RECOVERING, 'retry')

    def _activate_from(self, hdr, body):
        """Peer handed us its state: take over (runs on the standby)."""
        with self._op:
            if self.state != STANDBY:
                return {'ok': False, 'error': 'not standby (state %s)'
                        % self.state}, b''
            t0 = time.monotonic()
            expected = int(hdr['epoch'])
            sender = hdr['sender']
            try:
                # transit is protected by the HMAC; the checksum is checked
                # by the copy that imports it (it refuses a mismatch)
                blob = drivers.StateBlob(body, hdr['sha256'],
                                         hdr.get('meta'), verify=False)
            except drivers.ChecksumMismatch as e:
                return {'ok': False, 'error': str(e)}, b''
            self._to(ACTIVATING, 'handoff from %s at epoch %d'
                     % (sender, expected))
            t_verified = time.monotonic()
            t_unpaused = None
            box = {}
            running_first = self.cloud.requires_running_for_import

            def unpause_now():
                box['claimed'] = time.monotonic()
                self.cloud.unpause(self.copy)
            try:
                # claim N+1 and, for a driver that imports into a running
                # copy, unpause under the same lock: no claim in between
                new = self.fence.claim(
                    expected, then=unpause_now if running_first else None)
            except (fencing.StaleEpoch, fencing.FenceError) as e:
                self.counters['stale_epoch_refusals'] += 1
                self._to(STANDBY, 'claim failed: %s' % e)
                return {'ok': False, 'error': 'claim: %s' % e}, b''
            except drivers.DriverError as e:
                # claimed, but the copy did not resume
                new = expected + 1
                box['error'] = e
            self.epoch = new
            t_claimed = box.get('claimed', time.monotonic())
            try:
                if 'error' in box:
                    raise box['error']
                if running_first:
                    t_unpaused = time.monotonic()
                    self.cloud.import_state(self.copy, blob, new)
                else:
                    self.cloud.import_state(self.copy, blob, new)
                    self._unpause_under(new)
            except Exception as e:
                LOG.error('import failed, handing the epoch back to %s: %s',
                          sender, e)
                try:
                    self.cloud.pause(self.copy)
                    back = self.fence.claim(new, holder=sender)
                    self.epoch = back
                    self._to(STANDBY, 'import failed, epoch %d handed back'
                             % back)
                except Exception as e2:
                    LOG.error('hand back failed: %s', e2)
                    self._to(FAILED, 'import and hand back failed')
                self.counters['switchovers_failed'] += 1
                return {'ok': False, 'error': 'import: %s' % e}, b''
            t_restored = time.monotonic()
            r = self.dataplane.activate()
            self._to(ACTIVE, 'restored %d bytes, replayed %d packets'
                     % (len(blob), r['replayed']))
            self.counters['switchovers_in'] += 1
            _test_hold('NNR_TEST_HOLD_ACK')
            res = {'ok': True, 'direction': 'in', 'epoch': new,
                   'reason': hdr.get('reason'), 'at': time.time(),
                   'state_bytes': len(blob), 'replayed': r['replayed'],
                   'replay_seconds': r['replay_seconds'],
                   'restore_s': t_restored - t0,
                   'steps_ms': {
                       'verify': 1e3 * (t_verified - t0),
                       'claim': 1e3 * (t_claimed - t_verified),
                       'unpause': 1e3 * ((t_unpaused or t_claimed) -
                                         t_claimed),
                       'import': 1e3 * (t_restored - (t_unpaused or
                                                      t_claimed)),
                       'replay': 1e3 * r['replay_seconds']},
                   'duration_s': time.monotonic() - t0,
                   'downtime_s': self._service_downtime(blob)}
            self.last_switchover = res
            threading.Thread(target=self._gc, daemon=True).start()
            return res, b''

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
        except drivers.DriverError:
            return None
        return (first - last) / 1e9 if first else None

    # ------------------------------------------------------------ peer
    def _on_peer(self, hdr, body):
        t = hdr['type']
        if t == 'handoff':
            return self._activate_from(hdr, body)
        if t == 'request_handoff':
            res = self._handoff('peer:%s' % hdr.get('reason'))
            return {'ok': res.get('ok', False), 'error': res.get('error'),
                    'result': res}, b''
        if t == 'ping':
            return {'ok': True, 'state': self.state, 'epoch': self.epoch}, b''
        return {'ok': False, 'error': 'unknown message type %r' % t}, b''

    # ------------------------------------------------------------ policy
    def policy_reason(self):
        c = self.c
        if self.state != STANDBY or self.buffer.count == 0:
            return None
        if c.policy_max_buffer_packets and \
                self.buffer.count >= c.policy_max_buffer_packets:
            return 'policy:buffer_depth'
        if c.policy_max_oldest_age and \
                self.buffer.oldest_age() >= c.policy_max_oldest_age:
            return 'policy:oldest_age'
        if c.policy_time_quantum and \
                time.monotonic() - self.since >= c.policy_time_quantum:
            return 'policy:time_quantum'
        return None

    def _policy_loop(self):
        backoff_until = 0.0
        while not self._stop.wait(self.c.policy_check_interval):
            try:
                if self.state == FAILED:
                    self._recover()
                    continue
                reason = self.policy_reason()
                if reason and time.monotonic() >= backoff_until:
                    self.counters['policy_triggers'] += 1
                    LOG.info('switchover triggered by %s', reason)
                    res = self.switchover(reason)
                    if not res.get('ok'):
                        LOG.warning('policy switchover failed: %s',
                                    res.get('error'))
                        backoff_until = time.monotonic() + 1.0
            except Exception:
                LOG.exception('policy evaluation failed')
                backoff_until = time.monotonic() + 1.0

    # ------------------------------------------------------------ status
    def status(self):
        b = self.buffer
        try:
            cur = self.fence.current()
        except Exception as e:
            cur = ('unavailable: %s' % e, None)
        try:
            running = self.cloud.is_running(self.copy)
        except drivers.DriverError as e:
            running = 'unknown: %s' % e
        return {
            'agent_id': self.id, 'service': self.c.service_name,
            'state': self.state, 'role': ROLE[self.state],
            'epoch': self.epoch, 'current_epoch': cur[0],
            'epoch_holder': cur[1], 'copy': self.copy,
            'copy_running': running,
            'in_state_for_s': time.monotonic() - self.since,
            'buffer': {'packets': b.count, 'bytes': b.nbytes,
                       'oldest_age_s': b.oldest_age(),
                       'max_packets': b.max_packets,
                       'max_bytes': b.max_bytes,
                       'overflow_policy': self.c.overflow_policy},
            'last_switchover': self.last_switchover,
            'counters': dict(self.counters),
            'dataplane': self.dataplane.stats(),
            'peer_rejected': dict(self.codec.rejected),
            'pid': os.getpid(),
        }

    # ------------------------------------------------------------ control
    def _start_control(self):
        path = self.c.control_socket
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        os.chmod(path, 0o600)
        s.listen(8)
        self._ctl_sock = s
        threading.Thread(target=self._control_loop, daemon=True,
                         name='control').start()

    def _control_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._ctl_sock.accept()
            except OSError:
                return
            threading.Thread(target=self._control_conn, args=(conn,),
                             daemon=True).start()

    def _control_conn(self, conn):
        with conn:
            try:
                req = json.loads(conn.makefile('rb').readline(65536))
                op = req['op']
            except (ValueError, KeyError, TypeError, OSError):
                res = {'ok': False, 'error': 'bad request: expected a JSON '
                                             'line with "op"'}
            else:
                try:
                    if op == 'status':
                        res = {'ok': True, 'status': self.status()}
                    elif op == 'switchover':
                        res = self.switchover('manual')
                    else:
                        res = {'ok': False, 'error': 'unknown op %r (status, '
                                                     'switchover)' % (op,)}
                except Exception as e:
                    LOG.exception('control op %s failed', op)
                    res = {'ok': False, 'error': str(e)}
            try:
                conn.sendall(json.dumps(res, default=str).encode() + b'\n')
            except OSError:
                pass


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
