"""Cloud driver ``openstack``: the copy is a Nova server, reached with
openstacksdk through ``clouds.yaml``.

``[replica] openstack_control`` chooses how the copy is paused:

* ``libvirt`` (default; the agent runs on the server's hypervisor): the
  fast path. ``virDomainSuspend`` / ``virDomainResume`` of the server's
  domain (its ``OS-EXT-SRV-ATTR:instance_name``) at ``libvirt_uri``, the
  same call Nova's ``LibvirtDriver.pause`` makes, without the API, the
  message bus and the compute manager on the critical path. Nova keeps the
  server's record ``ACTIVE`` and follows the domain through libvirt's
  lifecycle events: ``ComputeManager.handle_lifecycle_event`` ->
  ``_sync_instance_power_state`` writes ``power_state`` PAUSED (3) or
  RUNNING (1) and, for a paused domain under an ACTIVE record, logs
  "Instance is paused unexpectedly. Ignore." and changes nothing else
  (nova/compute/manager.py, bug 1097806); the periodic
  ``sync_power_state_interval`` task does the same if an event is lost.
  So the API shows the truth in ``OS-EXT-STS:power_state``: after each
  pause or unpause this driver waits, off the critical path, until Nova's
  ``power_state`` matches the domain (``openstack_settle_timeout``) and
  counts ``api_settled`` / ``api_unsettled``; :meth:`wait_settled` lets a
  caller (a test, the end of a switchover) wait for it.
* ``api``: ``pause_server`` / ``unpause_server`` through Nova's API, waiting
  until the server's status is PAUSED / ACTIVE (``openstack_api_timeout``).
  Slower (seconds, see docs/replica.md), for an agent that is not on the
  server's hypervisor; the record's status itself is PAUSED while paused.

``is_running`` reads libvirt on the fast path (what runs is what the
hypervisor says) and Nova's status and power_state with ``api``; a server
that is neither running nor paused (SHUTOFF, ERROR, gone) is an error.
"""

import logging
import threading
import time

from nova_netaware.replica.drivers import CloudDriver, DriverError

LOG = logging.getLogger(__name__)

RUNNING, PAUSED = 1, 3      # nova.compute.power_state
CONTROLS = ('libvirt', 'api')


def _connect(cloud, config_file):
    try:
        import openstack
        from openstack import config as os_config
    except ImportError as e:
        raise DriverError('the openstack cloud driver needs openstacksdk: '
                          '%s' % e)
    try:
        loader = os_config.OpenStackConfig(
            config_files=[config_file] if config_file else None)
        region = loader.get_one(cloud=cloud)
        return openstack.connection.Connection(config=region)
    except Exception as e:  # os-client-config raises several kinds
        raise DriverError('cannot load cloud %r from clouds.yaml%s: %s'
                          % (cloud, ' (%s)' % config_file if config_file
                             else '', e))


class OpenStackCloudDriver(CloudDriver):

    requires_running_for_import = True

    def __init__(self, conf, state_driver, conn=None):
        super().__init__(conf, state_driver)
        c = conf.replica
        self.control = c.openstack_control
        if self.control not in CONTROLS:
            raise DriverError('unknown openstack_control %r (one of %s)'
                              % (self.control, ', '.join(CONTROLS)))
        self.server_ref = c.openstack_server or c.copy_name
        if not self.server_ref:
            raise DriverError('[replica] openstack_server (or copy_name) '
                              'must name the Nova server of the copy')
        self.api_timeout = c.openstack_api_timeout
        self.settle_timeout = c.openstack_settle_timeout
        self.conn = conn or _connect(c.openstack_cloud,
                                     c.openstack_config_file)
        self._server_id = None
        self._libvirt = None
        self.counters = {'api_settled': 0, 'api_unsettled': 0}
        self.last_settle = None
        self._gen = 0
        self._settled = threading.Event()
        self._settled.set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ Nova
    def server(self):
        """The server record, fresh from Nova (admin fields included)."""
        try:
            if self._server_id is None:
                s = self.conn.compute.find_server(self.server_ref,
                                                  ignore_missing=True)
                if s is None:   # an admin's clouds.yaml: any project
                    s = self.conn.compute.find_server(
                        self.server_ref, ignore_missing=True,
                        all_projects=True)
                if s is None:
                    raise DriverError('no Nova server %r'
                                      % (self.server_ref,))
                self._server_id = s.id
            return self.conn.compute.get_server(self._server_id)
        except DriverError:
            raise
        except Exception as e:  # openstack.exceptions.* and keystoneauth
            raise DriverError('Nova server %s: %s' % (self.server_ref, e))

    def api_view(self):
        """(status, power_state, task_state) as Nova's API shows them."""
        s = self.server()
        return s.status, s.power_state, s.task_state

    def _libvirt_driver(self):
        if self._libvirt is None:
            from nova_netaware.replica.drivers.libvirt_domain import \
                LibvirtCloudDriver
            s = self.server()
            if not s.instance_name:
                raise DriverError('server %s shows no instance_name (the '
                                  'libvirt domain): the fast path needs an '
                                  'admin of clouds.yaml' % self.server_ref)
            self._libvirt = LibvirtCloudDriver(self.conf, None,
                                               domain_name=s.instance_name)
        return self._libvirt

    # ------------------------------------------------------------ API path
    def _api_act(self, copy, action, want_status):
        s = self.server()
        if s.status == want_status and s.task_state is None:
            return
        if s.status not in ('ACTIVE', 'PAUSED'):
            raise DriverError('server %s is %s, cannot %s it'
                              % (self.server_ref, s.status, action))
        try:
            getattr(self.conn.compute, action + '_server')(s)
            self.conn.compute.wait_for_server(
                s, status=want_status, failures=['ERROR'], interval=0.2,
                wait=self.api_timeout)
        except Exception as e:
            raise DriverError('%s of server %s (copy %s): %s'
                              % (action, self.server_ref, copy, e))
        # the status flips before the task ends: wait for task_state None
        deadline = time.monotonic() + self.api_timeout
        while self.server().task_state is not None:
            if time.monotonic() > deadline:
                raise DriverError('server %s: task still running after %s'
                                  % (self.server_ref, action))
            time.sleep(0.1)

    # ------------------------------------------------------------ fast path
    SETTLE_FIRST_LOOK = 0.3

    def _settle_after(self, want):
        """Wait (in a thread) until Nova's power_state is ``want``."""
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._settled.clear()
        if not self.settle_timeout:
            self._settled.set()
            return
        t0 = time.monotonic()

        def run():
            ok, last = False, None
            # Nova learns of the change from libvirt's lifecycle event
            # (about 0.4 s measured); the first look waits for it, so the
            # API call is not made in the switchover's critical
            # milliseconds (import and the start of the replay)
            time.sleep(min(self.SETTLE_FIRST_LOOK, self.settle_timeout))
            while time.monotonic() - t0 < self.settle_timeout:
                if gen != self._gen:
                    return          # superseded by a newer action
                try:
                    last = self.api_view()
                except DriverError as e:
                    last = str(e)
                else:
                    if last[1] == want and last[0] == 'ACTIVE':
                        ok = True
                        break
                time.sleep(0.2)
            with self._lock:
                if gen != self._gen:
                    return
                self.counters['api_settled' if ok else 'api_unsettled'] += 1
                self.last_settle = {'want_power_state': want, 'ok': ok,
                                    'seconds': time.monotonic() - t0,
                                    'api_view': last}
                self._settled.set()
            if not ok:
                LOG.warning('Nova still shows %s for server %s %.0f s after '
                            'the domain became power_state %d', last,
                            self.server_ref, self.settle_timeout, want)
        threading.Thread(target=run, daemon=True,
                         name='nova-settle').start()

    def wait_settled(self, timeout=None):
        """Wait until Nova's view followed the last fast-path action;
        returns :attr:`last_settle` (None if it did not finish)."""
        self._settled.wait(timeout)
        return self.last_settle if self._settled.is_set() else None

    # ------------------------------------------------------------ driver
    def pause(self, copy):
        if self.control == 'api':
            self._api_act(copy, 'pause', 'PAUSED')
            return
        self._libvirt_driver().pause(copy)
        self._settle_after(PAUSED)

    def unpause(self, copy):
        if self.control == 'api':
            self._api_act(copy, 'unpause', 'ACTIVE')
            return
        self._libvirt_driver().unpause(copy)
        self._settle_after(RUNNING)

    def is_running(self, copy):
        if self.control == 'libvirt':
            return self._libvirt_driver().is_running(copy)
        status, power, _task = self.api_view()
        if status == 'ACTIVE' and power == RUNNING:
            return True
        if status == 'PAUSED' or (status == 'ACTIVE' and power == PAUSED):
            return False
        raise DriverError('server %s is %s (power_state %s): neither '
                          'running nor paused' % (self.server_ref, status,
                                                  power))

    def stats(self):
        return dict(self.counters)
