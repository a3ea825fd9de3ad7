"""End to end: the Watcher strategy ``network_aware_rebalance`` against the
local stack's real keystone, Nova and Placement, run in its own process as
Watcher's decision engine runs it (Watcher's loader, Watcher's keystone
session from ``[watcher_clients_auth]``): its ``migrate`` actions are the
moves ``openstack netaware rebalance`` plans on the same cloud, and its
indicators are the numbers the command prints. (The Watcher services
themselves, audits and the applier: ``local-stack up --with-watcher``.)

Workload: that of test_osc_plugin (X on cmp1 sends 24 Gbit/s to Y on
cmp3; Q on cmp2 a little to X).
"""

import json
import re
import subprocess
import sys

from nova_netaware.deploy.localstack import configuration
from nova_netaware.deploy.localstack import settings as ls
from tests.e2e.conftest import ROOT
from tests.e2e.test_migrate import CMP
from tests.e2e.test_osc_plugin import hot  # noqa: F401 - fixture
from tests.e2e.test_osc_plugin import netaware


def strategy(stack, netaware_conf=None, **parameters):
    """``(exit status, solution or error as JSON)`` of the strategy run by
    tests/e2e/watcher_strategy_run.py with the stack's [netaware] settings
    (updated with *netaware_conf*) and audit *parameters*."""
    section = dict(configuration.netaware_settings(stack.settings),
                   **(netaware_conf or {}))
    res = subprocess.run(
        [sys.executable, '-m', 'tests.e2e.watcher_strategy_run',
         stack.clouds_yaml, ls.CLOUD, json.dumps(section),
         json.dumps(parameters), stack.settings.state_dir],
        cwd=ROOT, env=dict(stack.env, PYTHONPATH=ROOT), capture_output=True,
        text=True, timeout=300)
    assert res.stdout.strip(), res.stderr[-3000:]
    return res.returncode, json.loads(res.stdout.strip().splitlines()[-1])


def test_strategy_plans_what_rebalance_plans(stack, hot):  # noqa: F811
    res = netaware(stack, 'rebalance', '--max-migrations', '1', '-f', 'json',
                   check=False)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    planned = [(r['ID'], r['Source']) for r in rows
               if r['Predicted destination'] != '-']
    assert planned == [(hot['Y'], CMP[2])], rows
    cost = re.search(r'Network cost .*: ([\d.]+) -> ([\d.]+)', res.stderr)
    util = re.search(r'Max link utilisation: ([\d.]+)% -> ([\d.]+)%',
                     res.stderr)

    rc, out = strategy(stack, max_migrations=1)
    assert rc == 0, out
    # for the record (docs/advisor.md, "Watcher"; pytest -s shows it)
    print('openstack netaware rebalance --max-migrations 1:\n%s%s\n'
          'strategy: %s' % (res.stderr, json.dumps(rows, indent=1),
                            json.dumps(out, indent=1)))
    assert [(a['input_parameters']['resource_id'],
             a['input_parameters']['source_node'])
            for a in out['actions']] == planned
    for a in out['actions']:
        assert a['action_type'] == 'migrate'
        assert a['input_parameters']['migration_type'] == 'cold'
        assert 'destination_node' not in a['input_parameters']
    ind = out['indicators']
    assert (round(ind['network_cost_before'], 1),
            round(ind['network_cost_after'], 1)) == (
        float(cost.group(1)), float(cost.group(2)))
    assert (round(ind['busiest_link_before'], 1),
            round(ind['busiest_link_after'], 1)) == (
        float(util.group(1)), float(util.group(2)))
    assert ind['busiest_link_before'] > 80
    assert ind['instance_migrations_count'] == 1
    assert ind['migration_volume'] > 0

    rc, out = strategy(stack, max_migrations=1, explicit_destination=True,
                       migration_type='live')
    assert rc == 0, out
    assert [(a['input_parameters']['source_node'],
             a['input_parameters']['destination_node'],
             a['input_parameters']['migration_type'])
            for a in out['actions']] == [(CMP[2], CMP[0], 'live')]


def test_strategy_bad_input_on_the_live_cloud(stack, hot):  # noqa: F811
    rc, out = strategy(stack, {'traffic_source': 'prometheus',
                               'prometheus_url': 'http://127.0.0.1:9',
                               'prometheus_timeout': '0.5'})
    assert rc == 1, out
    assert out['error'].startswith(
        "AuditDataError: nova-netaware: traffic source 'prometheus' "
        "failed"), out
    rc, out = strategy(stack, {'topology_file': ''})
    assert rc == 1, out
    assert out['error'].startswith(
        'AuditDataError: nova-netaware: no topology'), out
