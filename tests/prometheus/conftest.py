"""A real Prometheus server (Debian's ``prometheus``) on loopback, scraping
a small exporter that the test runs with prometheus_client."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from tests.ports import free_port

PROMETHEUS = shutil.which('prometheus') or '/usr/bin/prometheus'


class Exporter(object):
    """``netaware_flow_mbps{src=..., dst=...}`` on 127.0.0.1, served by
    tests/prometheus/exporter.py in its own process."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='netaware-exp-')
        self.path = os.path.join(self.dir, 'flows.json')
        self.set([])
        self.port = free_port()
        root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'tests.prometheus.exporter',
             str(self.port), self.path], cwd=root)
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get('http://127.0.0.1:%d/metrics' % self.port,
                                timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError('the test exporter did not start')
            time.sleep(0.1)

    def set(self, flows):
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump([list(x) for x in flows], f)
        os.replace(tmp, self.path)

    def close(self):
        if getattr(self, 'proc', None) is not None and \
                self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Prometheus(object):

    def __init__(self, target_port, scrape_interval='1s', job='netaware'):
        """:param target_port: the port, or a list of ports, scraped on
        127.0.0.1 as job *job*."""
        self.dir = tempfile.mkdtemp(prefix='netaware-prom-')
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        ports = target_port if isinstance(target_port, (list, tuple)) \
            else [target_port]
        cfg = os.path.join(self.dir, 'prometheus.yml')
        with open(cfg, 'w') as f:
            f.write('global:\n  scrape_interval: %s\n'
                    '  evaluation_interval: %s\n'
                    'scrape_configs:\n  - job_name: %s\n'
                    '    static_configs:\n'
                    '      - targets: [%s]\n'
                    % (scrape_interval, scrape_interval, job,
                       ', '.join('"127.0.0.1:%d"' % p for p in ports)))
        self.log = open(os.path.join(self.dir, 'prometheus.log'), 'w')
        self.proc = subprocess.Popen(
            [PROMETHEUS, '--config.file=' + cfg,
             '--storage.tsdb.path=' + os.path.join(self.dir, 'data'),
             '--web.listen-address=127.0.0.1:%d' % self.port,
             '--log.level=warn'],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.url + '/-/ready', timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError('prometheus did not start: %s' % open(
                    self.log.name).read()[-2000:])
            time.sleep(0.1)

    def query(self, q):
        r = requests.get(self.url + '/api/v1/query', params={'query': q},
                         timeout=5)
        r.raise_for_status()
        return r.json()['data']['result']

    def wait_for(self, q, predicate, timeout=20):
        """Poll until the result of *q* satisfies *predicate*."""
        deadline = time.monotonic() + timeout
        while True:
            res = self.query(q)
            if predicate(res):
                return res
            if time.monotonic() > deadline:
                raise AssertionError('prometheus never had %s: %s' % (q, res))
            time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope='module')
def exporter():
    e = Exporter()
    yield e
    e.close()


@pytest.fixture(scope='module')
def prometheus(exporter):
    p = Prometheus(exporter.port)
    yield p
    p.close()


def rates(prom_result):
    return {(s['metric']['src'], s['metric']['dst']): float(s['value'][1])
            for s in prom_result}
