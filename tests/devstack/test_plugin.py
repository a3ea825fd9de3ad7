"""Tests of the devstack plugin (devstack/settings and devstack/plugin.sh).

devstack is not installed here: ``ini_standins.sh`` holds minimal stand-ins
of its ini helpers (copies of inc/ini-config's logic) and recording
stand-ins of its other functions. The resulting nova.conf is checked with
oslo.config, the parser Nova itself uses.
"""

import os
import shutil
import subprocess
import sys

import pytest
from oslo_config import cfg

from nova_netaware.deploy import nova_conf as deploy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DEVSTACK = os.path.join(ROOT, 'devstack')
STANDINS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'ini_standins.sh')

FILTER = 'nova_netaware.scheduler.filters.NetworkAwareFilter'
WEIGHER = 'nova_netaware.scheduler.weights.MigrationImpactWeigher'

# What devstack's lib/nova writes before plugins' post-config phase runs.
SAMPLE_NOVA_CONF = """\
[DEFAULT]
debug = True
compute_driver = libvirt.LibvirtDriver

[filter_scheduler]
enabled_filters = ComputeFilter,ComputeCapabilitiesFilter,\
ImagePropertiesFilter,ServerGroupAntiAffinityFilter,\
ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter
track_instance_changes = False

[scheduler]
workers = 2

[placement]
region_name = RegionOne
"""
DEVSTACK_FILTERS = ['ComputeFilter', 'ComputeCapabilitiesFilter',
                    'ImagePropertiesFilter', 'ServerGroupAntiAffinityFilter',
                    'ServerGroupAffinityFilter', 'SameHostFilter',
                    'DifferentHostFilter']


def run_plugin(tmp_path, *args, env=None, conf_text=SAMPLE_NOVA_CONF,
               write_conf=True, cwd=None):
    """Source settings and plugin.sh as devstack does; return the result."""
    nova_conf = tmp_path / 'nova.conf'
    if write_conf:
        nova_conf.write_text(conf_text)
    script = """
set -o errexit -o nounset -o pipefail
source "$STANDINS"
source "$DEVSTACK/settings"
source "$DEVSTACK/plugin.sh" "$@"
echo "PLUGIN-RETURNED"
"""
    full_env = dict(os.environ)
    full_env.update({
        'STANDINS': STANDINS, 'DEVSTACK': DEVSTACK,
        'DEST': str(tmp_path / 'opt-stack'),
        'DATA_DIR': str(tmp_path / 'data'),
        'NOVA_CONF': str(nova_conf),
        'NETAWARE_PYTHON': sys.executable,
        'NETAWARE_COMPUTE_HOSTS': 'cmp-1 cmp-2 cmp-3 cmp-4',
        'STANDIN_CALLS': str(tmp_path / 'calls'),
        'PYTHONPATH': ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
    })
    full_env.update(env or {})
    return subprocess.run(['bash', '-c', script, 'plugin-test'] + list(args),
                          env=full_env, capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def load_with_oslo(path):
    """Parse the file as Nova would, with the options Nova registers."""
    conf = cfg.ConfigOpts()
    group = cfg.OptGroup('filter_scheduler')
    conf.register_opts([
        cfg.MultiStrOpt('available_filters'),
        cfg.ListOpt('enabled_filters'),
        cfg.ListOpt('weight_classes'),
    ], group=group)
    from nova_netaware import conf as na_conf
    na_conf.register_opts(conf)
    conf(['--config-file', str(path)], project='nova-netaware-test',
         default_config_files=[], default_config_dirs=[])
    return conf


def raw_values(path):
    return deploy.read_ini(str(path))


def test_shellcheck():
    shellcheck = shutil.which('shellcheck')
    if shellcheck is None:
        if os.environ.get('CI'):
            pytest.fail('shellcheck is not installed')
        pytest.skip('shellcheck is not installed')
    out = subprocess.run(
        [shellcheck, '-x', os.path.join(DEVSTACK, 'settings'),
         os.path.join(DEVSTACK, 'plugin.sh'),
         os.path.join(DEVSTACK, 'local-stack'), STANDINS],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_post_config_edits_nova_conf(tmp_path):
    res = run_plugin(tmp_path, 'stack', 'post-config')
    assert res.returncode == 0, res.stderr
    assert 'PLUGIN-RETURNED' in res.stdout  # sourced, never exits
    path = tmp_path / 'nova.conf'
    conf = load_with_oslo(path)
    fs = conf.filter_scheduler
    assert fs.available_filters == ['nova.scheduler.filters.all_filters',
                                    FILTER]
    assert fs.enabled_filters == DEVSTACK_FILTERS + ['NetworkAwareFilter']
    assert fs.weight_classes == ['nova.scheduler.weights.all_weighers',
                                 WEIGHER]
    data = tmp_path / 'data' / 'nova-netaware'
    assert conf.netaware.topology_file == str(data / 'topology.yaml')
    assert conf.netaware.static_traffic_file == str(data / 'traffic.yaml')
    assert conf.netaware.traffic_source == 'static'
    assert conf.netaware.weight_multiplier == 10.0
    # options left empty in settings keep the plugin's defaults
    assert conf.netaware.max_hops == 0
    assert 'max_hops' not in raw_values(path)['netaware']
    # the rest of the file is untouched
    raw = raw_values(path)
    assert raw['filter_scheduler']['track_instance_changes'] == ['False']
    assert raw['scheduler']['workers'] == ['2']
    assert raw['DEFAULT']['compute_driver'] == ['libvirt.LibvirtDriver']

    # the generated topology puts the compute hosts on a leaf-spine
    import yaml
    topo = yaml.safe_load((data / 'topology.yaml').read_text())
    assert [h['name'] for h in topo['hosts']] == [
        'cmp-1', 'cmp-2', 'cmp-3', 'cmp-4']
    assert {h['switch'] for h in topo['hosts']} == {'leaf-1', 'leaf-2'}
    assert yaml.safe_load((data / 'traffic.yaml').read_text()) == {
        'flows': []}


def test_post_config_twice_duplicates_nothing(tmp_path):
    res = run_plugin(tmp_path, 'stack', 'post-config')
    assert res.returncode == 0, res.stderr
    path = tmp_path / 'nova.conf'
    first = path.read_text()
    res = run_plugin(tmp_path, 'stack', 'post-config', write_conf=False)
    assert res.returncode == 0, res.stderr
    assert path.read_text() == first
    raw = raw_values(path)['filter_scheduler']
    assert raw['available_filters'] == [
        'nova.scheduler.filters.all_filters', FILTER]
    assert len(raw['enabled_filters']) == 1
    assert raw['enabled_filters'][0].split(',').count(
        'NetworkAwareFilter') == 1
    assert raw['weight_classes'][0].split(',').count(WEIGHER) == 1
    for values in raw_values(path)['netaware'].values():
        assert len(values) == 1


def test_post_config_keeps_existing_available_filters(tmp_path):
    text = SAMPLE_NOVA_CONF.replace(
        '[filter_scheduler]\n',
        '[filter_scheduler]\n'
        'available_filters = nova.scheduler.filters.all_filters\n'
        'available_filters = my.site.filters.RackFilter\n'
        'weight_classes = nova.scheduler.weights.ram.RAMWeigher\n')
    res = run_plugin(tmp_path, 'stack', 'post-config', conf_text=text)
    assert res.returncode == 0, res.stderr
    fs = load_with_oslo(tmp_path / 'nova.conf').filter_scheduler
    assert fs.available_filters == ['nova.scheduler.filters.all_filters',
                                    'my.site.filters.RackFilter', FILTER]
    assert fs.weight_classes == ['nova.scheduler.weights.ram.RAMWeigher',
                                 WEIGHER]


def test_post_config_without_scheduler_section(tmp_path):
    """No filter lines at all: Nova's defaults are kept, ours appended."""
    res = run_plugin(tmp_path, 'stack', 'post-config',
                     conf_text='[DEFAULT]\ndebug = True\n')
    assert res.returncode == 0, res.stderr
    fs = load_with_oslo(tmp_path / 'nova.conf').filter_scheduler
    assert fs.available_filters == ['nova.scheduler.filters.all_filters',
                                    FILTER]
    assert fs.enabled_filters[-1] == 'NetworkAwareFilter'
    assert 'ComputeFilter' in fs.enabled_filters
    before = (tmp_path / 'nova.conf').read_text()
    res = run_plugin(tmp_path, 'stack', 'post-config', write_conf=False)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / 'nova.conf').read_text() == before


def test_local_conf_overrides(tmp_path):
    topo = tmp_path / 'my-topology.yaml'
    topo.write_text('switches: []\nlinks: []\nhosts: []\n')
    res = run_plugin(tmp_path, 'stack', 'post-config', env={
        'NETAWARE_TOPOLOGY_FILE': str(topo),
        'NETAWARE_MAX_HOPS': '4',
        'NETAWARE_ON_MISSING_DATA': 'fail-closed',
        'NETAWARE_WEIGHT_MULTIPLIER': '2.5',
        'NETAWARE_EXTRA_OPTS': 'max_latency_us=20 migration_weight=0.2',
    })
    assert res.returncode == 0, res.stderr
    na = load_with_oslo(tmp_path / 'nova.conf').netaware
    assert na.topology_file == str(topo)
    assert na.max_hops == 4
    assert na.on_missing_data == 'fail-closed'
    assert na.weight_multiplier == 2.5
    assert na.max_latency_us == 20.0
    assert na.migration_weight == 0.2
    # the operator's topology file is not overwritten
    assert topo.read_text() == 'switches: []\nlinks: []\nhosts: []\n'


def test_unknown_option_fails_and_leaves_conf_alone(tmp_path):
    res = run_plugin(tmp_path, 'stack', 'post-config',
                     env={'NETAWARE_EXTRA_OPTS': 'no_such_option=1'})
    assert res.returncode != 0
    assert 'no_such_option' in res.stderr
    assert (tmp_path / 'nova.conf').read_text() == SAMPLE_NOVA_CONF


def test_python_deployer_writes_the_same_conf(tmp_path):
    """The local stack's path (deploy.configure_nova_conf) and the devstack
    path (plugin.sh with iniset/iniadd) give the same configuration."""
    res = run_plugin(tmp_path, 'stack', 'post-config')
    assert res.returncode == 0, res.stderr
    data = tmp_path / 'data' / 'nova-netaware'
    other = tmp_path / 'python-nova.conf'
    other.write_text(SAMPLE_NOVA_CONF)
    deploy.configure_nova_conf(str(other), {
        'topology_file': str(data / 'topology.yaml'),
        'traffic_source': 'static',
        'static_traffic_file': str(data / 'traffic.yaml'),
        'weight_multiplier': '10.0'})
    assert raw_values(other) == raw_values(tmp_path / 'nova.conf')
    assert deploy.configure_nova_conf(str(other), {
        'topology_file': str(data / 'topology.yaml')}) == []


def test_stack_install_uses_setup_develop(tmp_path):
    res = run_plugin(tmp_path, 'stack', 'install')
    assert res.returncode == 0, res.stderr
    calls = (tmp_path / 'calls').read_text().splitlines()
    assert 'setup_develop %s' % (tmp_path / 'opt-stack' / 'nova-netaware') \
        in calls
    assert 'PLUGIN-RETURNED' in res.stdout


def test_stack_install_adds_the_replica_extra_with_the_agent(tmp_path):
    env = {'STANDIN_ENABLED_SERVICES': 'n-api,netaware-replica-agent'}
    res = run_plugin(tmp_path, 'stack', 'install', env=env)
    assert res.returncode == 0, res.stderr
    calls = (tmp_path / 'calls').read_text().splitlines()
    assert 'setup_develop %s replica' % (
        tmp_path / 'opt-stack' / 'nova-netaware') in calls


def test_extra_unstack_clean(tmp_path):
    # service disabled: nothing is started or stopped
    res = run_plugin(tmp_path, 'stack', 'extra')
    assert res.returncode == 0, res.stderr
    res = run_plugin(tmp_path, 'unstack')
    assert res.returncode == 0, res.stderr
    calls = tmp_path / 'calls'
    assert not calls.exists() or 'process' not in calls.read_text()

    # clean removes the generated data only
    res = run_plugin(tmp_path, 'stack', 'post-config')
    assert (tmp_path / 'data' / 'nova-netaware' / 'topology.yaml').exists()
    res = run_plugin(tmp_path, 'clean')
    assert res.returncode == 0, res.stderr
    assert 'PLUGIN-RETURNED' in res.stdout
    assert not (tmp_path / 'data' / 'nova-netaware').exists()
    assert (tmp_path / 'nova.conf').exists()


def test_flow_meter_phase(tmp_path):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    meter = bindir / 'nova-netaware-flow-meter'
    meter.write_text('#!/bin/sh\nexit 0\n')
    meter.chmod(0o755)
    # a file named like the pattern must not be globbed into the command
    (tmp_path / 'tapfile').write_text('')
    calls = tmp_path / 'calls'
    env = {'STANDIN_ENABLED_SERVICES': 'n-cpu,netaware-flow-meter',
           'PATH': '%s:%s' % (bindir, os.environ['PATH'])}
    res = run_plugin(tmp_path, 'stack', 'install', env=env)
    assert res.returncode == 0, res.stderr
    assert 'setup_develop %s meter' % (
        tmp_path / 'opt-stack' / 'nova-netaware') in \
        calls.read_text().splitlines()
    env['NETAWARE_FLOW_METER_GUEST_PORTS'] = 'tap* vnet*'
    env['NETAWARE_FLOW_METER_ARGS'] = '--idle-timeout 120'
    res = run_plugin(tmp_path, 'stack', 'extra', env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = run_plugin(tmp_path, 'unstack', env=env)
    assert res.returncode == 0, res.stderr
    lines = calls.read_text().splitlines()
    assert ('run_process netaware-flow-meter %s --port 9811 --guest-ports '
            'tap* --guest-ports vnet* --idle-timeout 120  root' % meter) \
        in lines, lines
    assert 'stop_process netaware-flow-meter' in lines
    # both services: both extras
    calls.unlink()
    env['STANDIN_ENABLED_SERVICES'] = \
        'netaware-replica-agent,netaware-flow-meter'
    res = run_plugin(tmp_path, 'stack', 'install', env=env)
    assert 'setup_develop %s replica,meter' % (
        tmp_path / 'opt-stack' / 'nova-netaware') in \
        calls.read_text().splitlines()
    # enabled but not installed: says so, starts nothing
    calls.unlink()
    env['PATH'] = os.environ['PATH']
    res = run_plugin(tmp_path, 'stack', 'extra', env=env)
    assert res.returncode == 0, res.stderr
    assert 'nova-netaware-flow-meter is not installed' in res.stdout
    assert not calls.exists() or 'run_process netaware-flow-meter' not in \
        calls.read_text()
