"""The real guest's services and state endpoint
(:mod:`nova_netaware.deploy.localstack.libvirt.guest`): the busybox lock,
the exactly-once numbered requests, and export/import through the shipped
``guest_endpoint`` state driver, called from the hypervisor's namespace.

One guest for the module; the tests share its state, so each one reads the
state it starts from and leaves the guest thawed (not frozen).
"""

import threading
import time

import pytest

from nova_netaware.replica.drivers import DriverError, StateBlob

CONCURRENT = 24


@pytest.fixture(scope='module')
def driver(bed):
    bed.route_from_hv()
    return bed.state_driver(state_timeout=30.0)


def _parallel(fn, args):
    out = [None] * len(args)
    errors = []

    def run(i, a):
        try:
            out[i] = fn(*a)
        except Exception as e:  # reported below, with its request
            errors.append((a, e))
    threads = [threading.Thread(target=run, args=(i, a), daemon=True)
               for i, a in enumerate(args)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return out


def _log(driver):
    return driver._call({'op': 'log'})[0]['log']


def test_concurrent_counts_are_each_counted_once(bed):
    c0 = bed.peek()
    got = _parallel(bed.count, [()] * CONCURRENT)
    assert sorted(got) == list(range(c0 + 1, c0 + CONCURRENT + 1))
    assert bed.peek() == c0 + CONCURRENT


def test_numbered_requests_dup_gap_and_order(bed, driver):
    t0 = driver.stats()['total']
    assert bed.req('alice', 1) == 'ok alice 1 total %d client 1 last 1 ' \
                                  'applied' % (t0 + 1)
    assert bed.req('alice', 2).endswith('client 2 last 2 applied')
    # a retry of an applied request: answered, not applied again
    assert bed.req('alice', 2) == 'ok alice 2 total %d client 2 last 2 ' \
                                  'dup' % (t0 + 2)
    assert bed.req('alice', 1).endswith(' dup')
    # a skipped number: applied, counted as a gap
    assert bed.req('alice', 5).endswith('client 3 last 5 gap')
    assert bed.req('alice', 3).endswith(' dup')
    assert bed.req('bob', 1).endswith('client 1 last 1 applied')
    for bad in ('/cgi-bin/req?c=a%20b&n=1', '/cgi-bin/req?c=x&n=0',
                '/cgi-bin/req?c=x&n=01', '/cgi-bin/req?c=x'):
        assert bed.http(bad).startswith('bad '), bad
    st = driver.stats()
    assert st['total'] == t0 + 4
    assert st['clients']['alice'] == [5, 3, 3, 1]   # last, count, dups, gaps
    assert st['clients']['bob'] == [1, 1, 0, 0]
    assert 'x' not in st['clients'] and 'a b' not in st['clients']
    assert _log(driver)[-4:] == ['alice 1', 'alice 2', 'alice 5', 'bob 1']


def test_concurrent_clients_exactly_once_in_order(bed, driver):
    t0 = driver.stats()['total']
    clients = ['p%d' % i for i in range(4)]
    per = 6

    def client(c):
        return [bed.req(c, n) for n in range(1, per + 1)] + \
            [bed.req(c, per)]                       # one retry at the end
    replies = _parallel(client, [(c,) for c in clients])
    for c, rs in zip(clients, replies):
        assert all(r.endswith(' applied') for r in rs[:-1]), rs
        assert rs[-1].endswith(' dup'), rs
    st = driver.stats()
    assert st['total'] == t0 + len(clients) * per
    for c in clients:
        assert st['clients'][c] == [per, per, 1, 0]
        assert [x for x in _log(driver) if x.split()[0] == c] == \
            ['%s %d' % (c, n) for n in range(1, per + 1)]


def test_export_import_round_trip_through_the_driver(bed, driver):
    bed.req('rt', 1)
    s1 = driver.export_state('guest')
    assert driver.stats()['frozen'] is True
    assert s1.data.startswith(b'netaware-guest-state 1\n')
    assert b'\nclient rt 1 1 0 0\n' in s1.data
    assert b'\ncounter %d\n' % bed.peek() in s1.data
    e0 = driver.stats()['epoch']
    assert driver.import_state('guest', s1, e0 + 1) == s1.sha256
    # the guest endpoint's own time, kept for the switchover's timeline
    last = driver.last_import
    assert last['epoch'] == e0 + 1 and last['server_us'] > 0, last
    st = driver.stats()
    assert st['frozen'] is False and st['epoch'] == e0 + 1
    t1, c1 = st['total'], bed.peek()
    bed.req('rt', 2)
    bed.count()
    s2 = driver.export_state('guest')
    # load the older state: the copy really takes what it is given
    assert driver.import_state('guest', s1, e0 + 2) == s1.sha256
    st = driver.stats()
    assert st['total'] == t1 and st['clients']['rt'] == [1, 1, 0, 0]
    assert bed.peek() == c1 and _log(driver)[-1] == 'rt 1'
    # and back to the newer one
    assert driver.import_state('guest', s2, e0 + 3) == s2.sha256
    st = driver.stats()
    assert st['total'] == t1 + 1 and st['clients']['rt'] == [2, 2, 0, 0]
    assert bed.peek() == c1 + 1 and _log(driver)[-1] == 'rt 2'


def test_import_refuses_a_bad_checksum_and_a_lower_epoch(bed, driver):
    bed.req('ck', 1)
    blob = driver.export_state('guest')
    epoch = driver.stats()['epoch']
    tampered = StateBlob(blob.data.replace(b'client ck 1 1 0 0',
                                           b'client ck 1 2 0 0'),
                         blob.sha256, verify=False)
    assert tampered.data != blob.data
    with pytest.raises(DriverError, match='checksum mismatch'):
        driver.import_state('guest', tampered, epoch + 1)
    with pytest.raises(DriverError, match='bad state blob'):
        driver.import_state('guest', StateBlob(b'not a state\n'), epoch + 1)
    with pytest.raises(DriverError, match='stale epoch %d < %d'
                       % (epoch - 1, epoch)):
        driver.import_state('guest', blob, epoch - 1)
    st = driver.stats()     # nothing was loaded, the copy is still frozen
    assert st['sha256'] == blob.sha256 and st['frozen'] is True
    assert st['epoch'] == epoch
    # the same epoch again is allowed (only a lower one is stale)
    assert driver.import_state('guest', blob, epoch) == blob.sha256
    assert driver.stats()['frozen'] is False


def test_a_request_after_export_waits_for_the_import(bed, driver):
    blob = driver.export_state('guest')
    t0 = driver.stats()['total']
    c0 = bed.peek()
    box = {}
    req = threading.Thread(target=lambda: box.update(
        r=bed.req('fz', 1, timeout=60)), daemon=True)
    cnt = threading.Thread(target=lambda: box.update(
        c=bed.count()), daemon=True)
    req.start()
    cnt.start()
    time.sleep(2.0)
    assert box == {}, 'a request was answered while the copy was frozen'
    st = driver.stats()
    assert st['total'] == t0 and 'fz' not in st['clients']
    assert st['sha256'] == blob.sha256 and bed.peek() == c0
    driver.import_state('guest', blob, st['epoch'] + 1)
    req.join(60)
    cnt.join(60)
    assert box['r'] == 'ok fz 1 total %d client 1 last 1 applied' % (t0 + 1)
    assert box['c'] == c0 + 1
    assert bed.req('fz', 1).endswith(' dup')
    st = driver.stats()
    assert st['total'] == t0 + 1 and st['clients']['fz'] == [1, 1, 1, 0]
    assert _log(driver)[-1] == 'fz 1'
