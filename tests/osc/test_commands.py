"""``openstack netaware ...`` against a real Nova API (functional harness).

Every command runs through the whole OpenStackClient shell, which finds the
plugin through its entry points and reaches Nova through openstacksdk.
Expected results are hand-derived from the scenario (comments) and, for
``explain``, cross-checked with the core engine on the same data.

Scenario (six hosts, leaf-1: h1 h2, leaf-2: h3 h4, leaf-3: h5 h6; 25 Gbit/s
uplinks): a on h1 receives 13 Gbit/s from b (h3) and 11 Gbit/s from c (h4):
h1's uplink is at 96%. d on h6 receives 21 Gbit/s from x (h2): h6's and h2's
uplinks are at 84%. Selection (highest incoming first): a (24000), d
(21000), x (0). a goes next to b on h3 (comm 11000 x 2 hops, vs 13000 x 2
on h4); d goes to x's host h2 (comm 0).
"""

import json
import os
import subprocess
import sys
import unittest

import yaml

from tests.osc import base

from nova_netaware.core.engine import Engine
from nova_netaware.core.engine import Params
from nova_netaware.core.topology import Topology
from nova_netaware.core.traffic import TrafficMatrix
from nova_netaware.osc import data as osc_data


class ScenarioMixin(object):

    def build(self):
        self.a = self.boot('a', 'h1')
        self.b = self.boot('b', 'h3')
        self.c = self.boot('c', 'h4')
        self.d = self.boot('d', 'h6')
        self.x = self.boot('x', 'h2')
        self.write_traffic([(self.b, self.a, 13000), (self.c, self.a, 11000),
                            (self.x, self.d, 21000)])
        self.names = {s['id']: n for n, s in (
            ('a', self.a), ('b', self.b), ('c', self.c), ('d', self.d),
            ('x', self.x))}

    def where(self):
        return {self.names[k]: v for k, v in self.placement_now().items()}

    START = {'a': 'h1', 'b': 'h3', 'c': 'h4', 'd': 'h6', 'x': 'h2'}


class TestOptionValidation(unittest.TestCase):
    """issue 16: every rebalance option is validated with a clear message,
    by the real ``openstack`` command (argparse exits before any cloud is
    reached, so no harness is needed)."""

    def test_bad_options_are_refused(self):
        osc = os.path.join(os.path.dirname(sys.executable), 'openstack')
        for argv, msg in (
                (['--max-migrations', '-1'], "argument --max-migrations: "
                 "must be an integer >= 0, got '-1'"),
                (['--max-migrations', '1.5'], "argument --max-migrations: "
                 "must be an integer >= 0, got '1.5'"),
                (['--cpu-threshold', '1.5'], "argument --cpu-threshold: "
                 "must be a number in (0, 1], got '1.5'"),
                (['--ram-threshold', '0'], "argument --ram-threshold: "
                 "must be a number in (0, 1], got '0'"),
                (['--link-threshold', '1.01'], "argument --link-threshold: "
                 "must be a number in (0, 1], got '1.01'"),
                (['--min-gain', '2'], "argument --min-gain: must be a "
                 "number in [0, 1], got '2'")):
            r = subprocess.run(
                [osc, '--os-auth-type', 'none', '--os-endpoint',
                 'http://127.0.0.1:9', 'netaware', 'rebalance'] + argv,
                capture_output=True, text=True, timeout=120,
                env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
            self.assertEqual(2, r.returncode, (argv, r.stderr))
            self.assertIn(msg, r.stderr)
            self.assertNotIn('Traceback', r.stderr)


class TestRebalance(ScenarioMixin, base.OscTestCase):

    def setUp(self):
        super().setUp()
        self.build()

    def test_dry_run_plans_and_changes_nothing_then_execute_follows_plan(self):
        # issue 16: a congested link and a zero budget: nothing planned,
        # and why
        rc, out, err = self.osc('netaware', 'rebalance', '--max-migrations',
                                '0')
        self.assertEqual(0, rc, err)
        self.assertIn('Planned migrations: 0 (dry run', out)
        self.assertIn('Nothing planned: the migration budget is 0 '
                      '(max_migrations)', out)
        rc, out, err = self.osc('netaware', 'rebalance', '--max-migrations',
                                '2')
        self.assertEqual(0, rc, err)
        self.assertIn('Network cost (sum rate x hops, Mbit/s x hop): '
                      '180000.0 -> 22000.0', out)
        # before: 24000 x 4 + 21000 x 4; after: c -> a 11000 x 2
        self.assertIn('Max link utilisation: 96.0% -> ', out)
        self.assertIn('Planned migrations: 2 (dry run', out)
        rc, out, err = self.osc('netaware', 'rebalance', '--max-migrations',
                                '2', '-f', 'json')
        self.assertEqual(0, rc, err)
        rows = json.loads(out)
        self.assertEqual(
            [('a', 'h1', 'h3', 24000.0), ('d', 'h6', 'h2', 21000.0)],
            [(r['Server'], r['Source'], r['Predicted destination'],
              r['Incoming (Mbit/s)']) for r in rows])
        self.assertIn('uplink of h1 congested', rows[0]['Why'])
        self.assertEqual(self.START, self.where())     # dry run: untouched

        rc, out, err = self.osc('netaware', 'rebalance', '--max-migrations',
                                '2', '--execute', '--poll-interval', '0.2',
                                '-f', 'json')
        self.assertEqual(0, rc, err)
        rows = json.loads(out)
        self.assertEqual([('a', 'h3', 'h3'), ('d', 'h2', 'h2')],
                         [(r['Server'], r['Predicted destination'],
                           r['Actual destination']) for r in rows])
        self.assertTrue(all(r['Result'] == 'moved: as predicted'
                            for r in rows), rows)
        self.assertEqual(dict(self.START, a='h3', d='h2'), self.where())
        self.assertIn('All 2 migration(s) done; 2 landed where predicted',
                      err)
        self.assertIn('[1/2] migrating a h1 -> ?', err)     # progress
        self.assertIn('100% done', err)
        for s in (self.a, self.d):
            self.assertEqual('ACTIVE', self.api.get_server(s['id'])['status'])
        # Nothing left to do: the cloud is balanced now.
        rc, out, err = self.osc('netaware', 'rebalance')
        self.assertEqual(0, rc, err)
        self.assertIn('Planned migrations: 0', out)
        self.assertIn('Nothing planned: no hot spot: no host above 90% of '
                      'its vCPUs', out)

    def test_execute_live_migration(self):
        rc, out, err = self.osc('netaware', 'rebalance', '--max-migrations',
                                '1', '--execute', '--live',
                                '--poll-interval', '0.2')
        self.assertEqual(0, rc, err)
        self.assertIn('[1/1] live-migrating a h1 -> ?', err)
        self.assertIn('moved: as predicted', out)
        self.assertEqual(dict(self.START, a='h3'), self.where())

    def test_bad_input_and_refusals_leave_the_cloud_unchanged(self):
        # (one test: the harness set-up costs far more than the commands)
        # 1. The cloud refuses: Nova's policy forbids cold migration (403).
        self.policy.set_rules({'os_compute_api:os-migrate-server:migrate':
                               '!'}, overwrite=False)
        rc, out, err = self.osc('netaware', 'rebalance', '--execute',
                                '--poll-interval', '0.2')
        self.assertEqual(1, rc)
        self.assertIn('Stopped at the first failure. No server was moved. '
                      'Failed: Nova refused to migrate server %s: HTTP 403'
                      % self.a['id'], err)
        self.assertIn('a is ACTIVE on h1', err)
        self.assertIn('Not started: d on h6 (they stay where they are)', err)
        self.assertEqual(self.START, self.where())
        self.policy.set_rules({'os_compute_api:os-migrate-server:migrate':
                               'rule:admin_api'}, overwrite=False)

        # 2. Nova's scheduler (global CONF) allows no link above 1%: its
        # filter refuses every host, while the command's config file keeps
        # the default ceiling and predicts moves. The API accepts the
        # migration; the conductor fails it with NoValidHost.
        self.flags(max_link_utilization=0.01, group='netaware')
        rc, out, err = self.osc('netaware', 'rebalance', '--execute',
                                '--poll-interval', '0.2', '--timeout', '60')
        self.assertEqual(1, rc)
        self.assertIn('Stopped at the first failure. No server was moved. '
                      'Failed: the migration of server a failed (migration',
                      err)
        self.assertIn(': error); server is', err)
        self.assertIn('a is ACTIVE on h1. Not started: d on h6', err)
        self.assertEqual(self.START, self.where())

        # 3. Prometheus is down (nothing listens on the port).
        import socket
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        self.write_conf(traffic_source='prometheus',
                        prometheus_url='http://127.0.0.1:%d' % port,
                        prometheus_timeout=1)
        rc, out, err = self.osc('netaware', 'rebalance', '--execute')
        self.assertEqual(1, rc)
        self.assertIn("traffic source 'prometheus' failed: cannot reach "
                      "Prometheus at http://127.0.0.1:%d" % port, err)
        self.assertEqual(self.START, self.where())

        # 4. Unknown server.
        rc, out, err = self.osc('netaware', 'explain', 'no-such-server')
        self.assertEqual(1, rc)
        self.assertIn("No server with a name or ID of 'no-such-server' "
                      "exists.", err)
        self.assertEqual(self.START, self.where())

        # 5. A failure in the middle of the plan: d is paused, so its move
        # cannot start; a's move, before it, is done and reported.
        self.write_conf()
        self.flags(max_link_utilization=0.9, group='netaware')
        self.api.post_server_action(self.d['id'], {'pause': None})
        self._wait_for_state_change(self.d, 'PAUSED')
        rc, out, err = self.osc('netaware', 'rebalance', '--execute',
                                '--poll-interval', '0.2')
        self.assertEqual(1, rc)
        self.assertIn('Stopped at the first failure. 1 move(s) completed '
                      'before the failure: a h1 -> h3. Failed: server d is '
                      'PAUSED (task None), not ACTIVE; nothing done for it. '
                      'd is PAUSED on h6.', err)
        self.assertEqual(dict(self.START, a='h3'), self.where())


class TestExplainAndTopology(ScenarioMixin, base.OscTestCase):

    def setUp(self):
        super().setUp()
        self.build()

    def test_explain_every_host_verdict_terms_rank(self):
        # a may not go farther than its own leaf's neighbours: 2 hops.
        self.sdk().compute.set_server_metadata(
            self.d['id'], **{'netaware:max_hops': '2'})
        rc, out, err = self.osc('netaware', 'explain', 'd', '-f', 'json')
        self.assertEqual(0, rc, err)
        rows = {r['Host']: r for r in json.loads(out)}
        self.assertEqual({'h1', 'h2', 'h3', 'h4', 'h5', 'h6'}, set(rows))
        self.assertEqual('current host', rows['h6']['Verdict'])
        # x (d's only peer) is on h2: only h1 and h2 are within 2 hops,
        # and h1's downlink already carries a's 24 Gbit/s.
        for h in ('h3', 'h4', 'h5'):
            self.assertEqual('refused', rows[h]['Verdict'])
            self.assertIn('hops', rows[h]['Reasons'])
        self.assertEqual('refused', rows['h1']['Verdict'])
        self.assertIn('uplink', rows['h1']['Reasons'])
        # issue 16: an empty cell is null, not ""
        self.assertIsNone(rows['h1']['Rank'])
        self.assertNotIn('', [v for r in rows.values() for v in r.values()])
        self.assertEqual('pass', rows['h2']['Verdict'])
        self.assertEqual(1, rows['h2']['Rank'])
        self.assertEqual(0.0, rows['h2']['Comm (Mbit/s x hop)'])
        self.assertEqual(21000 * 2, rows['h1']['Comm (Mbit/s x hop)'])
        # The terms add up to the MIF, and equal the core's on the same data
        eng = Engine(Topology.from_file(self.topology_path))
        tm = TrafficMatrix.from_file(self.traffic_path)
        srv = self.sdk().compute.get_server(self.d['id'])
        from nova_netaware.osc import cloud
        model = osc_data.server_model(cloud._server_info(srv))
        self.assertEqual(2, model.max_hops)
        hosts = ['h1', 'h2', 'h3', 'h4', 'h5']
        from nova_netaware.core.engine import Candidate
        ev = eng.evaluate(tm, self.placement_now(), model,
                          [Candidate(h, 8192 - 512, 10 - 1) for h in hosts],
                          Params())
        for i, h in enumerate(hosts):
            r = rows[h]
            self.assertAlmostEqual(ev.mif[i], r['MIF'], places=3)
            self.assertAlmostEqual(
                r['MIF'], r['Comm term'] + r['Migration term'] +
                r['Congestion term'], places=3)
        self.assertEqual(ev.winner, 'h2')
        # issue 16: the current host is a reference row with its own cost
        # (as a candidate: no migration), and every row names the server,
        # the winner and whether moving helps.
        cur = eng.evaluate(tm, self.placement_now(), model,
                           [Candidate('h6', 8192, 10)], Params())
        h6 = rows['h6']
        self.assertAlmostEqual(cur.mif[0], h6['MIF'], places=3)
        self.assertEqual(21000 * 4, h6['Comm (Mbit/s x hop)'])
        self.assertEqual(0.0, h6['Migration (MB x hop)'])
        self.assertIsNone(h6['Rank'])
        self.assertGreater(h6['MIF'], rows['h2']['MIF'])
        for r in rows.values():
            self.assertEqual(('d', self.d['id'], 'h2', True),
                             (r['Server'], r['Server ID'], r['Winner'],
                              r['Moving helps']))
        rc, out, err = self.osc('netaware', 'explain', 'd', '-f', 'json',
                                '--sort-column', 'MIF')
        self.assertEqual(0, rc, err)
        self.assertNotIn('unsortable', err)
        mifs = [r['MIF'] for r in json.loads(out)]
        self.assertEqual(sorted(mifs), mifs)
        self.assertEqual(6, len(mifs))

        rc, out, err = self.osc('netaware', 'explain', self.d['id'], '-f',
                                'yaml')
        self.assertEqual(0, rc, err)
        self.assertEqual(6, len(yaml.safe_load(out)))
        rc, out, err = self.osc('netaware', 'explain', 'd')
        self.assertEqual(0, rc, err)
        self.assertIn('Winner: h2', out)
        self.assertIn('Moving would help: h2 has MIF %.4f, below the current '
                      'host h6 (%.4f).' % (rows['h2']['MIF'], h6['MIF']), out)
        self.assertIn('| h6   | current host |', out)
        self.assertIn('| Host | Verdict', out)

    def test_topology_validate_and_plot(self):
        topo = yaml.safe_load(open(self.topology_path))
        # drop h5 and h6 from the file, add h9 (unknown to Nova) and h8 on
        # a switch with no link to the fabric.
        topo['hosts'] = [h for h in topo['hosts']
                         if h['name'] not in ('h5', 'h6')]
        topo['hosts'].append({'name': 'h9', 'switch': 'leaf-1',
                              'uplink_gbps': 25})
        topo['switches'].append({'name': 'island'})
        topo['hosts'].append({'name': 'h4b', 'switch': 'island',
                              'uplink_gbps': 25})
        path = os.path.join(self.tmp, 'partial.yaml')
        with open(path, 'w') as f:
            yaml.safe_dump(topo, f)
        rc, out, err = self.osc('netaware', 'topology', 'validate',
                                '--topology', path, '-f', 'json')
        self.assertEqual(1, rc)
        status = {r['Host']: r['Status'] for r in json.loads(out)}
        self.assertEqual({'h1': 'ok', 'h2': 'ok', 'h3': 'ok', 'h4': 'ok',
                          'h5': 'missing', 'h6': 'missing', 'h9': 'extra',
                          'h4b': 'extra'}, status)
        # unreachable: a Nova host on the island
        topo['hosts'][-1]['name'] = 'h5'
        with open(path, 'w') as f:
            yaml.safe_dump(topo, f)
        rc, out, err = self.osc('netaware', 'topology', 'validate',
                                '--topology', path)
        self.assertEqual(1, rc)
        self.assertIn('| h5   | unreachable', out)
        self.assertIn('| h6   | missing', out)
        rc, out, err = self.osc('netaware', 'topology', 'validate')
        self.assertEqual(0, rc, err)
        self.assertIn('6 host(s) ok, 0 problem(s)', out)
        # rebalance refuses to act on a topology that lacks compute hosts
        del topo['hosts'][-1]
        del topo['switches'][-1]
        with open(path, 'w') as f:
            yaml.safe_dump(topo, f)
        rc, out, err = self.osc('netaware', 'rebalance', '--execute',
                                '--topology', path)
        self.assertEqual(1, rc)
        self.assertIn('lacks Nova compute host(s) h5, h6', err)
        self.assertIn('nothing was changed', err)
        self.assertEqual(self.START, self.where())

        # plot, before and after the plan, from the valid file
        png = os.path.join(self.tmp, 'topo.png')
        rc, out, err = self.osc('netaware', 'topology', 'plot', '-o', png,
                                '--max-migrations', '2')
        self.assertEqual(0, rc, err)
        self.assertIn('wrote %s' % png, out)
        with open(png, 'rb') as f:
            self.assertEqual(b'\x89PNG\r\n\x1a\n', f.read(8))
        import matplotlib.image
        img = matplotlib.image.imread(png)
        self.assertGreater(img.shape[1], img.shape[0])   # two panels
        # the hot h1 uplink is drawn red-ish before the plan
        self.assertGreater(((img[..., 0] > 0.6) & (img[..., 1] < 0.3)).sum(),
                           50)
        self.assertEqual(self.START, self.where())
