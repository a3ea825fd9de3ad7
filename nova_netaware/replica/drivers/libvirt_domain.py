"""Cloud driver ``libvirt``: the copy is a libvirt domain on this
hypervisor (``[replica] copy_name``, at ``[replica] libvirt_uri``).

Pause is ``virDomainSuspend`` (QEMU stops the vCPUs; the guest's memory and
devices stay, as Nova's ``pause``), unpause is ``virDomainResume``; both
return only once libvirt reports the domain PAUSED or RUNNING. It is the
fast path an ``openstack`` driver takes on the hypervisor: Nova itself pauses
a server through the same call (``LibvirtDriver.pause`` ->
``guest.suspend()``).

One connection is opened lazily and reopened once if libvirtd restarted.
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
    WAIT = 10.0

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

    def _domain(self, retry=True):
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            try:
                return self._conn.lookupByName(self.domain_name)
            except libvirt.libvirtError as e:
                code = e.get_error_code()
                if code == libvirt.VIR_ERR_NO_DOMAIN:
                    raise DriverError('domain %s does not exist at %s'
                                      % (self.domain_name, self.uri))
                if retry and code in (libvirt.VIR_ERR_SYSTEM_ERROR,
                                      libvirt.VIR_ERR_INTERNAL_ERROR,
                                      libvirt.VIR_ERR_RPC,
                                      libvirt.VIR_ERR_INVALID_CONN):
                    self._conn = None
                else:
                    raise DriverError('libvirt lookup of %s: %s'
                                      % (self.domain_name, e))
        return self._domain(retry=False)

    def state(self, copy=None):
        """libvirt's state of the domain, as a name (running, paused...)."""
        try:
            st, _reason = self._domain().state()
        except libvirt.libvirtError as e:
            raise DriverError('state of %s: %s' % (self.domain_name, e))
        return _state_name(st)

    def _act(self, copy, call, want):
        dom = self._domain()
        try:
            st, _ = dom.state()
            if _state_name(st) != want:
                getattr(dom, call)()
        except libvirt.libvirtError as e:
            raise DriverError('%s of domain %s (copy %s): %s'
                              % (call, self.domain_name, copy, e))
        deadline = time.monotonic() + self.WAIT
        while True:
            try:
                st, _ = dom.state()
            except libvirt.libvirtError as e:
                raise DriverError('state of %s: %s' % (self.domain_name, e))
            name = _state_name(st)
            if name == want:
                return
            if name in ('shutoff', 'crashed', 'shutdown'):
                raise DriverError('domain %s is %s' % (self.domain_name,
                                                       name))
            if time.monotonic() > deadline:
                raise DriverError('domain %s still %s after %s'
                                  % (self.domain_name, name, call))
            time.sleep(0.001)

    # ------------------------------------------------------------ driver
    def pause(self, copy):
        self._act(copy, 'suspend', 'paused')

    def unpause(self, copy):
        self._act(copy, 'resume', 'running')

    def is_running(self, copy):
        name = self.state(copy)
        if name in ('shutoff', 'crashed', 'shutdown', 'nostate'):
            raise DriverError('domain %s is %s' % (self.domain_name, name))
        return name != 'paused' and name != 'pmsuspended'

    def close(self):
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except libvirt.libvirtError:
                    pass
                self._conn = None
