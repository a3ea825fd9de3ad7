"""Nova's scheduler, with the nova-netaware filter and weigher, reading live
traffic from a real Prometheus; and still scheduling when Prometheus dies.

Nova's functional harness (tests/functional/base.NetawareTestCase) runs the
real API, conductor, scheduler and six fake computes; Prometheus (Debian's
package) scrapes an exporter on loopback.
"""

from tests.functional import base  # noqa: I100 - eventlet patch first

from tests.prometheus.conftest import Exporter
from tests.prometheus.conftest import Prometheus
from tests.prometheus.conftest import rates

QUERY = 'netaware_flow_mbps'


class TestSchedulerReadsPrometheus(base.NetawareTestCase):

    def setUp(self):
        self.exporter = Exporter()
        self.addCleanup(self.exporter.close)
        self.prom = Prometheus(self.exporter.port)
        self.addCleanup(self.prom.close)
        super().setUp()
        self.flags(traffic_source='prometheus', prometheus_url=self.prom.url,
                   prometheus_query=QUERY, prometheus_cache_ttl=0,
                   prometheus_max_staleness=0, prometheus_timeout=1,
                   group='netaware')

    def test_live_traffic_drives_the_move_and_a_dead_prometheus_fails_open(
            self):
        a = self.boot('a', 'h1')
        b = self.boot('b', 'h3')
        c = self.boot('c', 'h5')
        flows = [(a['id'], c['id'], 3000), (c['id'], a['id'], 3000),
                 (a['id'], b['id'], 100)]
        self.exporter.set(flows)
        self.prom.wait_for(QUERY, lambda res: rates(res) == {
            (s, d): float(r) for s, d, r in flows})
        self._migrate_server(a)
        # next to its chatty peer c (h6 is the only other host on leaf-3;
        # h5 itself is c's host: comm cost 0)
        self.assertEqual('h5', self.host_of(a))
        self._confirm_resize(a)
        self.assertIn('MigrationImpactWeigher ranking for server %s'
                      % a['id'], self.log_text())

        # Prometheus dies: the scheduler logs it and keeps working
        # (fail-open: every host passes, neutral weights).
        self.prom.stop()
        self._migrate_server(a)
        self.assertNotEqual('h5', self.host_of(a))
        self._confirm_resize(a)
        self.assertIn('cannot reach Prometheus at %s' % self.prom.url,
                      self.log_text())
        self.assertIn('acting fail-open', self.log_text())
