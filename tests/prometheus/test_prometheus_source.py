"""The ``prometheus`` traffic source against a real Prometheus server.

Prometheus (Debian's package) runs on 127.0.0.1 with a temporary storage
directory and a 1 s scrape interval; it scrapes a prometheus_client exporter
the test runs on loopback. The source is loaded through its stevedore entry
point, as the scheduler loads it.
"""

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests
from oslo_config import cfg
from stevedore import driver

from nova_netaware import conf as netaware_conf
from nova_netaware.core.exceptions import DataError
from nova_netaware.traffic.prometheus import PrometheusTrafficSource
from tests.ports import free_port
from tests.prometheus.conftest import Exporter
from tests.prometheus.conftest import Prometheus
from tests.prometheus.conftest import rates

A = '11111111-1111-4111-8111-111111111111'
B = '22222222-2222-4222-8222-222222222222'
C = '33333333-3333-4333-8333-333333333333'
QUERY = 'netaware_flow_mbps'


def make_conf(**opts):
    c = cfg.ConfigOpts()
    c.register_group(cfg.OptGroup(netaware_conf.GROUP))
    c.register_opts(netaware_conf.ALL_OPTS, group=netaware_conf.GROUP)
    c([], default_config_files=[], default_config_dirs=[])
    opts.setdefault('prometheus_query', QUERY)
    opts.setdefault('traffic_source', 'prometheus')
    for k, v in opts.items():
        c.set_override(k, v, group=netaware_conf.GROUP)
    return c


class Clock(object):
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def wait_rates(prom, expected):
    prom.wait_for(QUERY, lambda res: rates(res) == expected)


def test_loaded_by_stevedore_and_reads_uuid_labels(exporter, prometheus):
    flows = [(A, B, 400), (B, A, 100), (C, A, 50.5)]
    exporter.set(flows)
    wait_rates(prometheus, {(s, d): r for s, d, r in flows})
    c = make_conf(prometheus_url=prometheus.url)
    src = driver.DriverManager('nova_netaware.traffic_sources', 'prometheus',
                               invoke_on_load=True,
                               invoke_args=(c,)).driver
    assert isinstance(src, PrometheusTrafficSource)
    tm = src.get()
    assert tm.rates == {(A, B): 400.0, (B, A): 100.0, (C, A): 50.5}
    assert tm.incoming(A) == 150.5
    assert tm.version is not None


def test_ttl_cache_and_version(exporter, prometheus):
    exporter.set([(A, B, 400)])
    wait_rates(prometheus, {(A, B): 400.0})
    clock = Clock()
    src = PrometheusTrafficSource(
        make_conf(prometheus_url=prometheus.url, prometheus_cache_ttl=30),
        clock=clock)
    first = src.get()
    assert first.rates == {(A, B): 400.0} and src.queries == 1
    exporter.set([(A, B, 900), (B, C, 10)])
    wait_rates(prometheus, {(A, B): 900.0, (B, C): 10.0})
    clock.t += 29                       # within the TTL: cached
    again = src.get()
    assert again is first and src.queries == 1
    clock.t += 2                        # TTL over: asks Prometheus
    fresh = src.get()
    assert src.queries == 2
    assert fresh.rates == {(A, B): 900.0, (B, C): 10.0}
    assert fresh.version != first.version
    clock.t += 31                       # same contents: same version
    same = src.get()
    assert src.queries == 3 and same.version == fresh.version


def test_bad_query_is_a_clear_error(prometheus):
    src = PrometheusTrafficSource(make_conf(
        prometheus_url=prometheus.url, prometheus_query='sum(('))
    with pytest.raises(DataError) as e:
        src.get()
    assert 'rejected the query' in str(e.value)
    assert 'bad_data' in str(e.value)
    src = PrometheusTrafficSource(make_conf(
        prometheus_url=prometheus.url,
        prometheus_query='netaware_flow_mbps[1m]'))
    with pytest.raises(DataError) as e:
        src.get()
    assert 'gives a matrix, not an instant vector' in str(e.value)


def test_samples_without_labels_are_skipped_and_logged(exporter, prometheus,
                                                       caplog):
    exporter.set([(A, B, 400)])
    wait_rates(prometheus, {(A, B): 400.0})
    src = PrometheusTrafficSource(make_conf(
        prometheus_url=prometheus.url,
        prometheus_query='sum by (src) (netaware_flow_mbps)'))
    with caplog.at_level(logging.WARNING):
        tm = src.get()
    assert tm.rates == {}
    assert 'lack the labels src/dst' in caplog.text


def test_prometheus_down_serves_last_good_within_staleness(caplog):
    exporter = Exporter()
    prom = Prometheus(exporter.port)
    try:
        exporter.set([(A, B, 400)])
        wait_rates(prom, {(A, B): 400.0})
        clock = Clock()
        src = PrometheusTrafficSource(make_conf(
            prometheus_url=prom.url, prometheus_cache_ttl=10,
            prometheus_max_staleness=60, prometheus_timeout=1), clock=clock)
        good = src.get()
        strict = PrometheusTrafficSource(make_conf(
            prometheus_url=prom.url, prometheus_max_staleness=0,
            prometheus_timeout=1), clock=clock)
        strict.get()
    finally:
        prom.close()                                    # Prometheus dies
        exporter.close()
    clock.t += 11
    with caplog.at_level(logging.WARNING):
        t0 = time.monotonic()
        assert src.get() is good                        # stale but usable
        assert time.monotonic() - t0 < 2
    assert 'cannot reach Prometheus at %s' % prom.url in caplog.text
    assert 'using the last good traffic matrix' in caplog.text
    n = src.queries
    clock.t += 5                  # failure not retried before the TTL
    assert src.get() is good and src.queries == n
    clock.t += 50                 # 66 s old: too stale
    with pytest.raises(DataError) as e:
        src.get()
    assert 'cannot reach Prometheus at %s' % prom.url in str(e.value)
    assert 'more than prometheus_max_staleness=60s' in str(e.value)
    # max staleness 0: fails at once
    with pytest.raises(DataError) as e:
        strict.get()
    assert 'cannot reach Prometheus' in str(e.value)


def test_slow_prometheus_times_out():
    # STAND-IN for a hung Prometheus: a listener that accepts connections
    # and never answers (a real Prometheus cannot be made to hang on
    # demand).
    lsock = socket.socket()
    lsock.bind(('127.0.0.1', 0))
    lsock.listen(8)
    url = 'http://127.0.0.1:%d' % lsock.getsockname()[1]
    try:
        src = PrometheusTrafficSource(make_conf(
            prometheus_url=url, prometheus_timeout=0.5,
            prometheus_max_staleness=0))
        t0 = time.monotonic()
        with pytest.raises(DataError) as e:
            src.get()
        assert time.monotonic() - t0 < 3
        assert 'did not answer within 0.5s' in str(e.value)
    finally:
        lsock.close()


class NeutronPorts(object):
    """The Neutron port API stand-in (tests/prometheus/neutron_standin.py)
    in its own process; see there why it is a stand-in."""

    def __init__(self, ports):
        self.dir = tempfile.mkdtemp(prefix='netaware-neutron-')
        self.ports_path = os.path.join(self.dir, 'ports.json')
        self.calls_path = os.path.join(self.dir, 'calls')
        open(self.calls_path, 'w').close()
        self.ports = list(ports)
        self.save()
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'tests.prometheus.neutron_standin',
             str(self.port), self.ports_path, self.calls_path], cwd=root)
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(self.url + '/', timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError('the Neutron stand-in did not start')
            time.sleep(0.1)

    def save(self):
        tmp = self.ports_path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.ports, f)
        os.replace(tmp, self.ports_path)

    @property
    def calls(self):
        with open(self.calls_path) as f:
            return len(f.readlines())

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _port(ip, device, owner='compute:nova'):
    return {'id': 'port-' + ip, 'device_id': device, 'device_owner': owner,
            'fixed_ips': [{'ip_address': ip, 'subnet_id': 's'}],
            'network_id': 'n', 'status': 'ACTIVE'}


def test_ip_labels_resolved_through_ports_cached(exporter, prometheus,
                                                 caplog):
    from keystoneauth1 import noauth
    from keystoneauth1 import session as ks_session
    import openstack.connection
    neutron = NeutronPorts([_port('10.0.0.1', A), _port('10.0.0.2', B),
                            _port('10.0.0.9', 'router-1',
                                  owner='network:router_interface')])
    try:
        conn = openstack.connection.Connection(
            session=ks_session.Session(auth=noauth.NoAuth()),
            network_endpoint_override=neutron.url + '/v2.0/')
        exporter.set([('10.0.0.1', '10.0.0.2', 300),
                      ('10.0.0.2', '10.0.0.1', 30),
                      ('10.0.0.3', '10.0.0.1', 7),
                      ('10.0.0.9', '10.0.0.1', 5)])
        wait_rates(prometheus, {('10.0.0.1', '10.0.0.2'): 300.0,
                                ('10.0.0.2', '10.0.0.1'): 30.0,
                                ('10.0.0.3', '10.0.0.1'): 7.0,
                                ('10.0.0.9', '10.0.0.1'): 5.0})
        clock = Clock()
        src = PrometheusTrafficSource(make_conf(
            prometheus_url=prometheus.url, prometheus_label_kind='ip',
            prometheus_cache_ttl=10, prometheus_port_cache_ttl=300),
            connection=conn, clock=clock)
        with caplog.at_level(logging.WARNING):
            tm = src.get()
        # 10.0.0.3 has no port; 10.0.0.9 is a router port, not a server
        assert tm.rates == {(A, B): 300.0, (B, A): 30.0}
        assert 'no server port has the fixed IP(s) 10.0.0.3, 10.0.0.9' \
            in caplog.text
        assert neutron.calls == 1
        # a new server with 10.0.0.3: unknown IPs refresh the map, at most
        # once per cache TTL
        neutron.ports.append(_port('10.0.0.3', C))
        neutron.save()
        clock.t += 11
        tm = src.get()
        assert neutron.calls == 2
        assert tm.rates[(C, A)] == 7.0
        clock.t += 11                  # 10.0.0.9 (a router port) is still
        src.get()                      # unknown: one refresh per cache TTL
        assert neutron.calls == 3
        exporter.set([('10.0.0.1', '10.0.0.2', 300)])
        wait_rates(prometheus, {('10.0.0.1', '10.0.0.2'): 300.0})
        clock.t += 11                  # all IPs known: no port listing
        tm = src.get()
        assert neutron.calls == 3 and tm.rates == {(A, B): 300.0}
        clock.t += 300                 # port cache expired
        src.get()
        assert neutron.calls == 4
    finally:
        neutron.close()


def test_ip_labels_need_a_cloud(prometheus, exporter):
    exporter.set([('10.0.0.1', '10.0.0.2', 300)])
    wait_rates(prometheus, {('10.0.0.1', '10.0.0.2'): 300.0})
    src = PrometheusTrafficSource(make_conf(
        prometheus_url=prometheus.url, prometheus_label_kind='ip'))
    with pytest.raises(DataError) as e:
        src.get()
    assert 'needs [netaware] prometheus_ports_cloud' in str(e.value)
