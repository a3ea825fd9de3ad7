"""The nova-netaware command, run as a user would (subprocess)."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import yaml

BIN = os.path.join(os.path.dirname(sys.executable), 'nova-netaware')
EXAMPLE = os.path.join(os.path.dirname(__file__), '..', '..', 'nova_netaware',
                       'data', 'example')


def run(*args):
    return subprocess.run([BIN] + list(args), capture_output=True,
                          text=True, timeout=120)


class TestCommand(unittest.TestCase):

    def test_embedded_example(self):
        r = run()
        self.assertEqual(0, r.returncode, r.stderr)
        out = r.stdout
        self.assertIn('Server app-1', out)
        # compute-11 carries the 22 Gbit/s backup stream: refused, numbers
        self.assertIn('uplink: out 22000 + 5500 Mbit/s on 25000 Mbit/s',
                      out)
        self.assertIn('winner: compute-9', out)   # next to db-1
        self.assertIn("Nova's default weighers alone would choose:", out)

    def test_json_matches_the_table_winner(self):
        r = run('-f', 'json')
        self.assertEqual(0, r.returncode, r.stderr)
        data = json.loads(r.stdout)
        ranked = [h for h in data['hosts'] if h['rank']]
        best = min(ranked, key=lambda h: h['mif'])
        self.assertEqual(best['host'], data['winner'])
        refused = {h['host'] for h in data['hosts'] if not h['passed']}
        self.assertIn('compute-11', refused)
        self.assertNotIn(data['winner'], refused)
        self.assertNotEqual(data['winner'], data['nova_default_choice'])

    def test_other_server_by_name(self):
        r = run('--server', 'ingest-1', '-f', 'json')
        self.assertEqual(0, r.returncode, r.stderr)
        data = json.loads(r.stdout)
        self.assertEqual('ingest-1', data['server']['name'])

    def test_bad_inputs_are_clear_errors(self):
        r = run('--server', 'no-such-server')
        self.assertEqual(2, r.returncode)
        self.assertIn("no server 'no-such-server' in the snapshot",
                      r.stderr)
        fd, tmp = tempfile.mkstemp(suffix='.yaml')
        with os.fdopen(fd, 'w') as f:
            yaml.safe_dump({'switches': [{'name': 's'}], 'links': [],
                            'hosts': [{'name': 'h', 'switch': 'x',
                                       'uplink_gbps': 1}]}, f)
        try:
            r = run('--topology', tmp)
        finally:
            os.unlink(tmp)
        self.assertEqual(2, r.returncode)
        self.assertIn("hosts[0] (h): unknown switch 'x'", r.stderr)
        r = run('--traffic', '/nonexistent.yaml')
        self.assertEqual(2, r.returncode)
        self.assertIn('cannot read /nonexistent.yaml', r.stderr)
