"""CPU/RAM capacity of ``openstack netaware`` commands comes from Placement.

Real Nova API and real Placement fixture (see base). Every fake compute has
10 vCPUs and 8192 MB with 512 MB reserved; Nova registers VCPU with its
initial allocation ratio 4.0 and MEMORY_MB with 1.0. A 10-vCPU server on h1
therefore uses 25% of h1's allocatable vCPUs in Placement (not a hot spot)
but 100% at ratio 1.0, the old assumption.
"""

import json

from tests.osc import base


class TestPlacementCapacity(base.OscTestCase):

    HOSTS = ['h1', 'h2', 'h3']

    def setUp(self):
        super().setUp()
        flavor = self._create_flavor(id='big', name='big', memory_mb=1024,
                                     vcpu=10, disk=1, ephemeral=0)
        self.big = self.boot('big', 'h1', flavor_id=flavor)
        self.small = self.boot('small', 'h2')     # 1 vCPU, 512 MB
        # The harness really uses Nova's defaults (the test relies on them).
        self.assertEqual(4.0, self._get_provider_inventory(
            self._get_provider_uuid_by_host('h1'))['VCPU'][
                'allocation_ratio'])

    def rebalance(self, *argv):
        rc, out, err = self.osc('netaware', 'rebalance', *argv)
        self.assertEqual(0, rc, err)
        return out, err

    def explain(self, server, *argv):
        rc, out, err = self.osc('netaware', 'explain', server, '-f', 'json',
                                *argv)
        self.assertEqual(0, rc, err)
        return {r['Host']: r for r in json.loads(out)}, err

    def test_ratio_and_reserved_come_from_placement(self):
        # Placement's VCPU ratio 4.0: 10 of 40 vCPUs used on h1.
        out, err = self.rebalance()
        self.assertNotIn('warning', err)
        self.assertIn('Overloaded hosts: none', out)
        rows, err = self.explain('small')
        self.assertEqual('pass', rows['h1']['Verdict'], rows['h1'])
        self.assertNotIn('warning', err)

        # The override: at ratio 1.0 h1 is full (10 of 10).
        out, err = self.rebalance('--cpu-allocation-ratio', '1')
        self.assertIn('Overloaded hosts: h1\n', out)
        rows, err = self.explain('small', '--cpu-allocation-ratio', '1')
        self.assertEqual('refused', rows['h1']['Verdict'])
        self.assertIn('capacity: free vCPUs 0.0 < flavor 1',
                      rows['h1']['Reasons'])

        # An operator sets h1's ratio to 1.0 in Placement: read, no option.
        self.set_inventory('h1', 'VCPU', allocation_ratio=1.0)
        out, err = self.rebalance()
        self.assertIn('Overloaded hosts: h1\n', out)
        self.assertNotIn('warning', err)
        rows, err = self.explain('small')
        self.assertIn('capacity: free vCPUs 0.0 < flavor 1',
                      rows['h1']['Reasons'])
        # ... and a ratio given still overrides Placement's.
        out, err = self.rebalance('--cpu-allocation-ratio', '4')
        self.assertIn('Overloaded hosts: none', out)

        # Reserved memory is subtracted: h2 keeps 512 MB allocatable, all
        # used by small (hypervisor data would say 1024 of 8192 MB).
        self.set_inventory('h2', 'MEMORY_MB', reserved=8192 - 512)
        out, err = self.rebalance('--cpu-allocation-ratio', '4')
        self.assertIn('Overloaded hosts: h2\n', out)
        rows, err = self.explain('big', '--cpu-allocation-ratio', '4')
        self.assertEqual('refused', rows['h2']['Verdict'])
        self.assertIn('capacity: free RAM 0 MB < flavor 1024 MB',
                      rows['h2']['Reasons'])
        self.assertEqual('pass', rows['h3']['Verdict'], rows['h3'])
        # RAM ratio override: (8192 - 7680) x 2 = 1024 MB, half used.
        out, err = self.rebalance('--cpu-allocation-ratio', '4',
                                  '--ram-allocation-ratio', '2')
        self.assertIn('Overloaded hosts: none', out)

    def test_placement_forbidden_falls_back_to_hypervisors_with_warning(self):
        # A user without an admin or reader role: the real Placement
        # refuses (403). The command still works, from Nova's hypervisor
        # data at ratio 1.0, and says so on stderr.
        self.placement_token = 'operator'
        out, err = self.rebalance()
        self.assertIn(
            'warning: Placement refused to list resource providers: HTTP '
            '403: Access was denied to this resource. Policy does not allow '
            'placement:resource_providers:list to be performed. (reading '
            'Placement needs an admin or reader role); CPU/RAM '
            'capacity falls back to Nova\'s hypervisor data x allocation '
            'ratio (CPU 1, RAM 1; pass --cpu-allocation-ratio/'
            '--ram-allocation-ratio to match Nova\'s)', err)
        self.assertIn('Overloaded hosts: h1\n', out)   # 10 of 10 vCPUs
        rows, err = self.explain('small')
        self.assertIn('warning: Placement refused', err)
        self.assertIn('capacity: free vCPUs 0.0 < flavor 1',
                      rows['h1']['Reasons'])
        # The ratios given apply to the fallback.
        out, err = self.rebalance('--cpu-allocation-ratio', '4',
                                  '--ram-allocation-ratio', '1')
        self.assertIn('ratio (CPU 4, RAM 1), which ignores', err)
        self.assertIn('Overloaded hosts: none', out)
