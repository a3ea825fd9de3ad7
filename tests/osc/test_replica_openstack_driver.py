"""The replica agent's ``openstack`` cloud driver, ``openstack_control =
api``, against a real Nova API (Nova's functional harness, fake computes:
the domain side is the fake driver's, the record is Nova's own). The
libvirt fast path needs a real hypervisor:
tests/libvirt_e2e/test_replica_openstack.py."""

from tests.osc import base  # noqa: I100 - eventlet patch first

from oslo_config import cfg

from nova_netaware.replica import conf as conf_mod
from nova_netaware.replica import drivers
from nova_netaware.replica.drivers.openstack_server import \
    OpenStackCloudDriver


class TestOpenStackDriverApi(base.OscTestCase):

    def driver(self, server_ref, **over):
        conf = cfg.ConfigOpts()
        conf_mod.register_opts(conf)
        opts = {'agent_id': 't', 'cloud_driver': 'openstack',
                'openstack_control': 'api', 'openstack_server': server_ref,
                'openstack_api_timeout': 30.0}
        opts.update(over)
        for k, v in opts.items():
            conf.set_override(k, v, 'replica')
        conf(args=[], default_config_files=[])
        return OpenStackCloudDriver(conf, None, conn=self.sdk())

    def test_pause_unpause_is_running_through_nova(self):
        server = self.boot('copy-a', 'h1')
        d = self.driver('copy-a')            # by name
        self.assertTrue(d.is_running('c'))
        d.pause('c')
        status, _power, task = d.api_view()
        # (power_state stays 1 here: the fake virt driver's pause does not
        # change the state it reports; on libvirt it is 3, see the e2e)
        self.assertEqual(('PAUSED', None), (status, task))
        self.assertFalse(d.is_running('c'))
        self.assertEqual('PAUSED', self.api.get_server(server['id'])['status'])
        d.pause('c')                          # already paused: a no-op
        d.unpause('c')
        self.assertEqual(('ACTIVE', 1, None), d.api_view())
        self.assertTrue(d.is_running('c'))
        d2 = self.driver(server['id'])        # by ID
        self.assertTrue(d2.is_running('c'))

    def test_errors_name_the_server(self):
        d = self.driver('no-such-server')
        with self.assertRaisesRegex(drivers.DriverError,
                                    "no Nova server 'no-such-server'"):
            d.pause('c')
        server = self.boot('copy-b', 'h2')
        self.api.post_server_action(server['id'], {'os-stop': None})
        self._wait_for_state_change(server, 'SHUTOFF')
        d = self.driver('copy-b')
        with self.assertRaisesRegex(drivers.DriverError, 'is SHUTOFF'):
            d.pause('c')
        with self.assertRaisesRegex(drivers.DriverError,
                                    'neither running nor paused'):
            d.is_running('c')
