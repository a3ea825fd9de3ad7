"""Carry out a rebalance plan through the normal Nova API.

Each move is a cold migration (then confirmed) or a live migration, with no
target host: Nova's scheduler, running the nova-netaware filter and weigher,
makes the final choice; the plan only *predicts* it. Moves run one at a
time; each is waited for with a progress bar, and the first failure stops
the run with a description of the state the cloud is left in.
"""

import dataclasses
import sys
import time
from typing import Optional

from nova_netaware.osc.cloud import CloudError

# Progress phases of a migration record (Nova's Migration.status) and of
# the server, as a fraction of the move.
_PHASES = {
    'accepted': 0.1, 'queued': 0.1, 'pre-migrating': 0.25,
    'preparing': 0.25, 'running': 0.5, 'migrating': 0.5,
    'post-migrating': 0.75, 'finished': 0.85, 'confirming': 0.9,
    'completed': 1.0, 'confirmed': 1.0, 'done': 1.0,
}
_FAILED = {'error', 'failed', 'cancelled', 'reverted', 'rejected'}


@dataclasses.dataclass
class Outcome:
    server: str
    name: str
    source: str
    predicted: str
    actual: Optional[str] = None
    status: str = 'not started'     # moved / failed / not started / skipped
    detail: str = ''
    seconds: float = 0.0


class Progress(object):
    """A one-line progress bar on a stream (redrawn with \\r on a tty,
    printed once per change otherwise, so logs stay readable)."""

    def __init__(self, stream=None, width=24):
        self.stream = stream or sys.stderr
        self.width = width
        self._last = None
        self.tty = hasattr(self.stream, 'isatty') and self.stream.isatty()

    def update(self, label, fraction, phase, elapsed):
        n = int(round(max(0.0, min(1.0, fraction)) * self.width))
        line = '%s [%s%s] %3d%% %s (%.0fs)' % (
            label, '#' * n, '.' * (self.width - n), fraction * 100, phase,
            elapsed)
        key = (label, n, phase)
        if self.tty:
            self.stream.write('\r' + line.ljust(100))
            self.stream.flush()
        elif key != self._last:
            self.stream.write(line + '\n')
            self.stream.flush()
        self._last = key

    def done(self):
        if self.tty:
            self.stream.write('\n')
            self.stream.flush()


class Executor(object):

    def __init__(self, cloud, live=False, timeout=600.0, poll=0.5,
                 progress=None, clock=time.monotonic, sleep=time.sleep):
        self.cloud = cloud
        self.live = live
        self.timeout = timeout
        self.poll = poll
        self.progress = progress or Progress()
        self.clock = clock
        self.sleep = sleep

    def run(self, steps, names):
        """Execute the moves of *steps* in order. Returns ``(outcomes,
        state)``; *state* describes the cloud after a failure ('' if
        every move succeeded)."""
        moves = [s for s in steps if s.destination]
        outcomes = [Outcome(s.server, names.get(s.server, s.server),
                            s.source, s.destination) for s in moves]
        for k, (step, out) in enumerate(zip(moves, outcomes)):
            try:
                self._one(step, out, k + 1, len(moves))
            except CloudError as e:
                out.status = 'failed'
                out.detail = str(e)
                return outcomes, self._state(outcomes, k)
        return outcomes, ''

    # -- one move ---------------------------------------------------------------
    def _one(self, step, out, k, total):
        t0 = self.clock()
        srv = self.cloud.server(step.server)
        if srv.host != step.source:
            raise CloudError('server %s is on %s, not on %s as planned: the '
                             'cloud changed since the plan; nothing done for '
                             'it' % (out.name, srv.host, step.source))
        if srv.status != 'ACTIVE' or srv.task_state:
            raise CloudError('server %s is %s (task %s), not ACTIVE; nothing '
                             'done for it' % (out.name, srv.status,
                                              srv.task_state))
        before = {m.id for m in self.cloud.migrations(step.server)}
        label = '[%d/%d] %s %s %s -> ?' % (
            k, total, 'live-migrating' if self.live else 'migrating',
            out.name, step.source)
        self.progress.update(label, 0.0, 'requested', 0.0)
        self.cloud.migrate(step.server, self.live)   # CloudError: untouched
        out.status = 'started'
        srv, mig = self._wait(step, out, before, label, t0)
        if not self.live:
            self.progress.update(label, 0.9, 'confirming',
                                 self.clock() - t0)
            self.cloud.confirm_resize(step.server)
            srv = self._wait_state(step.server, label, t0, {'ACTIVE'},
                                   'confirmed')
        self.progress.update(label.replace('-> ?', '-> %s' % srv.host), 1.0,
                             'done', self.clock() - t0)
        self.progress.done()
        out.actual = srv.host
        out.seconds = self.clock() - t0
        out.status = 'moved' if srv.host != step.source else 'failed'
        out.detail = ('as predicted' if srv.host == step.destination else
                      'Nova chose %s, the plan predicted %s' % (
                          srv.host, step.destination))
        if srv.host == step.source:
            raise CloudError('server %s is still on %s after the migration '
                             'finished' % (out.name, step.source))

    def _wait(self, step, out, before, label, t0):
        """Wait for the new migration to finish (cold: VERIFY_RESIZE)."""
        target = 'VERIFY_RESIZE' if not self.live else 'ACTIVE'
        while True:
            elapsed = self.clock() - t0
            mig = None
            new = [m for m in self.cloud.migrations(step.server)
                   if m.id not in before]
            if new:
                mig = new[-1]
            srv = self.cloud.server(step.server)
            phase = mig.status if mig else 'scheduling'
            if mig and mig.status in _FAILED:
                srv = self._settle(step.server)
                raise CloudError(
                    'the %s of server %s failed (migration %s: %s); server '
                    'is %s on %s' % (
                        'live migration' if self.live else 'migration',
                        out.name, mig.id, mig.status, srv.status, srv.host))
            if srv.status == 'ERROR':
                raise CloudError('server %s went to ERROR during its '
                                 'migration (host %s)' % (out.name, srv.host))
            finished = (srv.status == target and not srv.task_state and
                        mig is not None and
                        (not self.live or mig.status in ('completed', 'done')
                         or srv.host != step.source))
            if finished:
                return srv, mig
            self.progress.update(label, _PHASES.get(phase, 0.05), phase,
                                 elapsed)
            if elapsed > self.timeout:
                raise CloudError(
                    'timed out after %.0fs waiting for server %s (status %s,'
                    ' task %s, migration %s); it may still complete: check '
                    '"openstack server migration list --server %s"' % (
                        elapsed, out.name, srv.status, srv.task_state,
                        phase, step.server))
            self.sleep(self.poll)

    def _settle(self, server_id, limit=30.0):
        """After a failure, give Nova a moment to finish its clean-up
        (task state cleared) so that the reported state is the final one."""
        t0 = self.clock()
        while True:
            srv = self.cloud.server(server_id)
            if not srv.task_state and srv.status not in ('RESIZE',
                                                          'MIGRATING'):
                return srv
            if self.clock() - t0 > limit:
                return srv
            self.sleep(self.poll)

    def _wait_state(self, server_id, label, t0, states, phase):
        while True:
            srv = self.cloud.server(server_id)
            if srv.status in states and not srv.task_state:
                return srv
            if srv.status == 'ERROR':
                raise CloudError('server %s went to ERROR' % server_id)
            if self.clock() - t0 > self.timeout:
                raise CloudError('timed out waiting for %s to become %s'
                                 % (server_id, '/'.join(states)))
            self.progress.update(label, 0.95, phase, self.clock() - t0)
            self.sleep(self.poll)

    # -- after a failure ----------------------------------------------------------
    def _state(self, outcomes, failed):
        """Describe where every server of the plan is now."""
        lines = []
        done = outcomes[:failed]
        if done:
            lines.append('%d move(s) completed before the failure: %s.' % (
                len(done), ', '.join('%s %s -> %s' % (o.name, o.source,
                                                      o.actual)
                                     for o in done)))
        else:
            lines.append('No server was moved.')
        bad = outcomes[failed]
        try:
            srv = self.cloud.server(bad.server)
            where = '%s is %s on %s%s' % (
                bad.name, srv.status, srv.host,
                ' (task %s)' % srv.task_state if srv.task_state else '')
            if srv.status == 'VERIFY_RESIZE':
                where += ('; confirm or revert it with "openstack server '
                          'migration confirm|revert %s"' % bad.server)
        except CloudError as e:
            where = 'state of %s unknown: %s' % (bad.name, e)
        lines.append('Failed: %s. %s.' % (bad.detail.rstrip('.'), where))
        rest = outcomes[failed + 1:]
        if rest:
            lines.append('Not started: %s (they stay where they are).' %
                         ', '.join('%s on %s' % (o.name, o.source)
                                   for o in rest))
        return ' '.join(lines)
