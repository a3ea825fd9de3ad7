"""Where servers are, kept current by incremental reads of Nova's cells.

The filter and the weigher need ``{server uuid: host}`` for every server of
the traffic matrix on every request. Reading all of them each time costs a
query as long as the matrix per cell and grows with the cloud.
This map reads them once, then on each request asks every cell only for the
instance rows changed since its last read, as Nova's own ``changes-since``
does::

    SELECT id, uuid, host, node, vm_state, deleted, hidden, updated_at
      FROM instances WHERE updated_at >= :watermark OR id > :last_id

* ``updated_at`` is set by every ``Instance.save()`` (a move's new host, a
  shelve offload, the ``vm_state = deleted`` save that precedes every
  delete), whichever process made it: another nova-scheduler, a conductor,
  a compute. ``id > last_id`` catches rows inserted with a host.
* The watermark is the database server's clock at the start of the previous
  read, minus :data:`OVERLAP_S`, so that rows committed late or stamped by a
  writer whose clock lags are read again rather than missed.
* A server is placed iff its row has ``deleted = 0``, is not hidden (the
  other cell's copy during a cross-cell resize) and its ``vm_state`` is
  neither ``deleted`` nor ``soft-delete``, and it has a host.
* Everything is read again at start (a new map), after any error, when the
  traffic matrix names servers not read yet (only those), and every
  :data:`FULL_EVERY_S` seconds, which bounds what a clock skew larger than
  the overlap could hide.

Memory holds only the servers asked for (the traffic matrix), not the cell.
Nova indexes ``instances (updated_at, project_id)`` and the primary key, so
the delta query is a range read on each (MariaDB ``index_merge``), not a
scan of the table.
"""

import threading
import time

import sqlalchemy as sa

from nova_netaware.core import moves

#: seconds re-read before the previous read's database clock
OVERLAP_S = 10.0
#: rows inserted this many ids below the last seen id are read again
ID_OVERLAP = 100
#: seconds between full reads of the servers asked for
FULL_EVERY_S = 600.0
#: seconds the list of cells is cached (Nova's HostManager keeps it forever)
CELLS_TTL_S = 60.0
#: a uuid list is read in chunks of this many
CHUNK = 5000
#: the map drops servers no longer asked for when it holds this many times
#: (plus 1000) the servers of the current request
PRUNE_FACTOR = 2
GONE_STATES = ('deleted', 'soft-delete')
#: Migration statuses that end a move (defined in core.moves)
DONE_STATUSES = tuple(sorted(moves.DONE_STATUSES))


def _models():
    from nova.db.main import models
    return models.Instance.__table__, models.Migration.__table__


def _session(cctx):
    # Looked up through the module on each call: Nova's test fixtures
    # replace get_context_manager.
    from nova.db.main import api as main_db_api
    return main_db_api.get_context_manager(cctx).reader.using(cctx)


def admin_context(spec_obj=None):
    """The request's context elevated, or a new admin context."""
    from nova import context as nova_context
    ctx = getattr(spec_obj, '_context', None)
    if ctx is None:
        ctx = nova_context.get_admin_context()
    return ctx.elevated()


def db_clock(session, table):
    """``(now in UTC, max(id) of table)`` from the database server."""
    dialect = session.bind.dialect.name
    if dialect == 'mysql':
        now = sa.func.utc_timestamp()
    elif dialect == 'postgresql':
        now = sa.text("timezone('utc', now())")
    else:
        now = sa.func.datetime('now')
    row = session.execute(sa.select(now, sa.func.max(table.c.id))).one()
    clock = row[0]
    if isinstance(clock, str):      # SQLite returns text
        import datetime
        clock = datetime.datetime.fromisoformat(clock)
    return clock, row[1] or 0


def _columns(inst):
    return (inst.c.id, inst.c.uuid, inst.c.host, inst.c.node,
            inst.c.vm_state, inst.c.deleted, inst.c.hidden,
            inst.c.updated_at)


def changed_rows_query(inst, since, last_id):
    """The delta query (see the module docstring)."""
    return sa.select(*_columns(inst)).where(
        sa.or_(inst.c.updated_at >= since, inst.c.id > last_id))


def next_entry(row, cell_uuid, host, cell):
    """``(host, cell)`` of a server after its row *row* in *cell_uuid*.

    *host* and *cell* are what the map held (``None`` if nothing). A
    visible row (``deleted = 0``, not hidden, ``vm_state`` not in
    :data:`GONE_STATES`) places the server at its host (``None`` when it has
    none, e.g. shelved offloaded). A row that is gone removes the server only
    from the cell that held it: in a cross-cell move the other cell's visible
    row stays.
    """
    if not (row.deleted or row.hidden or row.vm_state in GONE_STATES):
        return (row.host or None), cell_uuid
    if cell is None or cell == cell_uuid:
        return None, None
    return host, cell


class PlacementMap(object):
    """``{uuid: host}`` of the servers asked for, current on each request.

    One per scheduler process (the runtime singleton holds it), shared by
    the filter and the weigher. :meth:`lookup` returns a dict that is never
    changed afterwards: a change builds a new one.
    """

    def __init__(self, overlap_s=None, full_every_s=None, id_overlap=None):
        self.overlap_s = OVERLAP_S if overlap_s is None else overlap_s
        self.full_every_s = (FULL_EVERY_S if full_every_s is None
                             else full_every_s)
        self.id_overlap = ID_OVERLAP if id_overlap is None else id_overlap
        self._lock = threading.Lock()
        self._cells = None
        self._cells_at = 0.0
        self.full_reads = 0
        self.delta_rows = 0
        self._reset()

    def _reset(self):
        self._hosts = {}      # uuid -> host (placed servers only)
        self._cell_of = {}    # uuid -> cell uuid of its visible row
        self._watched = set()
        self._marks = {}      # cell uuid -> (clock, last id)
        self._last_uuids = None
        self._full_at = None

    # -- cells -------------------------------------------------------------
    def cells(self, ctx):
        """Cell mappings except cell0, cached for :data:`CELLS_TTL_S`."""
        from nova import objects
        now = time.monotonic()
        if self._cells is None or now - self._cells_at > CELLS_TTL_S:
            self._cells = [c for c in objects.CellMappingList.get_all(ctx)
                           if not c.is_cell0()]
            self._cells_at = now
        return self._cells

    # -- one request -------------------------------------------------------
    def lookup(self, ctx, uuids):
        """``({uuid: host}, metadata of uuids[0])`` as Nova has them now."""
        with self._lock:
            try:
                self._refresh(ctx, uuids)
                return self._hosts, self._metadata(ctx, uuids[0])
            except Exception:
                # read everything again next time; the runtime logs it and
                # acts as [netaware] on_missing_data says, as before
                self._reset()
                self._cells = None
                raise

    def _refresh(self, ctx, uuids):
        now = time.monotonic()
        if self._full_at is None or now - self._full_at > self.full_every_s:
            self._full(ctx, set(uuids))
            self._last_uuids = uuids
            return
        if uuids != self._last_uuids:
            want = set(uuids)
            if len(self._watched) > PRUNE_FACTOR * len(want) + 1000:
                self._full(ctx, want)
                self._last_uuids = uuids
                return
            new = want - self._watched
            if new:
                self._read_uuids(ctx, new)
            self._last_uuids = uuids
        self._delta(ctx)

    def _full(self, ctx, want):
        self._reset()
        self.full_reads += 1
        self._full_at = time.monotonic()
        self._read_uuids(ctx, want)

    def _read_uuids(self, ctx, want):
        """Read *want* from every cell; their rows become the truth."""
        from nova import context as nova_context
        inst, _ = _models()
        want = sorted(want)
        hosts, cell_of = dict(self._hosts), dict(self._cell_of)
        for u in want:
            hosts.pop(u, None)
            cell_of.pop(u, None)
        for cell in self.cells(ctx):
            with nova_context.target_cell(ctx, cell) as cctx:
                with _session(cctx) as session:
                    if cell.uuid not in self._marks:
                        self._marks[cell.uuid] = self._mark(
                            session, *db_clock(session, inst))
                    for i in range(0, len(want), CHUNK):
                        q = sa.select(*_columns(inst)).where(
                            inst.c.uuid.in_(want[i:i + CHUNK]))
                        for row in session.execute(q):
                            self._apply(row, cell.uuid, hosts, cell_of)
        self._watched.update(want)
        self._hosts, self._cell_of = hosts, cell_of

    def _mark(self, session, clock, last_id):
        import datetime
        return (clock - datetime.timedelta(seconds=self.overlap_s),
                max(0, last_id - self.id_overlap))

    def _delta(self, ctx):
        """Apply the rows changed since the last read, cell by cell."""
        from nova import context as nova_context
        inst, _ = _models()
        changed = []
        for cell in self.cells(ctx):
            with nova_context.target_cell(ctx, cell) as cctx:
                with _session(cctx) as session:
                    mark = self._mark(session, *db_clock(session, inst))
                    since, last_id = self._marks.get(cell.uuid, mark)
                    rows = session.execute(
                        changed_rows_query(inst, since, last_id)).all()
                    self._marks[cell.uuid] = mark
            self.delta_rows += len(rows)
            changed.extend((r, cell.uuid) for r in rows
                           if r.uuid in self._watched)
        if not changed:
            return
        hosts, cell_of = self._hosts, self._cell_of
        copied = False
        for row, cell_uuid in changed:
            u = row.uuid
            before = (hosts.get(u), cell_of.get(u))
            after = next_entry(row, cell_uuid, *before)
            if after == before:
                continue
            if not copied:      # the returned dicts are never changed
                hosts, cell_of = dict(hosts), dict(cell_of)
                copied = True
            self._set(u, after, hosts, cell_of)
        self._hosts, self._cell_of = hosts, cell_of

    @staticmethod
    def _set(u, entry, hosts, cell_of):
        host, cell_uuid = entry
        for d, v in ((hosts, host), (cell_of, cell_uuid)):
            if v is None:
                d.pop(u, None)
            else:
                d[u] = v

    def _apply(self, row, cell_uuid, hosts, cell_of):
        u = row.uuid
        self._set(u, next_entry(row, cell_uuid, hosts.get(u), cell_of.get(u)),
                  hosts, cell_of)

    def _metadata(self, ctx, uuid):
        """The server's own metadata (its netaware:* overrides)."""
        from nova import context as nova_context
        from nova.db.main import models
        cell_uuid = self._cell_of.get(uuid)
        cell = next((c for c in self.cells(ctx) if c.uuid == cell_uuid),
                    None)
        if cell is None:
            return {}
        md = models.InstanceMetadata.__table__
        with nova_context.target_cell(ctx, cell) as cctx:
            with _session(cctx) as session:
                rows = session.execute(sa.select(md.c.key, md.c.value).where(
                    md.c.instance_uuid == uuid, md.c.deleted == 0))
                return {k: v for k, v in rows}


def for_runtime(runtime):
    """The map of *runtime* (one per scheduler process), created once."""
    pm = getattr(runtime, '_placement_map', None)
    if pm is None:
        pm = runtime._placement_map = PlacementMap()
    return pm


def in_flight_migrations(ctx, cells, ledger_uuids=(), since=None):
    """Moves in flight, one query per cell: a list of dicts.

    Each has the Migration's id, uuid, instance_uuid, migration_type,
    status, source_compute, dest_compute, source_node, dest_node,
    created_at, updated_ts (``updated_at`` in seconds since the epoch, or
    ``None``) and the cell uuid. Returned: every unfinished row (status not
    in :data:`DONE_STATUSES`) and, for the servers of *ledger_uuids*, every
    row updated at or after *since* (seconds since the epoch), finished or
    not, so that :func:`nova_netaware.core.moves.apply` sees a move of the
    ledger end.
    """
    import calendar
    from nova import context as nova_context
    _, mig = _models()
    cols = (mig.c.id, mig.c.uuid, mig.c.instance_uuid, mig.c.migration_type,
            mig.c.status, mig.c.source_compute, mig.c.dest_compute,
            mig.c.source_node, mig.c.dest_node, mig.c.created_at,
            mig.c.updated_at)
    cond = mig.c.status.not_in(DONE_STATUSES)
    ledger_uuids = sorted(ledger_uuids)
    if ledger_uuids:
        import datetime
        recent = mig.c.instance_uuid.in_(ledger_uuids)
        if since is not None:
            recent = sa.and_(recent, mig.c.updated_at >= datetime.datetime.
                             fromtimestamp(since, datetime.timezone.utc).
                             replace(tzinfo=None))
        cond = sa.or_(cond, recent)
    q = sa.select(*cols).where(mig.c.deleted == 0, cond)
    out = []
    for cell in cells:
        with nova_context.target_cell(ctx, cell) as cctx:
            with _session(cctx) as session:
                for row in session.execute(q):
                    d = dict(row._mapping)
                    up = d.pop('updated_at')
                    d['updated_ts'] = (calendar.timegm(up.timetuple()) +
                                       up.microsecond / 1e6
                                       if up is not None else None)
                    d['cell_uuid'] = cell.uuid
                    out.append(d)
    return out
