"""``nova-netaware-flow-meter``: the hypervisor's flow meter and its
Prometheus endpoint.

    nova-netaware-flow-meter [--guest-ports 'tap*' ...] [--netns NS]
                             [--listen 0.0.0.0] [--port 9811]
                             [--idle-timeout 600] [--max-pairs 65535]

It installs the nftables table of :mod:`.nft` and serves, on every scrape,
the kernel's counters read at that moment (the shape of every Prometheus
exporter: counters, the rate is PromQL's job):

* ``netaware_flow_bytes_total{src="IP", dst="IP"}`` (counter): bytes of
  the IP packets from ``src`` to ``dst`` that entered the bridge from a
  guest port of this hypervisor;
* ``netaware_flow_packets_total{src, dst}`` (counter);
* ``netaware_flow_pairs`` (gauge): pairs in the set (at most
  ``--max-pairs``);
* ``netaware_flow_meter_up`` (gauge): 1 if the last read of the counters
  worked, 0 otherwise (the error is logged).

The scheduler's default ``[netaware] prometheus_query`` turns them into
Mbit/s per pair: ``sum by (src, dst) (rate(netaware_flow_bytes_total[1m]))
* 8 / 1000000``. On SIGTERM or SIGINT the table is deleted.
"""

import argparse
import logging
import signal
import sys
import threading

from nova_netaware.flowmeter import nft as nft_mod

LOG = logging.getLogger('nova_netaware.flowmeter')
DEFAULT_PORT = 9811
JOB = 'netaware-flow-meter'    # the Prometheus job name the docs use


class FlowCollector(object):
    """A prometheus_client custom collector reading the kernel's counters
    at scrape time."""

    def __init__(self, meter, reinstall=None):
        """:param meter: an :class:`~.nft.Nft`.
        :param reinstall: called when a read fails, to put the table back
            (someone flushed the ruleset); its error is logged too."""
        self.meter = meter
        self.reinstall = reinstall
        self._last_error = None
        self._last_install_error = None

    def collect(self):
        from prometheus_client.core import CounterMetricFamily
        from prometheus_client.core import GaugeMetricFamily
        try:
            pairs = self.meter.read()
            up = 1.0
            if self._last_error is not None:
                LOG.info('flow meter: counters readable again')
            self._last_error = None
        except nft_mod.FlowMeterError as e:
            pairs, up = {}, 0.0
            if str(e) != self._last_error:
                LOG.error('flow meter: cannot read the counters: %s', e)
            self._last_error = str(e)
            if self.reinstall is not None:
                try:
                    self.reinstall()
                    LOG.warning('flow meter: table installed again; the '
                                'counters restart from 0')
                except nft_mod.FlowMeterError as e2:
                    if str(e2) != self._last_install_error:
                        LOG.error('flow meter: cannot install the table: '
                                  '%s', e2)
                    self._last_install_error = str(e2)
        b = CounterMetricFamily(
            'netaware_flow_bytes', 'Bytes of IP packets from src to dst '
            'that entered a bridge from a guest port of this hypervisor',
            labels=['src', 'dst'])
        p = CounterMetricFamily(
            'netaware_flow_packets', 'IP packets from src to dst that '
            'entered a bridge from a guest port of this hypervisor',
            labels=['src', 'dst'])
        for (src, dst), (packets, nbytes) in sorted(pairs.items()):
            b.add_metric([src, dst], nbytes)
            p.add_metric([src, dst], packets)
        yield b
        yield p
        yield GaugeMetricFamily('netaware_flow_pairs', 'Guest address pairs '
                                'counted (elements of the nftables set)',
                                value=len(pairs))
        yield GaugeMetricFamily('netaware_flow_meter_up', '1 if the last '
                                'read of the kernel counters worked',
                                value=up)


def command(port, netns=None, listen='127.0.0.1', guest_ports=('tap*',),
            python=None):
    """The argv that starts a meter (for the local stack, which runs one
    per hypervisor namespace with ``netns`` and its own ``port``, e.g.
    ``DEFAULT_PORT + i`` for the i-th host, all on 127.0.0.1)."""
    argv = [python or sys.executable, '-m', 'nova_netaware.flowmeter',
            '--listen', listen, '--port', str(int(port))]
    for g in guest_ports:
        argv += ['--guest-ports', g]
    if netns:
        argv += ['--netns', netns]
    return argv


def scrape_config(targets, interval='5s'):
    """The Prometheus ``scrape_configs`` entry (YAML text) for meters at
    *targets* (``host:port`` strings), under the job name that the default
    ``[netaware] prometheus_health_query`` watches."""
    return ('  - job_name: %s\n'
            '    scrape_interval: %s\n'
            '    static_configs:\n'
            '      - targets: [%s]\n'
            % (JOB, interval, ', '.join('"%s"' % t for t in targets)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog='nova-netaware-flow-meter',
        description='Count the bytes between each pair of guest IPv4 '
                    'addresses on this hypervisor (nftables bridge family, '
                    'in-kernel counters) and serve them to Prometheus as '
                    'netaware_flow_bytes_total{src,dst}.')
    p.add_argument('--guest-ports', action='append', metavar='PATTERN',
                   help='name or prefix* of the bridge ports guests are '
                        'plugged into; frames entering from them are '
                        'counted (repeatable; default: tap*, the names '
                        "Nova's libvirt driver gives)")
    p.add_argument('--netns', help='count in this network namespace '
                   '(ip netns exec); the HTTP endpoint stays in the '
                   "meter's own namespace")
    p.add_argument('--listen', default='0.0.0.0',
                   help='address of the metrics endpoint (default 0.0.0.0)')
    p.add_argument('--port', type=int, default=DEFAULT_PORT,
                   help='port of the metrics endpoint (default %d)'
                        % DEFAULT_PORT)
    p.add_argument('--idle-timeout', type=int, default=600, metavar='S',
                   help='forget a pair idle for S seconds (default 600)')
    p.add_argument('--max-pairs', type=int, default=65535,
                   help='size of the set (default 65535); pairs beyond it '
                        'are not counted')
    p.add_argument('--table', default=nft_mod.TABLE,
                   help='nftables bridge table to use (default %s)'
                        % nft_mod.TABLE)
    args = p.parse_args(argv)
    args.guest_ports = args.guest_ports or ['tap*']
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s '
                        '%(levelname)s %(name)s %(message)s')
    try:
        import prometheus_client
        from prometheus_client.registry import CollectorRegistry
    except ImportError:
        print('nova-netaware-flow-meter needs prometheus-client '
              '(pip install nova-netaware[meter])', file=sys.stderr)
        return 2
    meter = nft_mod.Nft(netns=args.netns, table=args.table)

    def install():
        meter.install(args.guest_ports, args.idle_timeout, args.max_pairs)
    try:
        install()
    except nft_mod.FlowMeterError as e:
        print('nova-netaware-flow-meter: %s' % e, file=sys.stderr)
        return 1
    registry = CollectorRegistry()
    registry.register(FlowCollector(meter, reinstall=install))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: stop.set())
    try:
        prometheus_client.start_http_server(args.port, addr=args.listen,
                                            registry=registry)
    except OSError as e:
        print('nova-netaware-flow-meter: cannot listen on %s:%d: %s'
              % (args.listen, args.port, e), file=sys.stderr)
        meter.remove()
        return 1
    LOG.info('flow meter: counting frames from %s%s, serving '
             'http://%s:%d/metrics', ', '.join(args.guest_ports),
             ' in netns ' + args.netns if args.netns else '', args.listen,
             args.port)
    stop.wait()
    try:
        meter.remove()
    except nft_mod.FlowMeterError as e:
        LOG.warning('flow meter: %s', e)
    LOG.info('flow meter: stopped, table %s removed', args.table)
    return 0
