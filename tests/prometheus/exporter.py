"""A small Prometheus exporter for the tests, run as its own process:
``python -m tests.prometheus.exporter <port> <flows.json>``.

On every scrape it serves ``netaware_flow_mbps{src, dst}`` from the JSON
file (``[[src, dst, mbps], ...]``), so a test changes the traffic by
rewriting the file. A separate process keeps it clear of the eventlet
monkey patching in Nova's functional harness.
"""

import json
import sys
import time

import prometheus_client
from prometheus_client.core import GaugeMetricFamily


class FlowCollector(object):

    def __init__(self, path):
        self.path = path

    def collect(self):
        g = GaugeMetricFamily('netaware_flow_mbps', 'VM to VM rate, Mbit/s',
                              labels=['src', 'dst'])
        try:
            with open(self.path) as f:
                flows = json.load(f)
        except (OSError, ValueError):
            flows = []
        for src, dst, mbps in flows:
            g.add_metric([src, dst], float(mbps))
        yield g


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    registry = prometheus_client.CollectorRegistry()
    registry.register(FlowCollector(path))
    prometheus_client.start_http_server(port, addr='127.0.0.1',
                                        registry=registry)
    while True:
        time.sleep(3600)


if __name__ == '__main__':
    main()
