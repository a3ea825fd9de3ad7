"""Launcher pieces that need no running services (fast).

The stack itself is exercised by tests/e2e.
"""

import io
import json
import os
import subprocess
import sys
import time

import pytest

from nova_netaware.deploy.exceptions import StackError
from nova_netaware.deploy.localstack import configuration
from nova_netaware.deploy.localstack import netstub
from nova_netaware.deploy.localstack import processes
from nova_netaware.deploy.localstack import settings as ls_settings
from nova_netaware.deploy.localstack import stack as ls

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def settings(tmp_path):
    s = ls_settings.Settings(str(tmp_path / 'state'), computes=4,
                             port_base=26000)
    os.makedirs(s.logs, exist_ok=True)
    return s


def test_settings_hosts_ports_and_state(tmp_path):
    s = settings(tmp_path)
    assert s.hosts == ['netaware-cmp1', 'netaware-cmp2', 'netaware-cmp3',
                       'netaware-cmp4']
    assert 'compute' not in s.hosts   # the fake driver's special name
    assert len(set(s.ports.values())) == len(ls_settings.PORT_NAMES)
    assert s.db_url('nova_api').endswith('/netaware_nova_api?charset=utf8')
    with pytest.raises(StackError):
        ls_settings.Settings(str(tmp_path), computes=1)


def test_default_state_dir_is_gitignored():
    with open(os.path.join(ROOT, '.gitignore')) as f:
        assert '/local-stack-state/' in f.read().split()
    assert ls_settings._default_state_dir() == os.path.join(
        ROOT, 'local-stack-state')


def test_write_configs_uses_the_shared_deployer(tmp_path):
    s = settings(tmp_path)
    configuration.write_configs(s)
    from nova_netaware.deploy import nova_conf as deploy
    nova_conf = os.path.join(s.etc, 'nova', 'nova.conf')
    raw = deploy.read_ini(nova_conf)
    fs = raw['filter_scheduler']
    assert fs['available_filters'] == [deploy.ALL_FILTERS, deploy.FILTER_PATH]
    assert fs['enabled_filters'][0].split(',')[-1] == 'NetworkAwareFilter'
    assert fs['weight_classes'] == [
        deploy.ALL_WEIGHERS + ',' + deploy.WEIGHER_PATH]
    assert raw['netaware']['topology_file'] == [s.topology_file]
    # exactly what the devstack plugin would add: nothing more to do
    assert deploy.nova_conf_edits(
        raw, configuration.netaware_settings(s)) == []
    assert raw['DEFAULT']['compute_driver'] == [
        'fake.FakeDriverWithoutFakeNodes']
    import yaml
    with open(s.topology_file) as f:
        topo = yaml.safe_load(f)
    assert [h['name'] for h in topo['hosts']] == s.hosts
    for host in s.hosts:
        conf = deploy.read_ini(os.path.join(
            s.etc, 'nova', 'nova-compute-%s.conf' % host))
        assert conf['DEFAULT']['host'] == [host]


def test_why_quotes_the_telling_line(tmp_path):
    log = tmp_path / 'svc.log'
    log.write_text(
        '==== 2026-01-01: starting old\nERROR old problem\n'
        '==== 2026-01-01 00:00:00: starting /bin/svc\n'
        'INFO starting\n'
        'Traceback (most recent call last):\n'
        '  File "x.py", line 1, in <module>\n'
        'oslo_db.exception.DBConnectionError: (2003, "Can\'t connect")\n'
        '[2026-01-01 00:00:01 +0000] [9] [ERROR] Worker (pid:10) exited '
        'with code 3\n'
        '[2026-01-01 00:00:01 +0000] [9] [ERROR] Reason: App failed to '
        'load.\n')
    assert processes.why(str(log)).startswith(
        'oslo_db.exception.DBConnectionError')
    log.write_text('==== x: starting y\nINFO a\nERROR nova.x bad config\n'
                   'INFO b\n')
    assert processes.why(str(log)) == 'ERROR nova.x bad config'
    assert 'no log' in processes.why(str(tmp_path / 'missing.log'))


def test_failed_service_is_named_with_its_log_line(tmp_path):
    s = settings(tmp_path)
    procs = processes.Procs(s)
    rec = procs.start('nova-pretend', [
        sys.executable, '-c',
        'import sys; print("INFO starting"); '
        'sys.stderr.write("CRITICAL nova [-] Unhandled error: '
        'ConfigFileValueError: bad value\\n"); sys.exit(1)'])
    with pytest.raises(StackError) as exc:
        processes.wait_for('nova-pretend', lambda: False, 30, proc=rec)
    msg = str(exc.value)
    assert msg.startswith('nova-pretend did not start: its process exited')
    assert 'CRITICAL nova [-] Unhandled error: ConfigFileValueError' in msg
    assert s.log('nova-pretend') in msg
    # and a service that never answers
    rec = procs.start('slow', [sys.executable, '-c',
                               'import time; time.sleep(30)'])
    with pytest.raises(StackError) as exc:
        processes.wait_for('slow', lambda: False, 1, proc=rec)
    assert 'no answer within 1s' in str(exc.value)
    procs.stop_all(timeout=5)


def test_down_stops_only_what_it_started(tmp_path):
    s = settings(tmp_path)
    procs = processes.Procs(s)
    ours = procs.start('ours', [sys.executable, '-c',
                                'import time; time.sleep(60)'])
    other = subprocess.Popen([sys.executable, '-c',
                              'import time; time.sleep(60)'])
    try:
        # a recorded pid now used by another process is not ours any more
        fake = dict(ours, name='reused', start_time=ours['start_time'] - 1)
        procs.records.append(fake)
        procs.save()
        assert not processes._alive(fake)
        stopped = processes.Procs(s).stop_all(timeout=10)
        assert [r['name'] for r in stopped] == ['ours']
        assert not processes._alive(ours)
        assert other.poll() is None
        with open(s.procs_file) as f:
            assert json.load(f) == []
    finally:
        other.kill()
        other.wait()


def test_second_up_reports_already_running(tmp_path, capsys):
    s = settings(tmp_path)
    procs = processes.Procs(s)
    procs.start('keystone', [sys.executable, '-c',
                             'import time; time.sleep(60)'])
    try:
        assert ls.Stack(s).up() == 0
        assert 'already running' in capsys.readouterr().out
    finally:
        processes.Procs(s).stop_all(timeout=10)
    # a dead process: up refuses and says which one
    procs = processes.Procs(s)
    rec = procs.start('nova-api', [sys.executable, '-c', 'pass'])
    deadline = time.monotonic() + 10
    while processes._alive(rec) and time.monotonic() < deadline:
        time.sleep(0.1)
    with pytest.raises(StackError) as exc:
        ls.Stack(s).up()
    assert 'nova-api' in str(exc.value) and 'down' in str(exc.value)
    ls.Stack(s).down()


class _RecordingProcs(object):
    """Stands in for the process table: records what would be started."""

    def __init__(self):
        self.started = []

    def start(self, name, argv, env=None):
        self.started.append(name)
        return {'name': name, 'argv': argv, 'env': env}


@pytest.mark.parametrize('order', [
    ('keystone', 'nova', 'register', 'placement', 'glance'),
    ('placement', 'keystone', 'register', 'glance', 'nova'),
])
def test_nova_daemons_start_once_after_schema_and_registration(tmp_path,
                                                               order):
    s = settings(tmp_path)
    procs = _RecordingProcs()
    startup = ls._Startup(s, procs, timeout=1)
    started = []
    for name in order:
        startup.start(name)
        started.append(name)
        daemons = [n for n in procs.started if n in ls._DAEMONS]
        ready = {'nova', 'register'} <= set(started)
        assert daemons == (list(ls._DAEMONS) if ready else [])
    apis = [n for n in procs.started if n not in ls._DAEMONS]
    assert sorted(apis) == ['glance', 'keystone', 'network-standin',
                            'nova-api', 'placement']


def _call(path, method='GET'):
    out = {}

    def start_response(status, headers):
        out['status'] = status

    body = b''.join(netstub.application(
        {'REQUEST_METHOD': method, 'PATH_INFO': path, 'QUERY_STRING': '',
         'HTTP_X_PROJECT_ID': 'p1', 'wsgi.input': io.BytesIO()},
        start_response))
    return out['status'], json.loads(body)


def test_network_standin_answers_like_an_empty_neutron():
    status, body = _call('/v2.0/ports')
    assert status.startswith('200') and body == {'ports': []}
    status, body = _call('/v2.0/security-groups.json')
    assert [g['name'] for g in body['security_groups']] == ['default']
    status, body = _call('/v2.0/floatingips')
    assert body == {'floatingips': []}
    status, _ = _call('/v2.0/ports/1234')
    assert status.startswith('404')
    status, body = _call('/v2.0/ports', method='POST')
    assert status.startswith('501') and 'not Neutron' in json.dumps(body)


def test_env_puts_the_venv_first_and_names_the_netaware_config(tmp_path):
    """``eval "$(devstack/local-stack env)"`` in a shell whose PATH has no
    virtualenv: openstack and nova-netaware resolve to the stack's venv, and
    ``openstack netaware`` reads the stack's [netaware] section."""
    s = settings(tmp_path)
    configuration.write_configs(s)
    launcher = os.path.join(ROOT, 'devstack', 'local-stack')
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('OS_', 'NETAWARE_'))}
    env.update(PATH='/usr/bin:/bin',
               NETAWARE_VENV=os.path.dirname(os.path.dirname(sys.executable)))
    script = ('eval "$("$1" --state-dir "$2" env)" && command -v openstack '
              '&& command -v nova-netaware && printenv OS_CLOUD '
              'OS_CLIENT_CONFIG_FILE NETAWARE_CONFIG_FILE')
    r = subprocess.run(['bash', '-c', script, 'sh', launcher, s.state_dir],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    bindir = os.path.dirname(sys.executable)
    nova_conf = os.path.join(s.etc, 'nova', 'nova.conf')
    assert r.stdout.split('\n')[:5] == [
        os.path.join(bindir, 'openstack'),
        os.path.join(bindir, 'nova-netaware'),
        ls_settings.CLOUD, s.clouds_yaml, nova_conf]
    # what `openstack netaware explain` then reads: the stack's topology
    from nova_netaware.osc import data as osc_data
    old = os.environ.get(osc_data.CONFIG_ENV)
    os.environ[osc_data.CONFIG_ENV] = nova_conf
    try:
        c = osc_data.load_conf()
    finally:
        if old is None:
            del os.environ[osc_data.CONFIG_ENV]
        else:
            os.environ[osc_data.CONFIG_ENV] = old
    assert c.netaware.topology_file == s.topology_file


def test_env_quotes_paths_for_the_shell(tmp_path):
    s = settings(tmp_path / 'with space')
    r = subprocess.run(['bash', '-c', '\n'.join(s.shell_exports()) +
                        '\nprintenv OS_CLIENT_CONFIG_FILE'],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == s.clouds_yaml


def test_demo_scores_table_fits_long_host_names():
    from nova_netaware.deploy.localstack import demo
    totals = {'netaware-cmp1': 1.5, 'a-much-longer-host-name-17': 2.0}
    ours = {'netaware-cmp1': 0.25}
    lines = demo.scores_table(totals, ours)
    header, rows = lines[0], lines[1:]
    # the best total first; every column starts where the header's does
    assert [r.split()[0] for r in rows] == ['a-much-longer-host-name-17',
                                            'netaware-cmp1']
    for row in rows:
        assert row.split()[1:] == ['%.3f' % totals[row.split()[0]],
                                   '%.3f' % ours.get(row.split()[0], 0.0),
                                   '%.3f' % (totals[row.split()[0]] +
                                             ours.get(row.split()[0], 0.0))]
        assert len(row) == len(header)
        host = row.split()[0]
        # at least one space between the host and the next column
        assert row[2 + len(host)] == ' '


def test_scheduler_workers_and_ledger_options(tmp_path, monkeypatch):
    for var in ('NETAWARE_STACK_SCHEDULER_WORKERS',
                'NETAWARE_STACK_LEDGER_BACKEND', 'NETAWARE_STACK_LEDGER_URL'):
        monkeypatch.delenv(var, raising=False)
    from nova_netaware.deploy import nova_conf as deploy
    # default: one worker, no ledger line (the plugin's own default)
    s = settings(tmp_path)
    configuration.write_configs(s)
    raw = deploy.read_ini(s.conf('nova', 'nova.conf'))
    assert raw['scheduler']['workers'] == ['1']
    assert not {'ledger_backend', 'ledger_url'} & set(raw['netaware'])
    # two workers sharing the ledger on the local Redis
    monkeypatch.setenv('NETAWARE_STACK_SCHEDULER_WORKERS', '2')
    monkeypatch.setenv('NETAWARE_STACK_LEDGER_BACKEND', 'tooz')
    s = settings(tmp_path)
    assert s.ledger_url == ls_settings.REDIS_URL
    configuration.write_configs(s)
    raw = deploy.read_ini(s.conf('nova', 'nova.conf'))
    assert raw['scheduler']['workers'] == ['2']
    assert raw['netaware']['ledger_backend'] == ['tooz']
    assert raw['netaware']['ledger_url'] == [ls_settings.REDIS_URL]
    # the restart edits: applied to that file they change nothing
    before = open(s.conf('nova', 'nova.conf')).read()
    deploy.apply_edits(s.conf('nova', 'nova.conf'),
                       configuration.scheduler_edits(s))
    assert open(s.conf('nova', 'nova.conf')).read() == before
    # and back to one worker, in-process ledger, other url
    s = ls_settings.Settings(s.state_dir, scheduler_workers=1,
                             ledger_backend='memory',
                             ledger_url='redis://127.0.0.1:1')
    deploy.apply_edits(s.conf('nova', 'nova.conf'),
                       configuration.scheduler_edits(s))
    raw = deploy.read_ini(s.conf('nova', 'nova.conf'))
    assert raw['scheduler']['workers'] == ['1']
    assert raw['netaware']['ledger_backend'] == ['memory']
    assert raw['netaware']['ledger_url'] == ['redis://127.0.0.1:1']
    for bad in ({'scheduler_workers': 0}, {'ledger_backend': 'etcd'}):
        with pytest.raises(StackError):
            ls_settings.Settings(s.state_dir, **bad)


def test_stop_one_process_drops_only_its_record(tmp_path):
    s = settings(tmp_path)
    procs = processes.Procs(s)
    sleep = [sys.executable, '-c', 'import time; time.sleep(60)']
    a = procs.start('nova-compute-a', sleep)
    b = procs.start('nova-compute-b', sleep)
    try:
        import signal
        rec = processes.Procs(s).stop('nova-compute-a', signal.SIGKILL)
        assert rec['pid'] == a['pid']
        assert not processes._alive(a)
        assert processes._alive(b)
        assert [r['name'] for r in processes.Procs(s).records] == [
            'nova-compute-b']
        assert processes.Procs(s).stop('nova-compute-a') is None
    finally:
        processes.Procs(s).stop_all(timeout=5)


def test_compute_commands_check_the_host(tmp_path):
    st = ls.Stack(settings(tmp_path))
    with pytest.raises(StackError) as exc:
        st.stop_compute('netaware-cmp9')
    assert 'unknown compute host' in str(exc.value)
    with pytest.raises(StackError) as exc:
        st.start_compute('netaware-cmp1')
    assert 'not running' in str(exc.value)


# -- up --with-watcher ------------------------------------------------------

def watcher_settings(tmp_path):
    s = ls_settings.Settings(str(tmp_path / 'state'), computes=4,
                             port_base=26000, with_watcher=True)
    os.makedirs(s.logs, exist_ok=True)
    return s


def test_without_watcher_nothing_of_watcher_is_written(tmp_path):
    s = settings(tmp_path)
    configuration.write_configs(s)
    from nova_netaware.deploy import nova_conf as deploy
    assert not os.path.exists(s.conf('watcher', 'watcher.conf'))
    assert 'watcher' not in s.dbs
    assert 'watcher' not in ls._Startup(s, _RecordingProcs(), 1).setups()
    raw = deploy.read_ini(os.path.join(s.etc, 'nova', 'nova.conf'))
    assert raw['oslo_messaging_notifications']['driver'] == ['noop']


def test_with_watcher_nova_sends_versioned_notifications(tmp_path):
    s = watcher_settings(tmp_path)
    configuration.write_configs(s)
    from nova_netaware.deploy import nova_conf as deploy
    raw = deploy.read_ini(os.path.join(s.etc, 'nova', 'nova.conf'))
    assert raw['oslo_messaging_notifications']['driver'] == ['messagingv2']
    assert raw['notifications']['notification_format'] == ['versioned']
    assert s.dbs[-1] == 'watcher'
    # the plugin's lines are the same with or without Watcher
    assert deploy.nova_conf_edits(
        raw, configuration.netaware_settings(s)) == []


def _watcher_opt_names():
    """{group: option names} of Watcher's own options (watcher.conf.opts),
    the dynamic group of its compute collector included. In a subprocess:
    Watcher registers options on oslo.config's global CONF, which Nova's
    (imported by other tests here) already holds, e.g. ``host``."""
    pytest.importorskip('watcher')
    code = (
        'import json\n'
        'from watcher.conf import opts\n'
        'from watcher.decision_engine.model.collector import nova\n'
        'names = {}\n'
        'for group, group_opts in opts.list_opts():\n'
        '    key = getattr(group, "name", group)\n'
        '    names.setdefault(key, []).extend(o.dest for o in group_opts)\n'
        'names["watcher_cluster_data_model_collectors.compute"] = [\n'
        '    o.dest for o in\n'
        '    nova.NovaClusterDataModelCollector.get_config_opts()]\n'
        'from nova_netaware.watcher import strategy\n'
        'names["watcher_strategies.network_aware_rebalance"] = [\n'
        '    o.dest for o in\n'
        '    strategy.NetworkAwareRebalance.get_config_opts()]\n'
        'print(json.dumps(names))\n')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return {k: set(v) for k, v in json.loads(res.stdout).items()}


def test_watcher_conf_options_are_watcher_options(tmp_path):
    """Every option written in a section that Watcher owns is one of
    Watcher's options (a misspelt name would be silently ignored)."""
    s = watcher_settings(tmp_path)
    configuration.write_configs(s)
    from nova_netaware.deploy import nova_conf as deploy
    raw = deploy.read_ini(s.conf('watcher', 'watcher.conf'))
    known = _watcher_opt_names()
    owned = ('api', 'nova', 'placement', 'placement_client', 'collector',
             'watcher_decision_engine', 'watcher_planner',
             'watcher_cluster_data_model_collectors.compute',
             'watcher_strategies.network_aware_rebalance')
    for section in owned:
        assert section in raw
        unknown = set(raw[section]) - known[section]
        assert not unknown, (section, unknown)
    assert raw['api']['port'] == [str(s.ports['watcher-api'])]
    assert raw['database']['connection'] == [s.db_url('watcher')]
    assert raw['collector']['collector_plugins'] == ['compute']
    # nova-netaware's strategy reads the scheduler's [netaware] options
    assert raw['watcher_strategies.network_aware_rebalance'][
        'config_files'] == [s.conf('nova', 'nova.conf')]
    assert raw['watcher_clients_auth']['username'] == ['watcher']
    assert raw['keystone_authtoken']['username'] == ['watcher']
    assert raw['DEFAULT']['transport_url'][0].endswith(
        '/' + ls_settings.VHOST)


def test_watcher_conf_is_parsed_by_watcher(tmp_path):
    """Watcher's own option parser reads the file: the values it sees."""
    pytest.importorskip('watcher')
    s = watcher_settings(tmp_path)
    configuration.write_configs(s)
    code = (
        'import sys\n'
        'from watcher import conf\n'
        'from watcher.common import config\n'
        'from watcher.common import service  # noqa: registers options\n'
        'config.parse_args(["x", "--config-file", sys.argv[1]])\n'
        'c = conf.CONF\n'
        'print(c.api.port, c.nova.migration_interval, '
        'c.nova.valid_interfaces, c.collector.collector_plugins, '
        'c.watcher_planner.planner)\n')
    res = subprocess.run([sys.executable, '-c', code,
                          s.conf('watcher', 'watcher.conf')],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [
        str(s.ports['watcher-api']), '1.0', "['public']", "['compute']",
        'weight']


@pytest.mark.parametrize('order', [
    ('keystone', 'watcher', 'nova', 'register', 'placement', 'glance'),
    ('watcher', 'placement', 'keystone', 'register', 'glance', 'nova'),
])
def test_watcher_api_starts_with_its_schema(tmp_path, order):
    s = watcher_settings(tmp_path)
    procs = _RecordingProcs()
    startup = ls._Startup(s, procs, timeout=1)
    assert 'watcher' in startup.setups()
    for name in order:
        startup.start(name)
    apis = [n for n in procs.started if n not in ls._DAEMONS]
    assert sorted(apis) == ['glance', 'keystone', 'network-standin',
                            'nova-api', 'placement', 'watcher-api']
    assert startup.apis['watcher-api']['env'] == {
        'NETAWARE_WATCHER_CONF': s.conf('watcher', 'watcher.conf')}
    assert 'watcher-api' in s.health_urls()


def test_up_with_watcher_on_a_stack_without_it_says_so(tmp_path):
    s = settings(tmp_path)
    procs = processes.Procs(s)
    procs.start('keystone', [sys.executable, '-c',
                             'import time; time.sleep(60)'])
    try:
        w = ls_settings.Settings(s.state_dir, computes=4, port_base=26000,
                                 with_watcher=True)
        with pytest.raises(StackError) as exc:
            ls.Stack(w).up()
        assert '--with-watcher' in str(exc.value)
    finally:
        processes.Procs(s).stop_all(timeout=10)


def test_libvirt_stack_reads_the_measured_matrix(tmp_path):
    """--virt libvirt: nova.conf's traffic source is the flow meters'
    Prometheus (port base + 10), no traffic file; nova-scheduler gets the
    stack's clouds.yaml for the port lookup; the meters' and Prometheus's
    ports are checked before up. The fake stack keeps its static file."""
    from nova_netaware.deploy import nova_conf as deploy
    from nova_netaware.flowmeter import stack as meters
    s = ls_settings.Settings(str(tmp_path / 'lv'), port_base=26000,
                             virt='libvirt')
    configuration.write_configs(s)
    raw = deploy.read_ini(os.path.join(s.etc, 'nova', 'nova.conf'))
    na = raw['netaware']
    assert na['traffic_source'] == ['prometheus']
    assert na['prometheus_url'] == ['http://127.0.0.1:26010']
    assert na['prometheus_label_kind'] == ['ip']
    assert na['prometheus_ports_cloud'] == [ls_settings.CLOUD]
    assert 'rate(netaware_flow_bytes_total[%ds])' % meters.RATE_WINDOW_S \
        in na['prometheus_query'][0]
    assert 'static_traffic_file' not in na
    assert not os.path.exists(s.traffic_file)
    assert deploy.nova_conf_edits(
        raw, configuration.netaware_settings(s)) == []
    procs = _RecordingProcs()
    startup = ls._Startup(s, procs, timeout=1)
    startup.start('nova')
    startup.start('register')
    assert procs.started[-2:] == list(ls._DAEMONS)
    assert ls._daemon_env(s) == {'OS_CLIENT_CONFIG_FILE': s.clouds_yaml}
    assert meters.all_ports(s, s.hosts) == {
        'prometheus': 26010, 'flow-meter-lvcmp1': 26011,
        'flow-meter-lvcmp2': 26012, 'flow-meter-lvcmp3': 26013,
        'flow-meter-lvcmp4': 26014}
    assert max(s.ports.values()) < 26010
    fake = settings(tmp_path)
    assert ls._daemon_env(fake) is None
    assert configuration.netaware_settings(fake)['traffic_source'] == \
        'static'
