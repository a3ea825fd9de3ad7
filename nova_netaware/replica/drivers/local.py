"""Cloud driver ``local``: the copy is a process (in a network namespace)
whose pid is in ``[replica] local_pid_file``. Pause is SIGSTOP and unpause
SIGCONT, like Nova's pause of a VM's vCPUs; both wait until /proc shows the
process stopped or running."""

import os
import signal
import time

from nova_netaware.replica.drivers import CloudDriver, DriverError


def proc_state(pid):
    """Single-letter state of ``pid`` from /proc (R, S, T, t, Z, ...)."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        raise DriverError('process %d does not exist' % pid)
    return data[data.rindex(b')') + 2:][:1].decode()


class LocalCloudDriver(CloudDriver):

    requires_running_for_import = True
    WAIT = 5.0

    def __init__(self, conf, state_driver):
        super().__init__(conf, state_driver)
        if not conf.replica.local_pid_file:
            raise DriverError('[replica] local_pid_file is required by the '
                              'local cloud driver')
        self.pid_file = conf.replica.local_pid_file

    def pid(self, copy=None):
        deadline = time.monotonic() + self.WAIT
        while True:
            try:
                with open(self.pid_file) as f:
                    return int(f.read().strip())
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    raise DriverError('pid file %s of copy %s does not exist'
                                      % (self.pid_file, copy))
                time.sleep(0.02)
            except ValueError:
                raise DriverError('pid file %s does not hold a pid'
                                  % self.pid_file)

    def _signal_and_wait(self, copy, sig, want_stopped):
        pid = self.pid(copy)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            raise DriverError('copy %s (pid %d) is gone' % (copy, pid))
        now = time.monotonic()
        deadline = now + self.WAIT
        spin_until = now + 0.002  # the first 2 ms: yield, do not sleep
        while True:
            st = proc_state(pid)
            if (st in 'Tt') == want_stopped and st != 'Z':
                return
            if st == 'Z':
                raise DriverError('copy %s (pid %d) is a zombie' % (copy, pid))
            if time.monotonic() > deadline:
                raise DriverError('copy %s (pid %d) still in state %s'
                                  % (copy, pid, st))
            if time.monotonic() < spin_until:
                os.sched_yield()
            else:
                time.sleep(0.0002)

    def pause(self, copy):
        self._signal_and_wait(copy, signal.SIGSTOP, True)

    def unpause(self, copy):
        self._signal_and_wait(copy, signal.SIGCONT, False)

    def is_running(self, copy):
        return proc_state(self.pid(copy)) not in 'Tt'
