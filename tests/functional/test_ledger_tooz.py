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

    def ledger(self, url=None, ttl=60, timeout=5, **kw):
        # 5 s, not the 1 s default: these tests are about behaviour, and
        # this 2-core machine, loaded, took over 1 s for a first
        # connection (the slow-store test sets 1 s on purpose)
        led = ledger.ToozLedger(ttl=ttl, url=url or self.url,
                                timeout=timeout, **kw)
        self.addCleanup(led.close)
        return led

    def test_decisions_of_another_process_are_seen(self):
        # A second scheduler process: records one decision, then waits.
        code = textwrap.dedent('''
            import sys, time
            from nova_netaware.scheduler import ledger
            led = ledger.ToozLedger(ttl=60, url=sys.argv[1], timeout=5)
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

    def test_a_slow_store_is_back_as_soon_as_it_answers(self):
        # A real TCP proxy in front of Redis holds each client->Redis chunk
        # for `hold` seconds: the first connection (probe, connect, join,
        # publish) is slower than the 1 s ledger_timeout.
        proxy = self.useFixture(DelayProxy(6379, hold=0.4))
        url = 'redis://127.0.0.1:%d?namespace=netaware-test-%s' % (
            proxy.port, uuid.uuid4().hex[:8])
        led = self.ledger(url=url, timeout=1)
        led.record('u1', 'h2')
        self.assertFalse(led.shared)
        self.assertIn('no answer within 1 s', self.log.output)
        proxy.hold = 0.0
        # the call goes on in the worker thread and ends the outage; no
        # RETRY_S (30 s) wait
        deadline = time.monotonic() + 10
        while not led.shared and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertTrue(led.shared)
        other = self.ledger(url=url)
        self.assertIn('u1', other.entries())
        self.assertIn('reachable again', self.log.output)

    def test_a_forked_worker_joins_as_its_own_member_at_once(self):
        # nova-scheduler's [scheduler] workers are forked after the filter
        # loaded (and warmed) the ledger in the parent.
        parent = self.ledger()
        parent.warm()                       # still connecting at the fork
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                        # the worker process
            try:
                os.close(r)
                t = time.monotonic()
                # connected by the fork hook, before any request
                while parent._coord is None and time.monotonic() - t < 10:
                    time.sleep(0.05)
                joined = parent._coord is not None
                parent.record('u-child', 'h4')
                os.write(w, ('%s %s %s' % (joined, parent.shared,
                                           parent.member_id.decode())
                             ).encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r) as f:
            joined, shared, member = f.read().split()
        os.waitpid(pid, 0)
        self.assertEqual(('True', 'True'), (joined, shared))
        self.assertNotEqual(parent.member_id.decode(), member)
        self.assertIn('-%d-' % pid, member)
        self.assertEqual('h4', self.ledger().entries()['u-child'][0])

    def test_one_scheduler_process_decides_at_a_time(self):
        a, b = self.ledger(), self.ledger()
        self.assertIs(True, a.hold(1.0))
        t = time.monotonic()
        self.assertIs(False, b.hold(0.5))       # a holds the turn
        # (redis-py polls every 0.1 s and may give up one poll early)
        self.assertGreaterEqual(time.monotonic() - t, 0.35)
        a.let_go()
        t = time.monotonic()
        self.assertIs(True, b.hold(2.0))
        self.assertLess(time.monotonic() - t, 1.0)
        b.let_go()
        self.assertIs(True, a.hold(1.0))
        a.let_go()

    def test_a_holder_that_dies_frees_the_turn(self):
        a = self.ledger()
        pid = os.fork()
        if pid == 0:                    # a scheduler process that dies
            try:                        # while it holds the turn
                os._exit(0 if a.hold(1.0) else 1)
            finally:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(0, os.waitstatus_to_exitcode(status))
        # decision_wait (2 s) rounded up + 1: the store frees it in 3 s
        t = time.monotonic()
        self.assertIs(True, a.hold(8.0))
        self.assertLess(time.monotonic() - t, 6.5)   # not tooz's 30 s
        a.let_go()

    def test_no_turn_from_a_store_that_is_down(self):
        led = self.ledger(url=DOWN)
        self.assertIsNone(led.hold(1.0))
        led.let_go()                    # nothing held: nothing to do
        self.assertEqual(1, self.log.output.count('is unreachable'))

    def test_two_runtimes_decide_in_turn_and_the_second_sees_the_first(self):
        # Two scheduler processes' runtimes, each with its own member of
        # the shared ledger: the second's evaluation starts only once the
        # first's choice is in the ledger.
        import threading

        from oslo_config import cfg

        from nova_netaware.scheduler import runtime
        from tests.unit.test_moves import _Spec
        cfg.CONF.set_override('decision_wait', 5.0, 'netaware')
        self.addCleanup(cfg.CONF.clear_override, 'decision_wait',
                        'netaware')
        first, second = runtime.NovaRuntime(), runtime.NovaRuntime()
        first._ledger, second._ledger = self.ledger(), self.ledger()
        a, b = _Spec('a'), _Spec('b')
        first.begin(a)
        seen = []
        th = threading.Thread(target=lambda: (
            second.begin(b), seen.append(dict(second.ledger().entries()))))
        th.start()
        time.sleep(0.5)
        self.assertEqual([], seen)          # b waits for a's choice
        first.decided(a, 'h2', 'n2')        # Nova consumed h2 for a
        th.join(5)
        self.assertEqual(('h2', 'n2'), seen[0]['a'][:2])
        second.end('b')                     # no host passed for b
        t = time.monotonic()
        first.begin(_Spec('c'))             # the turn is free again
        self.assertLess(time.monotonic() - t, 1.0)
        first.end('c')


class DelayProxy(fixtures.Fixture):
    """A TCP proxy to 127.0.0.1:*target* that holds every chunk the client
    sends for :attr:`hold` seconds before forwarding it (a slow network
    path to the store)."""

    def __init__(self, target, hold):
        super().__init__()
        self.target, self.hold = target, hold

    def _setUp(self):
        import socket
        import threading
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.addCleanup(self.sock.close)

        def pipe(src, dst, delayed):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    if delayed and self.hold:
                        time.sleep(self.hold)
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def serve():
            while True:
                try:
                    client, _ = self.sock.accept()
                except OSError:
                    return
                upstream = socket.create_connection(('127.0.0.1',
                                                     self.target))
                for a, b, d in ((client, upstream, True),
                                (upstream, client, False)):
                    threading.Thread(target=pipe, args=(a, b, d),
                                     daemon=True).start()
        threading.Thread(target=serve, daemon=True).start()
