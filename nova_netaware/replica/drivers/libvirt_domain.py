"""Cloud driver ``libvirt``: the copy is a libvirt domain on this
hypervisor (``[replica] copy_name``, at ``[replica] libvirt_uri``).

Pause is ``virDomainSuspend`` (QEMU stops the vCPUs; the guest's memory and
devices stay, as Nova's ``pause``), unpause is ``virDomainResume``. It is
the fast path an ``openstack`` driver takes on the hypervisor: Nova itself
pauses a server through the same call (``LibvirtDriver.pause`` ->
``guest.suspend()``).

Both are on the switchover's critical path, so they make as few libvirt
RPCs as they can. libvirt's QEMU driver returns from ``virDomainSuspend`` /
``virDomainResume`` only after QEMU's monitor acknowledged ``stop`` /
``cont`` (the vCPUs are stopped or running by then), and treats a domain
already in the wanted state as done; so there is no state check before the
call. After a pause, libvirt's view is read until it shows PAUSED (its STOP
event handler sets it; normally the first read does): the rule "never two
copies running" is checked against that view. After an unpause nothing is
read: the new copy's import follows at once and fails if it does not run.
If a call fails, the state is read once: already in the wanted state is
success (other drivers, such as libvirt's ``test://`` one, refuse to
suspend a paused domain), anything else is a :class:`DriverError` naming
the state.

The connection and the domain handle are looked up once and kept; both are
looked up again once if libvirtd restarted or the domain was redefined.
"""

import threading
import time

from nova_netaware.replica.drivers import CloudDriver, DriverError

try:
    import libvirt
except ImportError:  # reported when the driver is built
    libvirt = None


def _state_name(state):
    names = {1: 'running', 2: 'blocked', 3: 'paused', 4: 'shutdown',
             5: 'shutoff', 6: 'crashed', 7: 'pmsuspended', 0: 'nostate'}
    return names.get(state, str(state))


class LibvirtCloudDriver(CloudDriver):

    requires_running_for_import = True

    def __init__(self, conf, state_driver, domain_name=None, uri=None):
        super().__init__(conf, state_driver)
        if libvirt is None:
            raise DriverError('the libvirt cloud driver needs libvirt-python '
                              '(pip install libvirt-python; apt-get install '
                              'libvirt-dev pkg-config to build it)')
        c = conf.replica
        domain_name = domain_name or c.copy_name
        if not domain_name:
            raise DriverError('[replica] copy_name (the libvirt domain name) '
                              'is required by the libvirt cloud driver')
        self.uri = uri or c.libvirt_uri
        self.domain_name = domain_name
        self._conn = None
        self._dom = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ libvirt
    def _connect(self):
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as e:
            raise DriverError('cannot connect to libvirt at %s: %s'
                              % (self.uri, e))
        if conn is None:
            raise DriverError('cannot connect to libvirt at %s' % self.uri)
        return conn

    _RECONNECT = ('VIR_ERR_SYSTEM_ERROR', 'VIR_ERR_INTERNAL_ERROR',
                  'VIR_ERR_RPC', 'VIR_ERR_INVALID_CONN',
                  'VIR_ERR_INVALID_DOMAIN', 'VIR_ERR_NO_CONNECT')

    def _stale(self, e):
        """Whether error ``e`` may come from a dead connection or a stale
        domain handle (worth one fresh lookup)."""
        code = e.get_error_code()
        return any(code == getattr(libvirt, n, None) for n in self._RECONNECT)

    def _domain(self):
        """The kept domain handle, looked up (and connected) if there is
        none. A lookup error that a fresh connection may cure is raised as
        is, for :meth:`_with_domain` to retry."""
        with self._lock:
            if self._dom is not None:
                return self._dom
            if self._conn is None:
                self._conn = self._connect()
            try:
                self._dom = self._conn.lookupByName(self.domain_name)
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    raise DriverError('domain %s does not exist at %s'
                                      % (self.domain_name, self.uri))
                if not self._stale(e):
                    raise DriverError('libvirt lookup of %s: %s'
                                      % (self.domain_name, e))
                raise
            return self._dom

    def _forget(self):
        """Drop the domain handle and the connection: the next call looks
        both up again."""
        with self._lock:
            self._dom = None
            if self._conn is not None:
                try:
                    self._conn.close()
                except libvirt.libvirtError:
                    pass
                self._conn = None

    def _with_domain(self, fn):
        """``fn(domain)``; once more with a fresh connection and handle if
        the first attempt (lookup included) failed on a stale one."""
        try:
            return fn(self._domain())
        except libvirt.libvirtError as e:
            if not self._stale(e) and \
                    e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise
        self._forget()
        return fn(self._domain())

    def state(self, copy=None):
        """libvirt's state of the domain, as a name (running, paused...)."""
        try:
            st, _reason = self._with_domain(lambda d: d.state())
        except libvirt.libvirtError as e:
            raise DriverError('state of %s: %s' % (self.domain_name, e))
        return _state_name(st)

    def _act(self, copy, call, want, confirm=False):
        """One RPC (``call``), then, if ``confirm``, reads until libvirt
        shows ``want``. On failure, success if the domain is already
        ``want``, else a DriverError naming its state."""
        try:
            self._with_domain(lambda d: getattr(d, call)())
            if confirm:
                self._confirm(copy, call, want)
            return
        except libvirt.libvirtError as e:
            err = e
        try:
            name = self.state()
        except DriverError:
            name = None
        if name == want:
            return
        raise DriverError('%s of domain %s (copy %s): %s%s'
                          % (call, self.domain_name, copy, err,
                             ' (domain is %s)' % name if name else ''))

    CONFIRM_WAIT = 10.0

    def _confirm(self, copy, call, want):
        deadline = time.monotonic() + self.CONFIRM_WAIT
        while True:
            name = self.state()
            if name == want:
                return
            if name in ('shutoff', 'crashed', 'shutdown'):
                raise DriverError('domain %s is %s after %s (copy %s)'
                                  % (self.domain_name, name, call, copy))
            if time.monotonic() > deadline:
                raise DriverError('domain %s still %s %.0f s after %s '
                                  '(copy %s)' % (self.domain_name, name,
                                                 self.CONFIRM_WAIT, call,
                                                 copy))
            time.sleep(0.001)

    # ------------------------------------------------------------ driver
    def pause(self, copy):
        self._act(copy, 'suspend', 'paused', confirm=True)

    def unpause(self, copy):
        self._act(copy, 'resume', 'running')

    def is_running(self, copy):
        name = self.state(copy)
        if name in ('shutoff', 'crashed', 'shutdown', 'nostate'):
            raise DriverError('domain %s is %s' % (self.domain_name, name))
        return name != 'paused' and name != 'pmsuspended'

    def close(self):
        self._forget()
