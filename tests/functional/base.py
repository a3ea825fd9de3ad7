"""Base for tests inside Nova's own functional harness.

The real nova-api (wsgi-intercepted), conductor, scheduler and fake computes
run in-process with placement; our filter and weigher are configured exactly
as the README tells operators to.
"""

# Import first: it applies the eventlet monkey patch (../shared/NOTES.md).
from nova.tests.functional import integrated_helpers  # noqa: I100

import os
import shutil
import sys
import tempfile

import yaml

from nova_netaware.core.topology import leaf_spine
from nova_netaware.scheduler import runtime

FILTER = 'nova_netaware.scheduler.filters.NetworkAwareFilter'
WEIGHER = 'nova_netaware.scheduler.weights.MigrationImpactWeigher'
NOVA_FILTERS = ['ComputeFilter', 'ComputeCapabilitiesFilter',
                'ImagePropertiesFilter', 'ServerGroupAntiAffinityFilter',
                'ServerGroupAffinityFilter']


def paste_config():
    return os.path.join(sys.prefix, 'etc', 'nova', 'api-paste.ini')


class NetawareTestCase(integrated_helpers.ProviderUsageBaseTestCase):
    """Six fake computes on a leaf-spine: leaf-1 h1 h2, leaf-2 h3 h4,
    leaf-3 h5 h6 (2 spines, 100 Gbit/s fabric, 25 Gbit/s uplinks)."""

    compute_driver = 'fake.MediumFakeDriver'
    HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6']
    use_filter = True
    use_weigher = True
    nova_weighers = False

    def _clear_attrs(self):
        # pytest's unittest bridge needs the attributes after the test.
        pass

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='netaware-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.topology_path = os.path.join(self.tmp, 'topology.yaml')
        self.traffic_path = os.path.join(self.tmp, 'traffic.yaml')
        topo = self.topology_data()
        with open(self.topology_path, 'w') as f:
            yaml.safe_dump(topo, f)
        self.write_traffic([])
        filters = ['nova.scheduler.filters.all_filters']
        enabled = list(NOVA_FILTERS)
        if self.use_filter:
            filters.append(FILTER)
            enabled.append('NetworkAwareFilter')
        weighers = []
        if self.nova_weighers:
            weighers.append('nova.scheduler.weights.all_weighers')
        if self.use_weigher:
            weighers.append(WEIGHER)
        self.flags(available_filters=filters, enabled_filters=enabled,
                   weight_classes=weighers, group='filter_scheduler')
        self.flags(api_paste_config=paste_config(), group='wsgi')
        self.flags(topology_file=self.topology_path,
                   static_traffic_file=self.traffic_path,
                   traffic_source='static', group='netaware')
        # A fresh runtime per test: no cached data from a previous test.
        runtime.set_runtime(None)
        super().setUp()
        for h in self.HOSTS:
            self._start_compute(h)

    def topology_data(self):
        """The topology file's content (see the class docstring)."""
        return leaf_spine(2, 3, 2, uplink_gbps=25, fabric_gbps=100,
                          host_prefix='h')

    def write_traffic(self, flows):
        """flows: [(src server, dst server, mbps)]; servers or uuids."""
        data = {'flows': [{'src': getattr(s, 'get', lambda k: s)('id'),
                           'dst': getattr(d, 'get', lambda k: d)('id'),
                           'mbps': r} for s, d, r in flows]}
        tmp = self.traffic_path + '.tmp'
        with open(tmp, 'w') as f:
            yaml.safe_dump(data, f)
        os.replace(tmp, self.traffic_path)

    def boot(self, name, host, flavor_id='1'):
        # Flavor '1' is the harness's m1.tiny (1 vCPU, 512 MB). Nova's helper
        # would take the first flavor listed, sorted by flavor ID: a flavor a
        # test creates with a random UUID sorts first 1 time in 16.
        server = self._create_server(name=name, host=host, networks='none',
                                     flavor_id=flavor_id)
        self.assertEqual(host, server['OS-EXT-SRV-ATTR:host'])
        return server

    def host_of(self, server):
        return self.api.get_server(server['id'])['OS-EXT-SRV-ATTR:host']

    def log_text(self):
        return self.stdlog.logger.output

    def migrate_expect_novalidhost(self, server):
        """Cold migrate that the scheduler must refuse: the API accepts it,
        the conductor records NoValidHost, the server stays put."""
        host = self.host_of(server)
        self.api.post_server_action(server['id'], {'migrate': None})
        event = self._wait_for_action_fail_completion(
            server, 'migrate', 'conductor_migrate_server')
        self.assertIn('NoValidHost', event.get('traceback') or '')
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.assertEqual(host, server['OS-EXT-SRV-ATTR:host'])
