"""Durable, bounded, ordered packet buffer (SQLite in WAL mode).

Packets are appended with group commit (one transaction per batch) and read
back in append order. The replay position is the deletion of the replayed
rows, committed after each replay step, so a packet that was committed is
replayed exactly once even if the agent is killed (``kill -9``) and restarted
while it holds buffered traffic.

The buffer is bounded by packet count and by payload bytes. It never evicts
old data: the caller asks :meth:`DurableBuffer.has_room` and applies the
configured overflow policy to the *new* packet.

One thread owns the connection (the data plane thread); other threads only
read the integer/float attributes ``count``, ``nbytes`` and ``oldest_ts``.
"""

import logging
import os
import sqlite3
import threading
import time

from nova_netaware.replica.errors import BufferError_

LOG = logging.getLogger(__name__)


SYNC_MODES = ('NORMAL', 'FULL')


class DurableBuffer:

    def __init__(self, path, max_packets, max_bytes, synchronous='NORMAL'):
        if not path:
            raise BufferError_('buffer path must not be empty')
        if int(max_packets) < 1:
            raise BufferError_('max_packets must be >= 1, got %r'
                               % (max_packets,))
        if int(max_bytes) < 1:
            raise BufferError_('max_bytes must be >= 1, got %r'
                               % (max_bytes,))
        synchronous = str(synchronous).upper()
        if synchronous not in SYNC_MODES:
            raise BufferError_('synchronous must be one of %s, got %r'
                               % (SYNC_MODES, synchronous))
        self.path = path
        self.max_packets = int(max_packets)
        self.max_bytes = int(max_bytes)
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute('PRAGMA journal_mode=WAL').fetchone()
            self._db.execute('PRAGMA synchronous=%s' % synchronous)
            self._db.execute('PRAGMA cache_size=-8192')  # 8 MiB, bounded
            # no checkpoint (and its fsync) on the commit path: a
            # background connection checkpoints instead (start_checkpointer)
            self._db.execute('PRAGMA wal_autocheckpoint=0')
            self._db.execute(
                # rowid order is append order: a new rowid is always above
                # every row present (no AUTOINCREMENT bookkeeping needed)
                'CREATE TABLE IF NOT EXISTS pkt ('
                ' seq INTEGER PRIMARY KEY,'
                ' ts REAL NOT NULL,'
                ' data BLOB NOT NULL)')
            row = self._db.execute(
                'SELECT count(*), coalesce(sum(length(data)), 0) FROM pkt'
            ).fetchone()
        except sqlite3.DatabaseError as e:
            raise BufferError_('cannot open buffer %s: %s' % (path, e))
        self.count, self.nbytes = int(row[0]), int(row[1])
        self._refresh_oldest()
        self.commits = 0

    def _refresh_oldest(self):
        row = self._db.execute(
            'SELECT ts FROM pkt ORDER BY seq LIMIT 1').fetchone()
        self.oldest_ts = row[0] if row else None

    def has_room(self, nbytes, pending_count=0, pending_bytes=0):
        return (self.count + pending_count + 1 <= self.max_packets and
                self.nbytes + pending_bytes + nbytes <= self.max_bytes)

    def append_many(self, items):
        """Append [(ts, bytes), ...] in one transaction (group commit)."""
        if not items:
            return
        db = self._db
        db.execute('BEGIN IMMEDIATE')
        try:
            db.executemany('INSERT INTO pkt(ts, data) VALUES (?, ?)', items)
            db.execute('COMMIT')
        except BaseException:
            db.execute('ROLLBACK')
            raise
        self.commits += 1
        if self.oldest_ts is None:
            self.oldest_ts = items[0][0]
        self.count += len(items)
        self.nbytes += sum(len(d) for _, d in items)

    def peek(self, n):
        """The first ``n`` buffered packets: [(seq, ts, data)], in order."""
        return self._db.execute(
            'SELECT seq, ts, data FROM pkt ORDER BY seq LIMIT ?',
            (int(n),)).fetchall()

    def ack(self, rows):
        """Forget the rows returned by :meth:`peek` (they were replayed)."""
        if not rows:
            return
        last = rows[-1][0]
        self._db.execute('DELETE FROM pkt WHERE seq <= ?', (last,))
        self.count -= len(rows)
        self.nbytes -= sum(len(r[2]) for r in rows)
        self._refresh_oldest()

    def oldest_age(self, now=None):
        ts = self.oldest_ts
        if ts is None:
            return 0.0
        return max(0.0, (now or time.time()) - ts)

    def start_checkpointer(self, interval=0.5):
        """Copy the WAL back into the database from a separate connection
        and thread, so no commit of the data path (and no switchover) ever
        waits for a checkpoint's fsync. Durability is the WAL's either way.
        """
        self._ckpt_stop = threading.Event()

        def run():
            db = sqlite3.connect(self.path, isolation_level=None,
                                 check_same_thread=False)
            try:
                while not self._ckpt_stop.wait(interval):
                    try:
                        db.execute('PRAGMA wal_checkpoint(PASSIVE)')
                    except sqlite3.Error as e:  # busy: try again later
                        LOG.debug('checkpoint skipped: %s', e)
            finally:
                db.close()
        self._ckpt = threading.Thread(target=run, daemon=True,
                                      name='buffer-checkpoint')
        self._ckpt.start()

    def close(self):
        stop = getattr(self, '_ckpt_stop', None)
        if stop is not None:
            stop.set()
            self._ckpt.join(5)
        try:
            self._db.close()
        except sqlite3.Error:
            pass
