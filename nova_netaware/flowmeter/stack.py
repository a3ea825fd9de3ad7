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
#: Prometheus's scrape interval in the stack, seconds
SCRAPE_INTERVAL_S = 2
#: the ``rate()`` window of the stack's ``[netaware] prometheus_query``,
#: seconds: a new or changed flow shows at its rate after one window
RATE_WINDOW_S = 30


def ports(s, hosts):
    """``(prometheus port, {host: meter port})`` for the stack *s*."""
    base = min(s.ports.values())
    return (base + PROMETHEUS_OFFSET,
            {h: base + PROMETHEUS_OFFSET + 1 + i
             for i, h in enumerate(sorted(hosts))})


def prometheus_url(s):
    """The URL of the stack's Prometheus (known before it starts: the
    stack's nova.conf is written first)."""
    return 'http://127.0.0.1:%d' % (min(s.ports.values())
                                     + PROMETHEUS_OFFSET)


def all_ports(s, hosts):
    """Every port :func:`start` listens on (for the stack's free-port
    check)."""
    prom, meters = ports(s, hosts)
    return dict({'prometheus': prom},
                **{'flow-meter-' + h: p for h, p in meters.items()})


def start(s, procs, namespaces, scrape_interval='%ds' % SCRAPE_INTERVAL_S,
          timeout=60):
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


def netaware_options(prometheus_url, ports_cloud,
                     window='%ds' % RATE_WINDOW_S):
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


def measured_matrix(s):
    """The traffic matrix as nova-scheduler reads it: the stack's
    nova.conf ``[netaware]`` options, the traffic source they name (by
    the one loading path, ``nova_netaware.loading``), the ports API of
    the stack's clouds.yaml (``OS_CLIENT_CONFIG_FILE``, as the stack gives
    nova-scheduler). Returns a :class:`~nova_netaware.core.traffic.
    TrafficMatrix` (Mbit/s per (server id, server id))."""
    from nova_netaware.osc import data
    old = os.environ.get('OS_CLIENT_CONFIG_FILE')
    os.environ['OS_CLIENT_CONFIG_FILE'] = s.clouds_yaml
    try:
        return data.load_traffic(data.load_conf([s.conf('nova',
                                                         'nova.conf')]))
    finally:
        if old is None:
            os.environ.pop('OS_CLIENT_CONFIG_FILE', None)
        else:
            os.environ['OS_CLIENT_CONFIG_FILE'] = old


def scheduler_env(s):
    """What nova-scheduler (and the commands reading nova.conf) need in
    their environment for the ``prometheus`` source's port lookup: the
    stack's clouds.yaml (``[netaware] prometheus_ports_cloud`` names a
    cloud in it)."""
    return {'OS_CLIENT_CONFIG_FILE': s.clouds_yaml}


def query(s, promql, timeout=5):
    """An instant PromQL query on the stack's Prometheus: the result
    vector (``[{'metric': {...}, 'value': [t, 'v']}]``)."""
    import requests
    resp = requests.get(prometheus_url(s) + '/api/v1/query',
                        params={'query': promql}, timeout=timeout)
    resp.raise_for_status()
    return resp.json()['data']['result']


def meter_instances(s, hosts):
    """``{Prometheus instance label: host}`` of the stack's meters."""
    return {'127.0.0.1:%d' % p: h for h, p in ports(s, hosts)[1].items()}
