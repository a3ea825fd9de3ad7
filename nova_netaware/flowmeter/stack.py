"""The flow meters in the local stack: the hook ``local-stack up --virt
libvirt`` calls once its hypervisor namespaces exist.

:func:`start` puts, in the stack's process table (``processes.Procs``,
so that ``down`` stops them), one ``nova-netaware-flow-meter --netns
<host namespace>`` per hypervisor and a Prometheus (Debian's) that scrapes
them as job ``netaware-flow-meter``; :func:`netaware_options` gives the
``[netaware]`` options that make nova-scheduler read the measured matrix.

Ports, after the stack's own (``Settings.ports``, from its port base):
Prometheus at base + 10, the meters at base + 11, + 12, ... on 127.0.0.1.
"""

import os
import shutil

from nova_netaware.deploy.localstack import processes
from nova_netaware.flowmeter import exporter

PROMETHEUS_OFFSET = 10


def ports(s, hosts):
    """``(prometheus port, {host: meter port})`` for the stack *s*."""
    base = min(s.ports.values())
    return (base + PROMETHEUS_OFFSET,
            {h: base + PROMETHEUS_OFFSET + 1 + i
             for i, h in enumerate(sorted(hosts))})


def start(s, procs, namespaces, scrape_interval='2s', timeout=60):
    """Start a meter per hypervisor and a Prometheus scraping them; wait
    until Prometheus has scraped every meter once.

    :param namespaces: ``{host: network namespace}``.
    :returns: the Prometheus URL.
    """
    prom_port, meter_ports = ports(s, namespaces)
    recs = {}
    for host in sorted(namespaces):
        recs[host] = procs.start('flow-meter-' + host, exporter.command(
            meter_ports[host], netns=namespaces[host],
            python=s.bin('python')))
    for host, rec in recs.items():
        url = 'http://127.0.0.1:%d/metrics' % meter_ports[host]
        processes.wait_for('the flow meter of %s (%s)' % (host, url),
                           lambda u=url: processes.http_status(u) == 200,
                           timeout, proc=rec, log=rec['log'])
    directory = os.path.join(s.state_dir, 'prometheus')
    os.makedirs(directory, exist_ok=True)
    config = os.path.join(directory, 'prometheus.yml')
    with open(config, 'w') as f:
        f.write('global:\n  scrape_interval: %s\nscrape_configs:\n%s'
                % (scrape_interval, exporter.scrape_config(
                    ['127.0.0.1:%d' % p for p in meter_ports.values()],
                    scrape_interval)))
    binary = shutil.which('prometheus') or '/usr/bin/prometheus'
    rec = procs.start('prometheus', [
        binary, '--config.file=' + config,
        '--storage.tsdb.path=' + os.path.join(directory, 'data'),
        '--web.listen-address=127.0.0.1:%d' % prom_port, '--log.level=warn'])
    url = 'http://127.0.0.1:%d' % prom_port
    query = (url + '/api/v1/query?query=count(up%7Bjob%3D%22'
             + exporter.JOB + '%22%7D%3D%3D1)')

    def all_up():
        import json
        import urllib.request
        try:
            with urllib.request.urlopen(query, timeout=3) as resp:
                res = json.load(resp)['data']['result']
        except (OSError, ValueError, KeyError):
            return False
        return bool(res) and int(float(res[0]['value'][1])) == len(recs)
    processes.wait_for('Prometheus (%s) scraping every flow meter' % url,
                       all_up, timeout, proc=rec, log=rec['log'])
    return url


def netaware_options(prometheus_url, ports_cloud, window='30s'):
    """The ``[netaware]`` options of the measured matrix: fixed-IP labels
    resolved through the ports API of the clouds.yaml cloud *ports_cloud*;
    a short ``rate()`` window and cache for a demo stack."""
    return {
        'traffic_source': 'prometheus',
        'prometheus_url': prometheus_url,
        'prometheus_query': 'sum by (src, dst) (rate(netaware_flow_bytes_'
                            'total[%s])) * 8 / 1000000' % window,
        'prometheus_label_kind': 'ip',
        'prometheus_ports_cloud': ports_cloud,
        'prometheus_cache_ttl': '5',
        'prometheus_port_cache_ttl': '60',
    }
