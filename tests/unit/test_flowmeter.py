"""The flow meter's nftables ruleset, its reading of ``nft -j`` and its
command line (no namespace needed; the system test is
tests/prometheus/test_flow_meter.py)."""

import os
import shutil
import subprocess

import pytest

from nova_netaware.flowmeter import exporter
from nova_netaware.flowmeter import nft

# `nft -j list set bridge netaware_flowmeter flows` as printed here
# (nftables 1.0.6, kernel 6.18) after two pings and one idle pair
LISTED = '''{"nftables": [{"metainfo": {"version": "1.0.6", "release_name":
"Lester Gooch #5", "json_schema_version": 1}}, {"set": {"family": "bridge",
"name": "flows", "table": "netaware_flowmeter", "type": ["ipv4_addr",
"ipv4_addr"], "handle": 2, "size": 65535, "flags": ["timeout"], "timeout":
600, "elem": [{"elem": {"val": {"concat": ["10.100.1.2", "10.100.1.1"]},
"expires": 597, "counter": {"packets": 3, "bytes": 252}}}, {"elem": {"val":
{"concat": ["10.100.1.1", "10.100.1.2"]}, "expires": 597, "counter":
{"packets": 598, "bytes": 5031200}}}], "stmt": [{"counter": null}]}}]}'''

ROOT_NFT = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which('nft'),
                              reason='needs root and nft')


def test_ruleset_one_rule_per_guest_port_pattern():
    text = nft.ruleset(['tap*', 'vnet*'], timeout_s=120, size=1000)
    assert text.startswith('table bridge netaware_flowmeter\n'
                           'delete table bridge netaware_flowmeter\n')
    assert text.count('update @flows { ip saddr . ip daddr } accept') == 2
    assert 'iifname "tap*"' in text and 'iifname "vnet*"' in text
    assert 'timeout 120s' in text and 'size 1000' in text
    assert 'type filter hook forward priority 0' in text


@pytest.mark.parametrize('ports, table, message', [
    ([], nft.TABLE, 'no guest port pattern'),
    (['tap"; drop'], nft.TABLE, 'bad guest port pattern'),
    (['a-name-longer-than-15'], nft.TABLE, 'bad guest port pattern'),
    (['tap*'], 'bad name', 'bad nftables table name'),
])
def test_ruleset_refuses_bad_input(ports, table, message):
    with pytest.raises(nft.FlowMeterError) as e:
        nft.ruleset(ports, table)
    assert message in str(e.value)


def test_parse_set():
    assert nft.parse_set(LISTED) == {
        ('10.100.1.2', '10.100.1.1'): (3, 252),
        ('10.100.1.1', '10.100.1.2'): (598, 5031200)}
    # an empty set has no "elem"
    assert nft.parse_set('{"nftables": [{"set": {"name": "flows"}}]}') == {}
    with pytest.raises(nft.FlowMeterError) as e:
        nft.parse_set('Error: No such file or directory')
    assert 'nft printed no JSON' in str(e.value)


@ROOT_NFT
def test_ruleset_is_accepted_by_this_nft():
    # check mode (-c): parsed and validated by the kernel, nothing installed
    res = subprocess.run(['nft', '-c', '-f', '-'],
                         input=nft.ruleset(['tap*', 'vnet*']),
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stderr


def test_nft_errors_are_clear():
    meter = nft.Nft(netns='netaware-no-such-namespace')
    with pytest.raises(nft.FlowMeterError) as e:
        meter.read()
    assert 'ip netns exec netaware-no-such-namespace nft' in str(e.value)
    assert 'failed (exit' in str(e.value)
    with pytest.raises(nft.FlowMeterError) as e:
        nft.Nft(nft='/nonexistent/nft').read()
    assert '/nonexistent/nft' in str(e.value)


def test_collector_reports_down_and_tries_to_reinstall(caplog):
    meter = nft.Nft(netns='netaware-no-such-namespace')
    tries = []

    def reinstall():
        tries.append(1)
        meter.install()
    collector = exporter.FlowCollector(meter, reinstall=reinstall)
    families = {f.name: f for f in collector.collect()}
    assert families['netaware_flow_meter_up'].samples[0].value == 0.0
    assert families['netaware_flow_bytes'].samples == []
    assert tries == [1]
    assert 'cannot read the counters' in caplog.text
    assert 'cannot install the table' in caplog.text
    # the same error is logged once, not on every scrape
    list(collector.collect())
    assert caplog.text.count('cannot read the counters') == 1
    assert caplog.text.count('cannot install the table') == 1
    assert tries == [1, 1]


def test_command_and_defaults():
    argv = exporter.command(9901, netns='nvl-cmp1', python='/py')
    assert argv == ['/py', '-m', 'nova_netaware.flowmeter', '--listen',
                    '127.0.0.1', '--port', '9901', '--guest-ports', 'tap*',
                    '--netns', 'nvl-cmp1']
    args = exporter.parse_args(argv[3:])
    assert (args.port, args.netns, args.guest_ports) == (
        9901, 'nvl-cmp1', ['tap*'])
    args = exporter.parse_args([])
    assert (args.listen, args.port, args.guest_ports, args.idle_timeout,
            args.table) == ('0.0.0.0', exporter.DEFAULT_PORT, ['tap*'], 600,
                            nft.TABLE)


def test_scrape_config_is_the_job_the_health_query_watches():
    import yaml
    from nova_netaware import conf
    text = 'scrape_configs:\n' + exporter.scrape_config(
        ['127.0.0.1:9811', '127.0.0.1:9812'])
    [job] = yaml.safe_load(text)['scrape_configs']
    assert job['static_configs'] == [
        {'targets': ['127.0.0.1:9811', '127.0.0.1:9812']}]
    [opt] = [o for o in conf.ALL_OPTS if o.name == 'prometheus_health_query']
    assert 'job="%s"' % job['job_name'] in opt.default
