"""Durable buffer: order, bounds, and survival of kill -9 with exactly-once
replay after restart (a real writer process is killed)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from nova_netaware.replica.buffer import BufferError_, DurableBuffer

WRITER = r'''
import sys, time
from nova_netaware.replica.buffer import DurableBuffer
b = DurableBuffer(sys.argv[1], 10**9, 10**12, sys.argv[2])
seq = b.count
while True:
    items = [(time.time(), b'pkt-%08d-' % (seq + i) + b'x' * 100)
             for i in range(50)]
    b.append_many(items)
    seq += 50
    sys.stdout.write('%d\n' % seq)
    sys.stdout.flush()
'''


def _numbers(rows):
    return [int(r[2][4:12]) for r in rows]


def test_order_peek_ack(tmp_path):
    b = DurableBuffer(str(tmp_path / 'b.sqlite'), 100, 10**6)
    b.append_many([(time.time(), b'p%d' % i) for i in range(10)])
    rows = b.peek(4)
    assert [r[2] for r in rows] == [b'p0', b'p1', b'p2', b'p3']
    b.ack(rows)
    assert b.count == 6 and b.nbytes == 12
    assert [r[2] for r in b.peek(100)] == [b'p%d' % i for i in range(4, 10)]
    b.close()
    b2 = DurableBuffer(str(tmp_path / 'b.sqlite'), 100, 10**6)
    assert b2.count == 6 and b2.nbytes == 12  # counters rebuilt from disk
    assert b2.peek(1)[0][2] == b'p4'


def test_bounds_never_evict(tmp_path):
    b = DurableBuffer(str(tmp_path / 'b.sqlite'), 5, 1000)
    assert b.has_room(10)
    b.append_many([(time.time(), b'x' * 10)] * 5)
    assert not b.has_room(1)  # count bound
    b2 = DurableBuffer(str(tmp_path / 'c.sqlite'), 100, 25)
    b2.append_many([(time.time(), b'x' * 10)] * 2)
    assert not b2.has_room(10) and b2.has_room(5)  # byte bound
    assert not b2.has_room(5, pending_count=1, pending_bytes=1)
    assert b.count == 5  # nothing was evicted


@pytest.mark.parametrize('kw,msg', [
    ({'max_packets': 0}, 'max_packets'),
    ({'max_bytes': 0}, 'max_bytes'),
    ({'synchronous': 'OFF'}, 'synchronous'),
])
def test_bad_config_is_a_clear_error(tmp_path, kw, msg):
    args = dict(path=str(tmp_path / 'b.sqlite'), max_packets=10,
                max_bytes=10**6)
    args.update(kw)
    with pytest.raises(BufferError_, match=msg):
        DurableBuffer(**args)


def test_corrupt_file_is_a_clear_error(tmp_path):
    p = tmp_path / 'b.sqlite'
    p.write_bytes(b'this is not a database' * 100)
    with pytest.raises(BufferError_, match='cannot open buffer'):
        DurableBuffer(str(p), 10, 10**6)


@pytest.mark.parametrize('sync', ['NORMAL', 'FULL'])
def test_survives_kill9_exactly_once(tmp_path, sync):
    path = str(tmp_path / 'b.sqlite')
    committed = 0
    for round_ in range(3):  # kill the writer three times
        p = subprocess.Popen([sys.executable, '-c', WRITER, path, sync],
                             stdout=subprocess.PIPE, text=True)
        for _ in range(20 + round_ * 7):
            committed = int(p.stdout.readline())
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        # the pipe may hold commits reported after the last line read:
        # the writer's last report is the last complete line it wrote
        for line in p.stdout.read().splitlines():
            committed = int(line)
        p.stdout.close()
    b = DurableBuffer(path, 10**9, 10**12)
    # every reported commit is there; at most the commit in flight extra
    assert committed <= b.count <= committed + 50
    assert b.count % 50 == 0  # a batch is all or nothing
    got = []
    while True:
        rows = b.peek(64)
        if not rows:
            break
        got += _numbers(rows)
        b.ack(rows)
        if len(got) == 640:  # "crash" in the middle of the replay
            b.close()
            b = DurableBuffer(path, 10**9, 10**12)
    assert got == list(range(len(got)))  # in order, no gap, no duplicate
    assert len(got) >= committed
    assert b.count == 0


def test_background_checkpoint_keeps_wal_bounded(tmp_path):
    """autocheckpoint is off on the data path; the background checkpointer
    lets SQLite reuse the WAL, so it does not grow with the traffic."""
    path = str(tmp_path / 'b.sqlite')
    b = DurableBuffer(path, 10**9, 10**12)
    b.start_checkpointer(interval=0.05)
    sizes = []
    try:
        for round_ in range(4):
            for _ in range(40):
                b.append_many([(time.time(), b'x' * 1000)] * 100)
                time.sleep(0.002)
            b.ack(b.peek(4000))
            time.sleep(1.0)  # several checkpoint periods, even under load
            sizes.append(os.path.getsize(path + '-wal'))
        b.append_many([(time.time(), b'y' * 10)])
    finally:
        b.close()
    # reused: without checkpoints it would reach 4 x the first round (a
    # checkpoint still running when a round starts may add one more round)
    assert sizes[-1] <= sizes[0] * 2.2, sizes
    b2 = DurableBuffer(path, 10**9, 10**12)
    assert b2.count == 1 and b2.peek(1)[0][2] == b'y' * 10
