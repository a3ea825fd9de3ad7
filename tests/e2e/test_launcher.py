"""The launcher's own commands on the running stack."""

import os
import subprocess

LAUNCHER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'devstack', 'local-stack')


def launcher(stack, *args):
    env = dict(stack.env, NETAWARE_STACK_DIR=stack.settings.state_dir)
    return subprocess.run([LAUNCHER] + list(args), env=env,
                          capture_output=True, text=True, timeout=120)


def test_second_up_says_already_running(stack):
    res = launcher(stack, 'up')
    assert res.returncode == 0, res.stderr
    assert 'already running' in res.stdout


def test_status_shows_every_service_running(stack):
    res = launcher(stack, 'status')
    assert res.returncode == 0, res.stdout + res.stderr
    names = [line.split()[0] for line in res.stdout.splitlines()
             if ' pid ' in line]
    assert {'keystone', 'glance', 'placement', 'nova-api', 'nova-conductor',
            'nova-scheduler', 'network-standin'} <= set(names)
    computes = [n for n in names if n.startswith('nova-compute-')]
    assert len(computes) >= 4
    assert 'DOWN' not in res.stdout


def test_logs_in_one_directory(stack):
    res = launcher(stack, 'logs', 'nova-scheduler', '-n', '3')
    assert res.returncode == 0, res.stderr
    assert 'log directory: %s' % stack.settings.logs in res.stdout
    assert stack.scheduler_log in res.stdout
