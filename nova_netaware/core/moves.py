"""Moves in flight: where a server counts while Nova moves it.

Nova's ``Instance.host`` changes only when a move completes, so a server
that is being moved is seen at its source until then, and a move that the
scheduler decided but that no Nova record names yet is not seen at all.
This module turns Nova's unfinished Migration records and the plugin's
ledger of its own recent decisions (:mod:`nova_netaware.scheduler.ledger`)
into the placement every check and the MIF's congestion term use.

Decisions (documented in the README, "Moves in flight"):

* **A move with a destination counts at its destination** from the moment
  a record names it until the Migration's status is one of
  :data:`DONE_STATUSES` (the list of Nova's own
  ``migration_get_in_progress_by_host_and_node``), so a cold migration
  or resize counts at its destination until it is confirmed
  (``finished`` / ``confirming`` = VERIFY_RESIZE still count).
* **A live migration also keeps loading its source** until it ends: the
  guest runs and sends from the source until the switch-over, and from the
  destination after it; Nova's records do not say which phase it is in.
  Conservative choice: its flows count at *both* hosts
  (:attr:`InFlight.also_at`) until the status is ``completed``,
  ``failed``, ``cancelled`` or ``error``.
  The price: the peer-side links of its flows are counted twice during the
  move, which can refuse a host near a peer for those seconds.
* A cold migration, resize or evacuation counts at its destination only:
  the guest is stopped on the source while its disk moves (cold), or the
  source host is down (evacuation).
* **A resize being reverted** (``reverting``) counts at its source only;
  ``reverted`` is done.
* ``failed``, ``error``, ``cancelled`` stop counting at once. A status this
  module does not know counts as unfinished (the safe side) and is
  reported in :attr:`InFlight.notes`.
* **Unshelve** creates no Migration: a shelved-offloaded server has no host
  and loads nothing; the scheduler's decision counts through the ledger
  until the instance's host is set.
* The server being scheduled is never counted through its own migration or
  ledger entry.

Ledger entries (``{uuid: (host, node, t)}``, *t* the decision's wall-clock
time) count at their host until Nova's records show the move: the
server's latest Migration row names a destination while unfinished, or
ended (any status in :data:`DONE_STATUSES`) at or after ``t - slack_s``, or
the instance's host is the ledger's host. Those entries are returned in
:attr:`InFlight.settled` for the caller to forget. A ledger entry of a
server whose latest row is an unfinished live migration without a
destination yet also counts at the source.
"""

#: Migration statuses that end a move (as Nova's
#: ``migration_get_in_progress_by_host_and_node``)
DONE_STATUSES = frozenset(('confirmed', 'reverted', 'error', 'failed',
                           'completed', 'cancelled', 'done'))
#: unfinished statuses Nova 34 sets (nova/compute/manager.py,
#: nova/compute/resource_tracker.py, nova/conductor): cold migration and
#: resize, live migration, evacuation
UNFINISHED_STATUSES = frozenset((
    'accepted', 'pre-migrating', 'migrating', 'post-migrating', 'finished',
    'confirming', 'reverting', 'queued', 'preparing', 'running'))
#: counted at the source only
AT_SOURCE_STATUSES = frozenset(('reverting',))
LIVE = 'live-migration'
#: seconds of clock difference tolerated between the scheduler and the
#: process that stamped a Migration row's ``updated_at``
SLACK_S = 10.0


class InFlight(object):
    """The placement with moves in flight applied.

    :ivar placement: ``{uuid: host}``: Nova's placement with each moving
        server at the host it counts at (a new dict).
    :ivar also_at: ``{uuid: source host}`` of live migrations: their flows
        also count at the source.
    :ivar counted: ``[(uuid, host, why)]`` what was applied, *why* being
        ``'migration <status>'`` or ``'ledger'``.
    :ivar settled: uuids whose ledger entry Nova's records now show.
    :ivar notes: problems worth logging once.
    """

    def __init__(self, placement):
        self.placement = placement
        self.also_at = {}
        self.counted = []
        self.settled = set()
        self.notes = []


def _latest(rows):
    """The latest row per instance (``created_at`` then ``id``)."""
    out = {}
    for r in rows:
        u = r['instance_uuid']
        key = (r.get('created_at') or 0, r.get('id') or 0)
        if u not in out or key >= out[u][0]:
            out[u] = (key, r)
    return {u: r for u, (_, r) in out.items()}


def apply(placement, migrations, ledger=None, exclude=None,
          slack_s=SLACK_S):
    """Apply moves in flight to *placement* (see the module docstring).

    :param placement: ``{uuid: host}`` from the instance records (not
        changed).
    :param migrations: Migration rows as dicts with ``instance_uuid``,
        ``status``, ``migration_type``, ``source_compute``,
        ``dest_compute``, ``created_at`` and ``updated_ts`` (the row's
        ``updated_at`` as seconds since the epoch, or ``None``); the
        unfinished ones and any recent ones of ledger servers.
    :param ledger: ``{uuid: (host, node, t)}``.
    :param exclude: the uuid of the server being scheduled.
    :returns: :class:`InFlight`.
    """
    out = InFlight(dict(placement))
    pl = out.placement
    latest = _latest(m for m in migrations
                     if m['instance_uuid'] != exclude)
    for u, m in latest.items():
        status = m['status']
        if status in DONE_STATUSES:
            continue
        if status not in UNFINISHED_STATUSES:
            out.notes.append('migration status %r of server %s is unknown; '
                             'counted as unfinished' % (status, u))
        src, dest = m.get('source_compute'), m.get('dest_compute')
        if status in AT_SOURCE_STATUSES:
            if src:
                pl[u] = src
                out.counted.append((u, src, 'migration %s' % status))
            continue
        if not dest:
            continue        # not scheduled yet: the ledger covers it
        pl[u] = dest
        out.counted.append((u, dest, 'migration %s' % status))
        if m.get('migration_type') == LIVE and src and src != dest:
            out.also_at[u] = src
    for u, (host, _node, t) in (ledger or {}).items():
        if u == exclude:
            continue
        m = latest.get(u)
        if m is not None:
            ended = m['status'] in DONE_STATUSES
            recent = (m.get('updated_ts') is not None and
                      m['updated_ts'] >= t - slack_s)
            if (not ended and (m.get('dest_compute') or
                               m['status'] in AT_SOURCE_STATUSES)) or \
                    (ended and recent):
                out.settled.add(u)
                continue
        if placement.get(u) == host:
            out.settled.add(u)
            continue
        src = placement.get(u)
        pl[u] = host
        out.counted.append((u, host, 'ledger'))
        if (m is not None and m['status'] not in DONE_STATUSES and
                m.get('migration_type') == LIVE and src and src != host):
            out.also_at[u] = src
    return out
