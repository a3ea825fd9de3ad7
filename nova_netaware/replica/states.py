"""The switchover state machine of the replica agent.

States, the transitions allowed between them, the role each state shows in
the status and the metrics, and :class:`StateMachine`, which checks and logs
every transition and keeps a short history. No I/O: the agent and the
switchover drive it.
"""

import logging
import time

from nova_netaware.replica.errors import InvalidTransition

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
    # RECOVERING: the epoch was handed back to a copy already standby
    STANDBY: {ACTIVATING, RECOVERING},
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

HISTORY = 50  # transitions kept


class StateMachine:
    """The agent's state and fencing epoch; :meth:`to` is the only way to
    change the state."""

    def __init__(self, state=INIT, epoch=0):
        self.state = state
        self.epoch = epoch
        self.since = time.monotonic()
        self.history = []  # (time, from, to, epoch, why), bounded

    @property
    def role(self):
        return ROLE[self.state]

    def in_state_for(self):
        """Seconds since the last transition."""
        return time.monotonic() - self.since

    def to(self, new, why=''):
        """Move to ``new`` if :data:`TRANSITIONS` allows it, else raise
        :class:`InvalidTransition` and keep the state."""
        if new not in TRANSITIONS[self.state]:
            raise InvalidTransition('%s -> %s is not allowed'
                                    % (self.state, new))
        LOG.info('state %s -> %s (epoch %d)%s', self.state, new, self.epoch,
                 (': ' + why) if why else '')
        self.history.append((time.time(), self.state, new, self.epoch, why))
        del self.history[:-HISTORY]
        self.state = new
        self.since = time.monotonic()
