"""The ``prometheus`` traffic source: VM-to-VM rates from a PromQL query.

Options (group ``[netaware]``, see :mod:`nova_netaware.conf`):
``prometheus_url``, ``prometheus_query``, ``prometheus_src_label``,
``prometheus_dst_label``, ``prometheus_label_kind`` (``uuid`` or ``ip``),
``prometheus_health_query``,
``prometheus_ports_cloud``, ``prometheus_port_cache_ttl``,
``prometheus_timeout``, ``prometheus_cache_ttl``,
``prometheus_max_staleness``.

The query is an instant query (``GET <url>/api/v1/query``) whose result is a
vector: one sample per directed pair, value in Mbit/s, the two ends in the
``src``/``dst`` labels. The labels are Nova server UUIDs, or fixed IPs that
are resolved to servers through Neutron ports (``device_id`` of ports whose
``device_owner`` starts with ``compute:``), listed once per
``prometheus_port_cache_ttl`` through openstacksdk.

Caching and failures (decision, documented in docs/advisor.md):

* a good result is reused for ``prometheus_cache_ttl`` seconds, so a burst
  of scheduling requests costs one query;
* a failed query (connection refused, timeout, HTTP or PromQL error,
  malformed answer) is logged and not retried before ``prometheus_cache_ttl``
  seconds, so a dead or slow Prometheus does not add ``prometheus_timeout``
  to every request;
* meanwhile the last good matrix is served if it is at most
  ``prometheus_max_staleness`` seconds old (traffic matrices change slowly,
  and the placement of servers is read from Nova anyway, never from this
  cache); otherwise :class:`DataError` is raised and the scheduler plugin
  falls back as ``on_missing_data`` says (fail-open by default: every host
  passes, neutral weights).

* a dead traffic meter is a failed read too: if
  ``prometheus_health_query`` (by default ``up{job="netaware-flow-meter"}
  == 0 or netaware_flow_meter_up == 0``) gives any sample, the read fails
  with the meters it names, so the pairs a dead meter counted do not
  silently drop to zero.

Where the default query's ``netaware_flow_bytes_total{src, dst}`` comes
from: ``nova-netaware-flow-meter`` on each hypervisor
(:mod:`nova_netaware.flowmeter`; its labels are fixed IPs, so
``prometheus_label_kind = ip``).

``version`` changes exactly when the rates change.
"""

import math
import threading
import time

import requests
from oslo_log import log as logging

from nova_netaware.core.exceptions import DataError
from nova_netaware.core.traffic import TrafficMatrix
from nova_netaware.traffic import base
from nova_netaware.utils.log import LogOnce

LOG = logging.getLogger(__name__)


class PrometheusTrafficSource(base.TrafficSource):

    def __init__(self, conf, connection=None, clock=time.monotonic):
        """:param connection: an openstacksdk Connection for the port
        lookup; by default one is made from clouds.yaml
        (``prometheus_ports_cloud``) on first use."""
        super().__init__(conf)
        self._conn = connection
        self._clock = clock
        self._lock = threading.Lock()
        self._http = requests.Session()
        self._log_once = LogOnce(LOG)
        self._matrix = None
        self._good_at = None
        self._next_try = -math.inf
        self._error = None
        self._rates = None
        self._version = 0
        self._ips = {}
        self._ips_at = -math.inf
        self.queries = 0          # reads of Prometheus (for tests)

    # -- public -----------------------------------------------------------------
    def get(self):
        o = self.conf.netaware
        with self._lock:
            now = self._clock()
            if now < self._next_try:
                if self._error is None:
                    return self._matrix
                return self._stale_or_raise(now, o)
            try:
                matrix = self._fetch(o, now)
            except DataError as e:
                self._error = str(e)
                self._next_try = now + o.prometheus_cache_ttl
                LOG.warning('nova-netaware prometheus traffic source: %s', e)
                return self._stale_or_raise(now, o)
            if self._error is not None:
                LOG.info('nova-netaware prometheus traffic source: %s '
                         'answers again', o.prometheus_url)
            self._matrix, self._good_at, self._error = matrix, now, None
            self._next_try = now + o.prometheus_cache_ttl
            return matrix

    # -- failures ---------------------------------------------------------------
    def _stale_or_raise(self, now, o):
        if self._matrix is not None:
            age = now - self._good_at
            if age <= o.prometheus_max_staleness:
                self._log_once(logging.WARNING,
                               'nova-netaware prometheus traffic source: '
                               'using the last good traffic matrix (from '
                               '%s) while Prometheus fails: %s',
                               time.strftime('%H:%M:%S', time.localtime(
                                   time.time() - age)), self._error)
                return self._matrix
            raise DataError('%s; the last good traffic matrix is %.0fs old, '
                            'more than prometheus_max_staleness=%.0fs'
                            % (self._error, age, o.prometheus_max_staleness))
        raise DataError('%s; no traffic matrix has been read yet'
                        % self._error)

    # -- one query --------------------------------------------------------------
    def _fetch(self, o, now):
        self.queries += 1
        samples = self._query(o, o.prometheus_query)
        if o.prometheus_health_query:
            broken = self._query(o, o.prometheus_health_query)
            if broken:
                raise DataError('traffic meter(s) down (%s): %s' % (
                    o.prometheus_health_query, '; '.join(sorted(
                        _describe(b.get('metric') or {})
                        for b in broken))))
        return self._matrix_from(samples, o, now)

    def _query(self, o, query):
        """One instant query; its result (a vector) or DataError."""
        url = o.prometheus_url.rstrip('/') + '/api/v1/query'
        try:
            resp = self._http.get(url, params={'query': query},
                                  timeout=o.prometheus_timeout)
        except requests.Timeout:
            raise DataError('Prometheus at %s did not answer within %.1fs'
                            % (o.prometheus_url, o.prometheus_timeout))
        except requests.RequestException as e:
            raise DataError('cannot reach Prometheus at %s: %s'
                            % (o.prometheus_url, _short(e)))
        try:
            body = resp.json()
        except ValueError:
            raise DataError('Prometheus at %s answered HTTP %s with no JSON'
                            % (o.prometheus_url, resp.status_code))
        if resp.status_code != 200 or body.get('status') != 'success':
            raise DataError('Prometheus at %s rejected the query %r: HTTP %s '
                            '%s: %s' % (o.prometheus_url, query,
                                        resp.status_code,
                                        body.get('errorType', ''),
                                        body.get('error', '')))
        result = body.get('data') or {}
        if result.get('resultType') != 'vector':
            raise DataError('the query %r gives a %s, not an instant vector'
                            % (query, result.get('resultType')))
        return result.get('result') or []

    def _matrix_from(self, samples, o, now):
        flows, unlabelled, unresolved = [], 0, set()
        labelled = []
        for s in samples:
            metric = s.get('metric') or {}
            a = metric.get(o.prometheus_src_label)
            b = metric.get(o.prometheus_dst_label)
            try:
                v = float(s['value'][1])
            except (KeyError, IndexError, TypeError, ValueError):
                unlabelled += 1
                continue
            if not a or not b:
                unlabelled += 1
                continue
            if not math.isfinite(v) or v < 0:
                continue
            labelled.append((a, b, v))
        if o.prometheus_label_kind == 'ip' and labelled:
            ips = self._ip_map(o, now, {x for a, b, _ in labelled
                                        for x in (a, b)})
        else:
            ips = None
        for a, b, v in labelled:
            if ips is not None:
                sa, sb = ips.get(a), ips.get(b)
                for ip, srv in ((a, sa), (b, sb)):
                    if srv is None:
                        unresolved.add(ip)
                if sa is None or sb is None:
                    continue
                a, b = sa, sb
            if a == b or v == 0:
                continue
            flows.append({'src': a, 'dst': b, 'mbps': v})
        if unlabelled:
            self._log_once(logging.WARNING, 'nova-netaware prometheus: %d '
                           'sample(s) of %r lack the labels %s/%s or a '
                           'value; ignored', unlabelled, o.prometheus_query,
                           o.prometheus_src_label, o.prometheus_dst_label)
        if unresolved:
            self._log_once(logging.WARNING, 'nova-netaware prometheus: no '
                           'server port has the fixed IP(s) %s; their flows '
                           'are ignored', ', '.join(sorted(unresolved)))
        rates = tuple(sorted(((f['src'], f['dst']), f['mbps'])
                             for f in flows))
        if rates != self._rates:
            self._rates = rates
            self._version += 1
        return TrafficMatrix({'flows': flows},
                             source='prometheus:%s' % o.prometheus_url,
                             version=('prometheus', self._version))

    # -- fixed IP -> server ------------------------------------------------------
    def _ip_map(self, o, now, needed):
        age = now - self._ips_at
        missing = needed - set(self._ips)
        if age > o.prometheus_port_cache_ttl or (
                missing and age > o.prometheus_cache_ttl):
            try:
                self._ips = self._list_ports(o)
                self._ips_at = now
            except DataError:
                if not self._ips:
                    raise
                self._log_once(logging.WARNING, 'nova-netaware prometheus: '
                               'cannot refresh the IP -> server map; using '
                               'the one from %.0fs ago', age)
        return self._ips

    def _list_ports(self, o):
        if self._conn is None:
            if not o.prometheus_ports_cloud:
                raise DataError('prometheus_label_kind = ip needs '
                                '[netaware] prometheus_ports_cloud (a '
                                'clouds.yaml cloud allowed to list ports)')
            import openstack
            try:
                self._conn = openstack.connect(cloud=o.prometheus_ports_cloud)
            except Exception as e:
                raise DataError('cannot connect to cloud %r for the port '
                                'lookup: %s' % (o.prometheus_ports_cloud,
                                                _short(e)))
        out = {}
        try:
            for port in self._conn.network.ports():
                if not (port.device_owner or '').startswith('compute:'):
                    continue
                for fip in port.fixed_ips or []:
                    ip = fip.get('ip_address')
                    if ip and port.device_id:
                        out[ip] = port.device_id
        except Exception as e:
            raise DataError('cannot list Neutron ports: %s' % _short(e))
        return out


def _describe(labels):
    """A sample's labels as ``instance=..., job=...`` (no metric name)."""
    return ', '.join('%s=%s' % (k, v) for k, v in sorted(labels.items())
                     if k != '__name__') or '(no labels)'


def _short(e):
    text = str(e)
    return text if len(text) < 300 else text[:300] + '...'
