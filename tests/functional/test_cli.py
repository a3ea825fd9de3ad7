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


class TestOperatorFirstHour(unittest.TestCase):
    """issue 16: output that does not mislead, errors without tracebacks."""

    def test_host_missing_from_the_topology_is_unknown(self):
        with open(os.path.join(EXAMPLE, 'placement.yaml')) as f:
            snap = yaml.safe_load(f)
        snap['hosts']['compute-99'] = dict(snap['hosts']['compute-1'])
        fd, tmp = tempfile.mkstemp(suffix='.yaml')
        with os.fdopen(fd, 'w') as f:
            yaml.safe_dump(snap, f)
        try:
            table = run('--placement', tmp)
            data = run('--placement', tmp, '-f', 'json')
        finally:
            os.unlink(tmp)
        self.assertEqual(0, table.returncode, table.stderr)
        line = [ln for ln in table.stdout.splitlines()
                if ' compute-99 ' in ln][0]
        self.assertEqual(['-', 'compute-99', 'UNKNOWN', '-', '-', '-', '-'],
                         line.split())
        self.assertIn('unknown to the topology: the plugin cannot judge it',
                      table.stdout)
        self.assertIn('hosts unknown to the topology', table.stderr)
        self.assertEqual(0, data.returncode, data.stderr)
        row = [h for h in json.loads(data.stdout)['hosts']
               if h['host'] == 'compute-99'][0]
        self.assertIs(False, row['in_topology'])
        self.assertIsNone(row['mif'])
        self.assertIsNone(row['rank'])
        self.assertIsNone(row['comm_mbps_hops'])
        known = [h for h in json.loads(data.stdout)['hosts']
                 if h['host'] != 'compute-99']
        self.assertTrue(all(h['in_topology'] for h in known))

    def test_columns_fit_long_host_names(self):
        long_name = 'compute-with-a-long-name-99'
        with open(os.path.join(EXAMPLE, 'placement.yaml')) as f:
            snap = yaml.safe_load(f)
        snap['hosts'][long_name] = dict(snap['hosts']['compute-1'])
        fd, tmp = tempfile.mkstemp(suffix='.yaml')
        with os.fdopen(fd, 'w') as f:
            yaml.safe_dump(snap, f)
        try:
            table = run('--placement', tmp)
        finally:
            os.unlink(tmp)
        self.assertEqual(0, table.returncode, table.stderr)
        lines = table.stdout.splitlines()
        header = [ln for ln in lines if ln.startswith('rank ')][0]
        col = header.index('verdict')
        rows = [ln for ln in lines
                if ln.split()[:1] and ln.split()[0] in ('-',) + tuple(
                    str(i) for i in range(1, 100)) and len(ln.split()) == 7]
        self.assertGreater(len(rows), 2)
        for ln in rows:
            self.assertIn(ln[col:].split()[0], ('pass', 'REFUSED',
                                                'UNKNOWN'), ln)
            self.assertEqual(' ', ln[col - 1], ln)

    def test_closed_pipe_ends_quietly(self):
        # the reader is gone before the command writes (as `| head -c 10`
        # after its 10 bytes): no BrokenPipeError traceback
        p = subprocess.Popen([BIN, '-f', 'json'], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        p.stdout.close()
        err = p.stderr.read()
        p.wait(timeout=120)
        p.stderr.close()
        self.assertNotIn('Traceback', err)
        self.assertNotIn('BrokenPipeError', err)
        r = subprocess.run(['sh', '-c', '"$0" -f json | head -c 10', BIN],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual('{\n  "serve', r.stdout)
        self.assertNotIn('Traceback', r.stderr)

    def test_help_is_plain_text_and_documents_the_snapshot(self):
        r = run('--help')
        self.assertEqual(0, r.returncode, r.stderr)
        self.assertNotIn('``', r.stdout)
        self.assertIn('The placement snapshot (--placement, YAML or JSON):',
                      r.stdout)
        for key in ('hosts:', 'vcpus_used', 'memory_mb_used', 'servers:',
                    'extra_specs', 'default_server:'):
            self.assertIn(key, r.stdout)
        # the documented example is a snapshot the loader accepts
        from nova_netaware.loading import placement_file
        snap = yaml.safe_load(placement_file.FORMAT)
        self.assertEqual(['compute-1'], list(snap['hosts']))
        self.assertEqual('web-1', snap['servers'][0]['name'])

    def test_without_nova_one_clear_line(self):
        hide_nova = (
            'import sys\n'
            'class HideNova:\n'
            '    def find_spec(self, name, path=None, target=None):\n'
            '        if name == "nova" or name.startswith("nova."):\n'
            '            raise ModuleNotFoundError(\n'
            '                "No module named %r" % name, name=name)\n'
            'sys.meta_path.insert(0, HideNova())\n'
            'from nova_netaware.cmd.cli import main\n'
            'sys.exit(main())\n')
        r = subprocess.run([sys.executable, '-c', hide_nova],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(2, r.returncode)
        self.assertNotIn('Traceback', r.stderr)
        self.assertEqual(1, len(r.stderr.splitlines()), r.stderr)
        self.assertIn('nova-netaware: error: Nova is not importable from %s: '
                      "run nova-netaware in nova-scheduler's Python "
                      'environment, or install Nova next to it '
                      '(pip install nova)' % sys.executable, r.stderr)
