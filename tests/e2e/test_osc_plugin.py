"""End to end: the ``openstack netaware`` plugin against the local stack
(keystone, nova-api, placement, conductor, scheduler and fake computes as
separate processes), as an operator runs it.

Workload: X on netaware-cmp1 (leaf-1) sends 24 Gbit/s to Y on
netaware-cmp3 (leaf-2): both uplinks at 96 % of 25 Gbit/s, congested at
the advisor's default 80 %. Y (the most incoming traffic) is selected
first; joining X relieves both uplinks. Q on cmp2 exchanges a little
traffic with X, so that the candidates differ.
"""

import json

import pytest

from tests.e2e.test_migrate import CMP
from tests.e2e.test_migrate import booted
from tests.e2e.test_migrate import expected
from tests.e2e.test_migrate import host_of
from tests.e2e.test_migrate import wait_status
from tests.e2e.test_migrate import write_traffic


@pytest.fixture(scope='module')
def hot(stack):
    layout = {'X': CMP[0], 'Y': CMP[2], 'Q': CMP[1]}
    with booted(stack, layout, 'osc') as ids:
        try:
            write_traffic(stack, [
                {'src': ids['X'], 'dst': ids['Y'], 'mbps': 24000},
                {'src': ids['Q'], 'dst': ids['X'], 'mbps': 300},
            ])
            yield ids
        finally:
            write_traffic(stack, [])


def netaware(stack, *args, **kw):
    return stack.osc('netaware', *args, '--config-file', stack.nova_conf,
                     **kw)


def test_explain_matches_the_scheduler_inputs(stack, hot):
    """Verdicts and ranking of ``openstack netaware explain`` equal those
    of ``nova-netaware`` on a snapshot of the same cloud."""
    exp = expected(stack, hot['Y'])
    rows = netaware(stack, 'explain', hot['Y'], '-f', 'json')
    assert rows[0]['Host'] == CMP[2] and rows[0]['Verdict'] == 'current host'
    hosts = {r['Host']: r for r in rows[1:]}
    assert set(hosts) == set(stack.hosts) - {CMP[2]}
    refused = {h for h, r in hosts.items() if r['Verdict'] == 'refused'}
    assert refused == set(exp['refused'])
    ranked = sorted((r for r in hosts.values() if r['Rank']),
                    key=lambda r: r['Rank'])
    assert [r['Host'] for r in ranked] == exp['ranking']
    assert ranked[0]['Host'] == CMP[0]      # next to X: 0 hops


def test_topology_validate_on_the_live_cloud(stack, hot):
    res = netaware(stack, 'topology', 'validate', check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_rebalance_dry_run_then_execute(stack, hot):
    before = {name: host_of(stack, sid) for name, sid in hot.items()}
    rows = netaware(stack, 'rebalance', '--max-migrations', '1',
                    '-f', 'json')
    moves = [r for r in rows if r['Predicted destination'] != '-']
    assert [(m['ID'], m['Source'], m['Predicted destination'])
            for m in moves] == [(hot['Y'], CMP[2], CMP[0])], rows
    assert 'uplink of %s congested' % CMP[2] == moves[0]['Why']
    # the prediction is the scheduler's own choice on the live data
    assert expected(stack, hot['Y'])['winner'] == CMP[0]
    # a dry run changes nothing
    assert {n: host_of(stack, s) for n, s in hot.items()} == before

    res = netaware(stack, 'rebalance', '--max-migrations', '1', '--execute',
                   '-f', 'json', check=False, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert '1 landed where predicted' in res.stderr, res.stderr
    row = [r for r in json.loads(res.stdout) if r['ID'] == hot['Y']][0]
    assert row['Actual destination'] == row['Predicted destination'] == CMP[0]
    wait_status(stack, hot['Y'], {'ACTIVE'})
    after = {n: host_of(stack, s) for n, s in hot.items()}
    assert after == dict(before, Y=CMP[0])
    # the hot spot is gone: a second run plans nothing
    rows = netaware(stack, 'rebalance', '-f', 'json')
    assert [r for r in rows if r['Predicted destination'] != '-'] == []
