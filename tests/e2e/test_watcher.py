"""End to end: OpenStack Watcher with nova-netaware's strategy on the local
stack (``local-stack up --with-watcher``), driven by the real ``openstack``
CLI and python-watcherclient (``openstack optimize ...``).

Workload (booted with ``openstack server create --host``), on the
launcher's leaf-spine (cmp1, cmp2 on leaf-1; cmp3, cmp4 on leaf-2; 25
Gbit/s uplinks):

* X (cmp1) sends 24 Gbit/s to Y (cmp3): cmp1's uplink out and cmp3's
  uplink in at 96 %, congested at the advisor's default 80 %;
* U (cmp4) sends 24 Gbit/s to V (cmp2): the same on the other pair;
* Q (cmp2) exchanges a little traffic with X.

The traffic starts quiet (an empty traffic file) and is made hot by the
tests that need it. The expected plan is never written here: it is what
``openstack netaware rebalance`` plans on the same cloud, with the same
parameters.
"""

import ast
import contextlib
import json
import os
import re
import shutil
import time

import pytest

from tests.e2e.test_migrate import CMP
from tests.e2e.test_migrate import booted
from tests.e2e.test_migrate import host_of
from tests.e2e.test_migrate import write_traffic

pytestmark = pytest.mark.watcher

GOAL = 'network_cost'
STRATEGY = 'network_aware_rebalance'
#: filled by the tests, printed at the end of the module (docs/advisor.md)
TIMES = {}


@pytest.fixture(scope='module')
def wstack(stack):
    if not stack.with_watcher:
        pytest.fail('the running local stack has no Watcher: run '
                    '"devstack/local-stack down" (the e2e fixture then '
                    'starts it with --with-watcher)')
    yield stack
    if TIMES:
        print('\nwatcher e2e timings: %s' % ', '.join(
            '%s %.1f s' % kv for kv in TIMES.items()))


@pytest.fixture(scope='module')
def world(wstack):
    layout = {'X': CMP[0], 'Y': CMP[2], 'U': CMP[3], 'V': CMP[1],
              'Q': CMP[1]}
    write_traffic(wstack, [])
    with booted(wstack, layout, 'wt') as ids:
        try:
            yield ids
        finally:
            write_traffic(wstack, [])


def hot(stack, ids):
    write_traffic(stack, [
        {'src': ids['X'], 'dst': ids['Y'], 'mbps': 24000},
        {'src': ids['U'], 'dst': ids['V'], 'mbps': 24000},
        {'src': ids['Q'], 'dst': ids['X'], 'mbps': 300},
        {'src': ids['X'], 'dst': ids['Q'], 'mbps': 200},
    ])


def optimize(stack, *args, **kw):
    return stack.osc('optimize', *args, **kw)


def _value(v):
    """A cell of ``-f json`` output: watcherclient leaves some dicts and
    lists as their Python repr."""
    if isinstance(v, str) and v[:1] in '[{':
        try:
            return json.loads(v)
        except ValueError:
            return ast.literal_eval(v)
    return v


def hosts_of(stack, ids):
    return {name: host_of(stack, sid) for name, sid in ids.items()}


def rebalance(stack, *args):
    """``openstack netaware rebalance`` (dry run): the planned moves
    ``[(server id, source, predicted destination)]`` and the summary
    numbers it prints (network cost and busiest link, before and after)."""
    res = stack.osc('netaware', 'rebalance', '--config-file', stack.nova_conf,
                    *args, '-f', 'json', check=False, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = json.loads(res.stdout)
    moves = [(r['ID'], r['Source'], r['Predicted destination'])
             for r in rows if r['Predicted destination'] != '-']
    cost = re.search(r'Network cost .*: ([\d.]+) -> ([\d.]+)', res.stderr)
    util = re.search(r'Max link utilisation: ([\d.]+)% -> ([\d.]+)%',
                     res.stderr)
    assert cost and util, res.stderr
    summary = {'network_cost_before': float(cost.group(1)),
               'network_cost_after': float(cost.group(2)),
               'busiest_link_before': float(util.group(1)),
               'busiest_link_after': float(util.group(2))}
    return moves, summary, res.stderr


def audit(stack, *params, audit_type=None, interval=None, goal=GOAL,
          strategy=STRATEGY, wait=True):
    """``openstack optimize audit create``; waits for a one-shot audit to
    end and returns its ``audit show`` record."""
    argv = ['audit', 'create', '--goal', goal]
    if strategy:
        argv += ['--strategy', strategy]
    for p in params:
        argv += ['-p', p]
    if audit_type:
        argv += ['--audit_type', audit_type]
    if interval:
        argv += ['--interval', str(interval)]
    uuid = optimize(stack, *argv, '-f', 'json')['UUID']
    if not wait:
        return uuid
    deadline = time.monotonic() + 120
    while True:
        shown = optimize(stack, 'audit', 'show', uuid, '-f', 'json')
        if shown['State'] in ('SUCCEEDED', 'FAILED', 'CANCELLED'):
            return shown
        assert time.monotonic() < deadline, shown
        time.sleep(1)


def plans_of(stack, audit_uuid):
    return optimize(stack, 'actionplan', 'list', '--audit', audit_uuid,
                    '-f', 'json')


def actions_of(stack, plan_uuid):
    rows = optimize(stack, 'action', 'list', '--action-plan', plan_uuid,
                    '--detail', '-f', 'json')
    for row in rows:
        row['Parameters'] = _value(row.get('Parameters'))
    return rows


def moves_of(actions):
    """``[(server id, source, destination or None)]`` of migrate actions,
    in plan order (each action's parent is the one before)."""
    return sorted((a['Parameters']['resource_id'],
                   a['Parameters']['source_node'],
                   a['Parameters'].get('destination_node'))
                  for a in actions if a['Action'] == 'migrate')


def indicators(stack, plan_uuid):
    shown = optimize(stack, 'actionplan', 'show', plan_uuid, '-f', 'json')
    ind = {i['name']: float(i['value'])
           for i in _value(shown['Efficacy indicators'])}
    glob = {g['name']: float(g['value'])
            for g in _value(shown['Global efficacy']) or []}
    return ind, glob, shown


def run_plan(stack, plan_uuid, timeout=600):
    """``openstack optimize actionplan start``, then wait for the end."""
    t0 = time.monotonic()
    optimize(stack, 'actionplan', 'start', plan_uuid, '-f', 'json')
    while True:
        state = optimize(stack, 'actionplan', 'show', plan_uuid,
                         '-f', 'json')['State']
        if state in ('SUCCEEDED', 'FAILED', 'CANCELLED'):
            return state, time.monotonic() - t0
        assert time.monotonic() - t0 < timeout, state
        time.sleep(1)


@contextlib.contextmanager
def moved_aside(path):
    """``path`` renamed for the duration (the topology goes missing)."""
    aside = path + '.aside'
    os.replace(path, aside)
    try:
        yield
    finally:
        os.replace(aside, path)


@contextlib.contextmanager
def netaware_options(stack, **options):
    """The stack's nova.conf with ``[netaware]`` options replaced, for the
    duration. Only the decision engine re-reads the file (at each audit);
    nova-scheduler read it at start and is not affected."""
    from nova_netaware.deploy import nova_conf as deploy
    backup = stack.nova_conf + '.e2e-backup'
    shutil.copy2(stack.nova_conf, backup)
    try:
        with open(stack.nova_conf) as f:
            lines = f.read().splitlines()
        out, section = [], None
        for line in lines:
            m = re.match(r'\[(.+)\]\s*$', line)
            if m:
                section = m.group(1)
            key = line.split('=', 1)[0].strip()
            if section == 'netaware' and key in options:
                continue
            out.append(line)
            if m and section == 'netaware':
                out.extend('%s = %s' % kv for kv in options.items())
        with open(stack.nova_conf, 'w') as f:
            f.write('\n'.join(out) + '\n')
        raw = deploy.read_ini(stack.nova_conf)['netaware']
        assert all(raw[k] == [str(v)] for k, v in options.items()), raw
        yield
    finally:
        os.replace(backup, stack.nova_conf)


# -- the services -----------------------------------------------------------

def test_watcher_is_an_infra_optim_service_with_our_goal_and_strategy(
        wstack):
    services = optimize(wstack, 'service', 'list', '-f', 'json')
    assert {s['Name']: s['Status'] for s in services} == {
        'watcher-decision-engine': 'ACTIVE', 'watcher-applier': 'ACTIVE'}
    catalog = wstack.osc('catalog', 'list', '-f', 'json')
    assert [c['Type'] for c in catalog if c['Name'] == 'watcher'] == [
        'infra-optim']
    goals = {g['Name'] for g in optimize(wstack, 'goal', 'list',
                                         '-f', 'json')}
    assert {'dummy', GOAL} <= goals
    strategy = optimize(wstack, 'strategy', 'show', STRATEGY, '-f', 'json')
    assert strategy['Goal'] == GOAL
    spec = _value(strategy['Parameters spec'])
    assert spec['max_migrations']['default'] == 5


def test_dummy_goal_plan_runs_on_the_stack(wstack, world):
    """Watcher's own dummy strategy: its decision engine reads the stack's
    Nova (compute data model) and the applier runs the plan."""
    t0 = time.monotonic()
    shown = audit(wstack, goal='dummy', strategy=None)
    assert shown['State'] == 'SUCCEEDED', shown
    plans = plans_of(wstack, shown['UUID'])
    assert [p['State'] for p in plans] == ['RECOMMENDED']
    kinds = sorted(a['Action'] for a in actions_of(wstack,
                                                   plans[0]['UUID']))
    assert kinds == ['nop', 'nop', 'sleep']
    state, _ = run_plan(wstack, plans[0]['UUID'])
    assert state == 'SUCCEEDED'
    TIMES['dummy audit + plan'] = time.monotonic() - t0


# -- the strategy -----------------------------------------------------------

def test_quiet_cloud_gives_an_empty_plan(wstack, world):
    write_traffic(wstack, [])
    moves, _, _ = rebalance(wstack)
    assert moves == []
    shown = audit(wstack)
    assert shown['State'] == 'SUCCEEDED', shown
    for plan in plans_of(wstack, shown['UUID']):
        assert actions_of(wstack, plan['UUID']) == []


def test_continuous_audit_reacts_to_a_traffic_change(wstack, world):
    """A continuous audit (10 s): quiet cloud, empty plans; a new hot link
    makes the next run plan the moves ``rebalance`` plans."""
    write_traffic(wstack, [])
    before = hosts_of(wstack, world)
    uuid = audit(wstack, 'max_migrations=2', audit_type='CONTINUOUS',
                 interval=10, wait=False)
    try:
        deadline = time.monotonic() + 90
        while not plans_of(wstack, uuid):
            assert time.monotonic() < deadline, 'no run of the audit'
            time.sleep(1)
        for plan in plans_of(wstack, uuid):
            assert actions_of(wstack, plan['UUID']) == []
        seen = {p['UUID'] for p in plans_of(wstack, uuid)}
        hot(wstack, world)
        t0 = time.monotonic()
        expected, _, _ = rebalance(wstack, '--max-migrations', '2')
        assert len(expected) == 2
        deadline = time.monotonic() + 90
        found = None
        while found is None:
            for plan in plans_of(wstack, uuid):
                if plan['UUID'] in seen:
                    continue
                acts = actions_of(wstack, plan['UUID'])
                if acts:
                    found = acts
                    break
                seen.add(plan['UUID'])
            assert time.monotonic() < deadline, 'no new plan after the ' \
                'traffic change'
            time.sleep(1)
        TIMES['continuous audit: traffic change -> plan'] = \
            time.monotonic() - t0
        assert moves_of(found) == sorted(
            (sid, src, None) for sid, src, _ in expected)
    finally:
        optimize(wstack, 'audit', 'update', uuid, 'replace',
                 'state=CANCELLED', check=False)
        write_traffic(wstack, [])
    # a recommendation only: nothing moved
    assert hosts_of(wstack, world) == before


def test_missing_topology_fails_the_audit_and_moves_nothing(wstack, world):
    hot(wstack, world)
    before = hosts_of(wstack, world)
    with moved_aside(wstack.topology_file):
        shown = audit(wstack)
    assert shown['State'] == 'FAILED', shown
    assert 'nova-netaware' in shown['Status Message']
    assert 'topology' in shown['Status Message'], shown['Status Message']
    assert plans_of(wstack, shown['UUID']) == []
    assert hosts_of(wstack, world) == before
    print('\nmissing topology: %s' % shown['Status Message'])


def test_dead_traffic_source_fails_the_audit_and_moves_nothing(wstack,
                                                               world):
    hot(wstack, world)
    before = hosts_of(wstack, world)
    # nothing listens on port 9 (discard) here
    with netaware_options(wstack, traffic_source='prometheus',
                          prometheus_url='http://127.0.0.1:9'):
        shown = audit(wstack)
    assert shown['State'] == 'FAILED', shown
    assert 'prometheus' in shown['Status Message'].lower(), shown
    assert plans_of(wstack, shown['UUID']) == []
    assert hosts_of(wstack, world) == before
    print('\ndead traffic source: %s' % shown['Status Message'])


def test_action_nova_refuses_fails_the_plan(wstack, world):
    """The planned server is paused after the audit: Nova refuses the cold
    migration (409), the action and the plan are FAILED, and the server
    stays where it was."""
    hot(wstack, world)
    shown = audit(wstack, 'max_migrations=1')
    assert shown['State'] == 'SUCCEEDED', shown
    [plan] = plans_of(wstack, shown['UUID'])
    [action] = actions_of(wstack, plan['UUID'])
    sid = action['Parameters']['resource_id']
    source = host_of(wstack, sid)
    wstack.osc('server', 'pause', sid)
    try:
        state, _ = run_plan(wstack, plan['UUID'])
        assert state == 'FAILED'
        [action] = actions_of(wstack, plan['UUID'])
        assert action['State'] == 'FAILED', action
        print('\nrefused action: %s' % action.get('Status Message'))
        assert host_of(wstack, sid) == source
    finally:
        wstack.osc('server', 'unpause', sid, check=False)
        deadline = time.monotonic() + 60
        while wstack.conn.compute.get_server(sid).status != 'ACTIVE':
            assert time.monotonic() < deadline
            time.sleep(0.5)


def test_audit_plan_is_rebalance_plan_and_runs_to_the_predicted_hosts(
        wstack, world):
    """The audit's migrations are the ones ``openstack netaware rebalance``
    plans; ``actionplan start`` runs them (2 in parallel, Watcher's
    planner) and every server lands on its predicted host; the efficacy
    indicators are the command's numbers."""
    hot(wstack, world)
    before = hosts_of(wstack, world)
    expected, summary, text = rebalance(wstack, '--max-migrations', '2')
    assert len(expected) == 2, text
    t0 = time.monotonic()
    shown = audit(wstack, 'max_migrations=2')
    TIMES['one-shot audit'] = time.monotonic() - t0
    assert shown['State'] == 'SUCCEEDED', shown
    [plan] = plans_of(wstack, shown['UUID'])
    actions = actions_of(wstack, plan['UUID'])
    # no destination: Nova's scheduler, with our filter and weigher, picks
    assert moves_of(actions) == sorted(
        (sid, src, None) for sid, src, _ in expected)
    assert all(a['Parameters']['migration_type'] == 'cold' for a in actions)
    ind, glob, _ = indicators(wstack, plan['UUID'])
    for name, value in summary.items():
        assert ind[name] == pytest.approx(value, abs=0.05), (name, ind)
    assert ind['instance_migrations_count'] == 2
    assert ind['migration_volume'] > 0
    assert glob['network_cost_reduction'] > 0
    print('\n%s\nindicators: %s\nglobal: %s' % (text, ind, glob))

    state, seconds = run_plan(wstack, plan['UUID'])
    TIMES['actionplan start -> SUCCEEDED (2 cold migrations)'] = seconds
    assert state == 'SUCCEEDED', actions_of(wstack, plan['UUID'])
    predicted = {sid: dst for sid, _, dst in expected}
    after = hosts_of(wstack, world)
    for name, sid in world.items():
        assert after[name] == predicted.get(sid, before[name]), (
            name, before, after, expected)
    # the hot spots are gone: the next audit plans nothing
    shown = audit(wstack)
    assert shown['State'] == 'SUCCEEDED', shown
    for plan in plans_of(wstack, shown['UUID']):
        assert actions_of(wstack, plan['UUID']) == []
