"""The loading module's copies of Nova's rules agree with Nova's own code."""

from tests.functional import base  # noqa: F401,I100 - eventlet patch first

import types
import unittest

from nova.scheduler import utils as nova_utils

from nova_netaware.loading import servers


class TestWeightMultiplierIsNovas(unittest.TestCase):

    def test_same_value_as_get_weight_multiplier(self):
        key = servers.MULTIPLIER_KEY
        cases = [[], [{}], [{key: '3'}], [{key: '3'}, {key: '0.5'}, {}],
                 [{key: '2'}, {key: 'lots'}], [{key: '-1'}, {'x': '9'}],
                 [{key: '4'}, {key: '4'}]]
        for mds in cases:
            host = types.SimpleNamespace(aggregates=[
                types.SimpleNamespace(metadata=md) for md in mds])
            ours = servers.weight_multiplier(
                (md[key] for md in mds if key in md), 1.5)
            self.assertEqual(nova_utils.get_weight_multiplier(
                host, key, 1.5), ours, mds)
