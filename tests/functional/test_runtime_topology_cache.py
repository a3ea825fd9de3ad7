"""The scheduler's runtime reads the topology through its cache; the
offline command's runtime writes none."""

from tests.functional import base  # noqa: F401,I100 - eventlet patch first

import json
import os
import shutil
import tempfile
import unittest

from oslo_config import cfg

from nova_netaware.cmd import sim
from nova_netaware.core import topocache
from nova_netaware.core.generators import leaf_spine
from nova_netaware.scheduler import runtime  # noqa: F401 - [netaware]


class TestRuntimeTopologyCache(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.path = os.path.join(self.dir, 'topo.json')
        with open(self.path, 'w') as f:
            json.dump(leaf_spine(2, 4, 2, 25, 100), f)
        cfg.CONF.set_override('topology_file', self.path, 'netaware')
        self.addCleanup(cfg.CONF.clear_override, 'topology_file',
                        'netaware')
        self.cache = topocache.cache_path(self.path)

    def test_offline_runtime_writes_no_cache(self):
        eng = sim.FixedPlacementRuntime({}).engine()
        self.assertEqual(eng.cache_status, 'no cache')
        self.assertFalse(os.path.exists(self.cache))

    def test_scheduler_runtime_uses_the_cache(self):
        first = sim.FixedPlacementRuntime({}, topology_cache=True).engine()
        self.assertEqual(first.cache_status, 'no cache; cache written')
        self.assertTrue(os.path.exists(self.cache))
        again = sim.FixedPlacementRuntime({}, topology_cache=True).engine()
        self.assertEqual(again.cache_status, 'cache')
        self.assertEqual(again.topo.host_names, first.topo.host_names)
        self.assertTrue(runtime.NovaRuntime.use_topology_cache)

    def test_option_off(self):
        cfg.CONF.set_override('topology_cache', False, 'netaware')
        self.addCleanup(cfg.CONF.clear_override, 'topology_cache',
                        'netaware')
        eng = sim.FixedPlacementRuntime({}, topology_cache=True).engine()
        self.assertEqual(eng.cache_status, 'no cache')
        self.assertFalse(os.path.exists(self.cache))
