"""The replica agent: ties the state machine, the switchover, the peer
channel, the policy triggers, the control API and the metrics together.

The switchover protocol is described in :mod:`.switchover`, the states in
:mod:`.states`, the control API in :mod:`.control`.
"""

import logging
import os
import threading
import time

from nova_netaware.replica import buffer as buffer_mod
from nova_netaware.replica import dataplane as dp
from nova_netaware.replica import drivers
from nova_netaware.replica import fencing
from nova_netaware.replica import peer
from nova_netaware.replica.control import ControlServer
from nova_netaware.replica.errors import AgentError
# importable here, as before the state machine had its own module
from nova_netaware.replica.errors import InvalidTransition  # noqa: F401
from nova_netaware.replica.states import (ACTIVATING, ACTIVE, FAILED,
                                          RECOVERING, ROLE, STANDBY,
                                          StateMachine)
from nova_netaware.replica.switchover import Switchover

LOG = logging.getLogger(__name__)


def scheduling(tid=0):
    """``(policy, priority)`` of thread ``tid`` (0: the calling thread):
    ``'fifo'``, ``'rr'`` or ``'other'`` (any time-sharing class)."""
    pol = os.sched_getscheduler(tid)
    name = {os.SCHED_FIFO: 'fifo', os.SCHED_RR: 'rr'}.get(pol, 'other')
    return name, os.sched_getparam(tid).sched_priority


class Agent:

    def __init__(self, conf):
        self.conf = conf
        c = conf.replica
        self.c = c
        self.id = c.agent_id
        self.copy = c.copy_name
        self.machine = StateMachine()
        self.counters = {'switchovers_out': 0, 'switchovers_in': 0,
                         'switchovers_failed': 0, 'recoveries': 0,
                         'stale_epoch_refusals': 0, 'policy_triggers': 0,
                         'manual_triggers': 0, 'handbacks': 0,
                         'takeovers_abandoned': 0}
        self.op_lock = threading.RLock()
        self.stopping = threading.Event()
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
        self.switch = Switchover(self)
        self.peer_server = None
        self.control = None

    @property
    def state(self):
        return self.machine.state

    @property
    def epoch(self):
        return self.machine.epoch

    # ------------------------------------------------------------ start
    def start(self):
        c = self.c
        m = self.machine
        epoch, holder = self.fence.current()
        LOG.info('agent %s starting: epoch %d held by %s; %d packets '
                 'buffered', self.id, epoch, holder, self.buffer.count)
        # never let traffic reach the copy before the role is known
        self.dataplane.start(dp.BUFFER)
        if epoch == 0 and c.initial_role == 'active':
            m.epoch = self.fence.claim(0)
            m.to(ACTIVATING, 'initial role active')
            self.switch.unpause_under(m.epoch)
            self.dataplane.activate()
            m.to(ACTIVE)
        elif epoch and holder == self.id:
            m.epoch = epoch
            sender = self.switch.pending_takeover(epoch)
            if sender:
                # stopped between the claim and the import: the peer has
                # the newest state
                self.switch.abandon_takeover(epoch, sender)
            elif self.cloud.is_running(self.copy):
                m.to(ACTIVATING, 'restart while holding the epoch')
                self.dataplane.activate()
                m.to(ACTIVE)
            else:
                # stopped in the middle of a handoff: decide by the epoch
                m.to(RECOVERING, 'restart with the copy paused')
                self.switch.recover()
        else:
            self.switch.clear_takeover()  # one overtaken since: gone
            self.cloud.pause(self.copy)
            m.epoch = epoch
            m.to(STANDBY, 'epoch %d held by %s' % (epoch, holder))
        self.peer_server = peer.PeerServer(self.codec, c.peer_listen_host,
                                           c.peer_listen_port,
                                           self._on_peer)
        self.peer_server.start()
        self.control = ControlServer(c.control_socket, {
            'status': lambda: {'ok': True, 'status': self.status()},
            'switchover': lambda: self.switchover('manual')})
        self.control.start()
        if c.metrics_port:
            # imported here: prometheus_client is needed only with metrics
            from nova_netaware.replica import metrics
            metrics.serve(self.status, c.metrics_host, c.metrics_port)
        threading.Thread(target=self._policy_loop, daemon=True,
                         name='policy').start()

    def stop(self):
        self.stopping.set()
        if self.peer_server:
            self.peer_server.stop()
        if self.control:
            self.control.stop()
        self.dataplane.stop()
        self.fence.close()
        self.buffer.close()

    def switchover(self, reason='manual'):
        """Trigger a switchover from either side."""
        return self.switch.trigger(reason)

    # ------------------------------------------------------------ peer
    def _on_peer(self, hdr, body, channel):
        t = hdr['type']
        if t == 'takeover':
            return self.switch.activate_from(hdr, body, channel)
        if t == 'request_handoff':
            res = self.switch.handoff('peer:%s' % hdr.get('reason'))
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
                self.machine.in_state_for() >= c.policy_time_quantum:
            return 'policy:time_quantum'
        return None

    #: seconds between two looks at the epoch by a standby copy
    HANDBACK_CHECK_S = 1.0

    def _policy_loop(self):
        backoff_until = 0.0
        next_look = 0.0
        while not self.stopping.wait(self.c.policy_check_interval):
            try:
                if self.state == FAILED:
                    if time.monotonic() >= backoff_until:
                        self.switch.recover()
                        if self.state == FAILED:  # once a second at most
                            backoff_until = time.monotonic() + 1.0
                    continue
                now = time.monotonic()
                if self.state == STANDBY and now >= next_look:
                    next_look = now + self.HANDBACK_CHECK_S
                    if self.switch.resume_if_handed_back():
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
            'in_state_for_s': self.machine.in_state_for(),
            'buffer': {'packets': b.count, 'bytes': b.nbytes,
                       'oldest_age_s': b.oldest_age(),
                       'max_packets': b.max_packets,
                       'max_bytes': b.max_bytes,
                       'overflow_policy': self.c.overflow_policy},
            'last_switchover': self.switch.last,
            'counters': dict(self.counters),
            'dataplane': self.dataplane.stats(),
            'peer_rejected': dict(self.codec.rejected),
            'pid': os.getpid(),
            'scheduling': dict(zip(('policy', 'priority'), scheduling()),
                               nice=os.getpriority(os.PRIO_PROCESS, 0)),
        }
