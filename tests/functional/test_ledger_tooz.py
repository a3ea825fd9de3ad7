"""The shared ledger (backend ``tooz``) against the machine's real Redis.

Redis is started by tools/services.sh (tools/setup.sh); these tests fail,
not skip, when it is not running. Each test uses its own tooz namespace.
"""

import logging
import os
import subprocess
import sys
import textwrap
import time
import uuid

import fixtures
import testtools

from nova_netaware.scheduler import ledger

REDIS = 'redis://127.0.0.1:6379'
#: a port nothing listens on
DOWN = 'redis://127.0.0.1:6390'


class TestToozLedger(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.url = '%s?namespace=netaware-test-%s' % (REDIS,
                                                      uuid.uuid4().hex[:8])
        self.log = self.useFixture(fixtures.FakeLogger(
            name='nova_netaware.scheduler.ledger', level=logging.INFO))

    def ledger(self, url=None, ttl=60, **kw):
        led = ledger.ToozLedger(ttl=ttl, url=url or self.url, timeout=1,
                                **kw)
        self.addCleanup(led.close)
        return led

    def test_decisions_of_another_process_are_seen(self):
        # A second scheduler process: records one decision, then waits.
        code = textwrap.dedent('''
            import sys, time
            from nova_netaware.scheduler import ledger
            led = ledger.ToozLedger(ttl=60, url=sys.argv[1], timeout=1)
            led.record('u-other', 'h7', 'n7')
            print('recorded', led.shared, flush=True)
            time.sleep(60)
        ''')
        env = dict(os.environ, PYTHONPATH=os.getcwd())
        proc = subprocess.Popen([sys.executable, '-c', code, self.url],
                                stdout=subprocess.PIPE, env=env, text=True)
        self.addCleanup(proc.wait, 10)
        self.addCleanup(proc.kill)
        self.assertEqual('recorded True', proc.stdout.readline().strip())
        mine = self.ledger()
        mine.record('u-mine', 'h2')
        entries = mine.entries()
        self.assertTrue(mine.shared)
        self.assertEqual({'u-other', 'u-mine'}, set(entries))
        self.assertEqual(('h7', 'n7'), entries['u-other'][:2])

    def test_latest_decision_wins_forget_and_ttl_across_members(self):
        now = [time.time()]
        a = self.ledger(clock=lambda: now[0], ttl=30)
        b = self.ledger(clock=lambda: now[0], ttl=30)
        a.record('u1', 'h2')
        now[0] += 1
        b.record('u1', 'h5')            # a later decision elsewhere
        self.assertEqual('h5', a.entries()['u1'][0])
        b.forget(['u1'])
        self.assertEqual('h2', a.entries()['u1'][0])
        now[0] += 30
        self.assertEqual({}, a.entries())
        self.assertEqual({}, b.entries())

    def test_store_down_scheduling_goes_on_and_says_what_is_lost(self):
        led = self.ledger(url=DOWN)
        t = time.monotonic()
        led.record('u1', 'h2')
        led.record('u2', 'h3')
        entries = led.entries()
        elapsed = time.monotonic() - t
        # its own decisions still count
        self.assertEqual({'u1', 'u2'}, set(entries))
        self.assertFalse(led.shared)
        self.assertLess(elapsed, 2.5)
        out = self.log.output
        self.assertEqual(1, out.count('is unreachable'))
        self.assertIn('moves decided by other scheduler processes are not '
                      'counted until Nova records them', out)

    def test_store_back_after_an_outage(self):
        led = self.ledger(url=DOWN)
        led.record('u1', 'h2')
        self.assertFalse(led.shared)
        # the store comes back (here: the URL now points at it) and is
        # tried again after RETRY_S
        led.url = self.url
        led._retry_at = 0.0
        other = self.ledger()
        other.record('u9', 'h9')
        self.assertEqual({'u1', 'u9'}, set(led.entries()))
        self.assertTrue(led.shared)
        self.assertIn('reachable again', self.log.output)
        self.assertIn('u1', other.entries())
