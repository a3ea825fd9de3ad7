"""Configuration, generated sample, CLI and metrics endpoint."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CLI = [sys.executable, '-m', 'nova_netaware.replica.cmd']


def _cli(*args, timeout=60):
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    return subprocess.run(CLI + list(args), capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_sample_config_is_up_to_date(tmp_path):
    out = tmp_path / 'sample.conf'
    gen = os.path.join(os.path.dirname(sys.executable),
                       'oslo-config-generator')
    subprocess.run([gen, '--config-file',
                    os.path.join(ROOT, 'etc',
                                 'replica-agent-config-generator.conf'),
                    '--output-file', str(out)], check=True, cwd=ROOT)
    with open(os.path.join(ROOT, 'etc', 'replica-agent.conf.sample')) as f:
        assert f.read() == out.read_text(), \
            'regenerate: oslo-config-generator --config-file ' \
            'etc/replica-agent-config-generator.conf'


def test_list_opts_entry_point():
    from importlib.metadata import entry_points
    eps = {e.name: e for e in entry_points(group='oslo.config.opts')}
    opts = eps['nova_netaware.replica'].load()()
    names = {o.name for _, group in opts for o in group}
    assert {'agent_id', 'overflow_policy', 'coordination_url',
            'peer_hmac_key', 'policy_time_quantum'} <= names
    for group in ('dataplanes', 'state_drivers', 'cloud_drivers'):
        assert entry_points(group='nova_netaware.replica.' + group)


def test_missing_required_option(tmp_path):
    c = tmp_path / 'a.conf'
    c.write_text('[replica]\n')
    r = _cli('--config-file', str(c), 'status')
    assert r.returncode == 2
    assert 'value required for option agent_id in group [replica]' in \
        r.stderr


def test_invalid_choice(tmp_path):
    c = tmp_path / 'a.conf'
    c.write_text('[replica]\nagent_id = a\noverflow_policy = evict-oldest\n'
                 'control_socket = %s/x.sock\n' % tmp_path)
    r = _cli('--config-file', str(c), 'run')
    assert r.returncode != 0
    assert 'overflow_policy' in r.stderr and 'evict-oldest' in r.stderr


def test_missing_config_file_and_command():
    r = _cli('--config-file', '/nonexistent/replica.conf', 'status')
    assert r.returncode == 2 and 'nonexistent' in r.stderr
    r = _cli()
    assert r.returncode != 0 and 'command' in r.stderr.lower()


def test_status_without_agent_is_clear(tmp_path):
    c = tmp_path / 'a.conf'
    c.write_text('[replica]\nagent_id = a\ncontrol_socket = %s/none.sock\n'
                 % tmp_path)
    r = _cli('--config-file', str(c), 'status')
    assert r.returncode == 2
    assert 'control socket' in r.stderr and 'none.sock' in r.stderr


def test_agent_refuses_short_hmac_key(tmp_path):
    c = tmp_path / 'a.conf'
    c.write_text('[replica]\nagent_id = a\npeer_host = 127.0.0.1\n'
                 'peer_hmac_key = short\nstate_dir = %s\n'
                 'control_socket = %s/a.sock\n' % (tmp_path, tmp_path))
    r = _cli('--config-file', str(c), 'run', timeout=30)
    assert r.returncode != 0 and 'at least 16' in r.stderr


@pytest.mark.netns
def test_cli_status_switchover_and_metrics(lab):
    lab.start_guest('a')
    lab.start_guest('b')
    lab.start_agent('a', metrics_port=9101)
    lab.start_agent('b', metrics_port=9101, realtime_priority=3)
    assert lab.wait_idle() == 'a'
    conf_b = os.path.join(lab.dir, 'agent-b.conf')
    r = _cli('--config-file', conf_b, 'status')
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)['status']
    for key in ('role', 'epoch', 'buffer', 'last_switchover', 'counters'):
        assert key in st
    # realtime_priority: every thread of agent b, as the kernel sees it
    # (field 41 of /proc/<pid>/task/<tid>/stat: policy, 1 = SCHED_FIFO)
    assert st['scheduling']['policy'] == 'fifo', st['scheduling']
    assert st['scheduling']['priority'] == 3
    tasks = '/proc/%d/task' % st['pid']
    pols = set()
    for tid in os.listdir(tasks):
        with open('%s/%s/stat' % (tasks, tid)) as f:
            pols.add(f.read().rsplit(')', 1)[1].split()[38])
    assert pols == {'1'}, pols
    assert st['role'] == 'standby' and st['epoch'] == 1
    assert set(st['buffer']) >= {'packets', 'bytes', 'oldest_age_s'}
    ca = lab.start_client('a', 'a1', 20, 1000, timeout=10)
    c = lab.start_client('b', 'b1', 50, 1000, timeout=10)
    lab.wait_sent(c, 20)
    assert lab.client_result(ca)['missing_count'] == 0
    r = _cli('--config-file', conf_b, 'switchover')
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)['ok']
    assert lab.client_result(c)['missing_count'] == 0
    st = lab.status('b')
    assert st['role'] == 'active' and st['epoch'] == 2
    assert st['last_switchover']['replayed'] == 50
    assert st['last_switchover']['downtime_s'] is not None
    # the Prometheus endpoint, inside the hypervisor namespace
    out = subprocess.run(
        ['ip', 'netns', 'exec', lab.ns('hv', 'b'), sys.executable, '-c',
         'import urllib.request;print(urllib.request.urlopen('
         '"http://127.0.0.1:9101/metrics", timeout=5).read().decode())'],
        capture_output=True, text=True, timeout=30, check=True).stdout
    assert 'nnr_role{agent="agent-b",role="active",service=' in out
    assert 'nnr_epoch{agent="agent-b"' in out
    assert 'nnr_buffer_packets{' in out
    assert 'nnr_last_switchover_downtime_seconds{' in out
    assert 'nnr_switchovers_in_total{' in out


def test_replicate_bad_arguments(tmp_path):
    r = _cli('replicate', '--from', 'no-colon', '--to', 'b', '--config-dir',
             str(tmp_path))
    assert r.returncode == 2
    assert '--from must be CLOUD:SERVER' in r.stderr
    r = _cli('replicate', '--to', 'b', '--config-dir', str(tmp_path))
    assert r.returncode == 2
    assert 'the following arguments are required: --from' in r.stderr


def test_replicate_unknown_cloud_names_the_step(tmp_path):
    """A real clouds.yaml without the cloud: the command fails at 'resolve'
    (before anything is created) and writes no config file."""
    y = tmp_path / 'clouds.yaml'
    y.write_text('clouds:\n  only:\n    auth:\n      auth_url: '
                 'http://127.0.0.1:9/v3\n')
    d = tmp_path / 'pair'
    r = _cli('replicate', '--from', 'missing:srv', '--to', 'only',
             '--config-dir', str(d), '--os-config-file', str(y))
    assert r.returncode == 1
    assert "replicate failed at step 'resolve'" in r.stderr, r.stderr
    assert "cannot load cloud 'missing'" in r.stderr, r.stderr
    assert not d.exists()


def test_agent_sets_its_priority_and_survives_a_refusal():
    """The agent's nice value: set when allowed; when the kernel refuses,
    the value stays and the agent goes on (a forked child, so the test
    process keeps its own priority)."""
    import os
    from nova_netaware.replica import cmd
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            got = [cmd.set_priority(5)]
            os.setuid(65534)          # nobody: may not lower nice again
            got.append(cmd.set_priority(-5))
            os.write(w, ('%d %d' % tuple(got)).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    os.close(w)
    assert os.read(r, 100).decode() == '5 5'


def test_agent_takes_realtime_priority_and_survives_a_refusal():
    """``realtime_priority``: the agent's thread enters SCHED_FIFO and a
    thread it starts afterwards inherits it; when the kernel refuses (an
    unprivileged user raising it), the class stays as it was and the
    agent goes on. A forked child, so the test process keeps its class."""
    import threading
    from nova_netaware.replica import cmd
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            got = [cmd.set_realtime(5)]
            seen = []
            t = threading.Thread(target=lambda: seen.append(
                os.sched_getscheduler(0) == os.SCHED_FIFO))
            t.start()
            t.join()
            os.setuid(65534)          # nobody: may not raise it again
            got.append(cmd.set_realtime(7))
            os.write(w, ('%s %s %s' % (got[0], got[1], seen)).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    os.close(w)
    assert os.read(r, 200).decode() == "('fifo', 5) ('fifo', 5) [True]"
