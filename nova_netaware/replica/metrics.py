"""Prometheus metrics endpoint (prometheus_client), fed from a status
callable (``Agent.status``) that returns the agent's status dict.
"""

from prometheus_client import core, start_http_server
from prometheus_client.registry import CollectorRegistry

from nova_netaware.replica import states


class AgentCollector:

    def __init__(self, status):
        self.status = status

    def collect(self):
        st = self.status()
        lbl = ['agent', 'service']
        lv = [st['agent_id'], st['service']]

        def gauge(name, doc, value):
            g = core.GaugeMetricFamily(name, doc, labels=lbl)
            g.add_metric(lv, float(value))
            return g

        def counter(name, doc, value):
            c = core.CounterMetricFamily(name, doc, labels=lbl)
            c.add_metric(lv, float(value))
            return c

        roles = core.GaugeMetricFamily(
            'nnr_role', 'Current role (1 for the current one)',
            labels=lbl + ['role'])
        for r in sorted(set(states.ROLE.values())):
            roles.add_metric(lv + [r], 1.0 if st['role'] == r else 0.0)
        yield roles
        yield gauge('nnr_epoch', 'Fencing epoch known to this agent',
                    st['epoch'])
        b = st['buffer']
        yield gauge('nnr_buffer_packets', 'Packets in the durable buffer',
                    b['packets'])
        yield gauge('nnr_buffer_bytes', 'Bytes in the durable buffer',
                    b['bytes'])
        yield gauge('nnr_buffer_oldest_age_seconds',
                    'Age of the oldest buffered packet', b['oldest_age_s'])
        last = st['last_switchover'] or {}
        if last.get('downtime_s') is not None:
            yield gauge('nnr_last_switchover_downtime_seconds',
                        'Last request served by the old copy to first '
                        'served by the new one', last['downtime_s'])
        if last.get('duration_s') is not None:
            yield gauge('nnr_last_switchover_duration_seconds',
                        'Duration of the last switchover on this side',
                        last['duration_s'])
        for k, v in st['counters'].items():
            yield counter('nnr_%s' % k, 'Agent counter %s' % k, v)
        for k, v in st['dataplane'].items():
            if isinstance(v, (int, float)):
                yield counter('nnr_dataplane_%s' % k,
                              'Data plane counter %s' % k, v)
        rej = core.CounterMetricFamily(
            'nnr_peer_rejected', 'Peer messages rejected, by reason',
            labels=lbl + ['reason'])
        for k, v in st['peer_rejected'].items():
            rej.add_metric(lv + [k], float(v))
        yield rej


def serve(status, host, port):
    """Serve the metrics of ``status()`` on http://host:port/metrics."""
    reg = CollectorRegistry()
    reg.register(AgentCollector(status))
    return start_http_server(port, addr=host, registry=reg)
