"""What the Nova filter and weigher share for one scheduling request.

* the topology and traffic, re-read only when their files change;
* where the server and its peers are now, read from Nova's instance records
  at decision time (InstanceMapping -> cell -> Instance.host), so no separate
  inventory goes stale after a migration;
* the moves in flight (Nova's unfinished Migration records, read once per
  request through the same cell-aware path) and this plugin's own recent
  decisions (:mod:`.ledger`), applied by :mod:`nova_netaware.core.moves`:
  a moving server counts at its destination (a live migration at its
  source too) for every check and for the MIF;
* one :class:`Evaluation` per request: the filter computes it and the
  weigher reuses it (each host's MIF does not depend on the other
  candidates).

Problems with the data are logged once per distinct problem and reported to
the caller as ``None``; the filter and weigher then behave as documented
(fail-open by default).
"""

import threading
import time

import numpy as np
from oslo_config import cfg
from oslo_log import log as logging

from nova_netaware import conf  # noqa: F401 - registers [netaware]
from nova_netaware.core import engine as core_engine
from nova_netaware.core import request as core_request
from nova_netaware.core.exceptions import DataError
from nova_netaware.loading import data as loading
from nova_netaware.loading import servers
from nova_netaware.utils.log import LogOnce

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


log_once = LogOnce(LOG)


class Runtime(object):
    """Data access of the plugin; :class:`NovaRuntime` is the default."""

    #: read the topology through its binary cache when ``[netaware]
    #: topology_cache`` is set (the scheduler; the offline command, which
    #: may read a packaged example, writes no cache)
    use_topology_cache = True

    def __init__(self):
        self._topo = loading.FileCache(self._load_topology)
        self._source = None
        self._source_name = None
        self._cache_key = None
        self._cache = None

    # -- data ----------------------------------------------------------------
    def _load_topology(self, path, key):
        use_cache = self.use_topology_cache and CONF.netaware.topology_cache
        eng = loading.load_engine(path,
                                  CONF.netaware.default_link_latency_us,
                                  use_cache=use_cache)
        if use_cache:
            LOG.info('nova-netaware loaded topology %s (%s)', path,
                     eng.cache_status)
        return eng

    def engine(self):
        path = CONF.netaware.topology_file
        if not path:
            raise DataError('[netaware] topology_file is not set')
        return self._topo.get(path)

    def traffic(self):
        name = CONF.netaware.traffic_source
        if self._source is None or self._source_name != name:
            self._source = loading.get_traffic_source(name, CONF)
            self._source_name = name
        return loading.read_traffic(self._source, name)

    def lookup(self, spec_obj, uuids):
        """Return ``({uuid: host}, server metadata)``."""
        raise NotImplementedError()

    def in_flight(self, spec_obj, placement, uuid):
        """``(placement, also_at)`` with the moves in flight applied
        (:func:`nova_netaware.core.moves.apply`); none here."""
        return placement, {}

    # -- one request -----------------------------------------------------------
    def evaluate(self, host_states, spec_obj):
        """Evaluation for *host_states*, or ``None`` if data is unusable.

        Results are cached for the request (keyed by the RequestSpec object
        and its server), so that the weigher reuses the filter's work.
        """
        uuid = getattr(spec_obj, 'instance_uuid', None)
        # The cache holds the spec object itself, so that its id cannot be
        # reused by a later request's spec.
        key = (spec_obj, uuid)
        now = time.monotonic()
        cached = None
        if (self._cache_key is not None and self._cache_key[0] is spec_obj
                and self._cache_key[1] == uuid):
            cached = self._cache
        if cached and now - cached[0] < 30:
            ev, pos = cached[1], cached[2]
            if all(h.host in pos for h in host_states):
                return ev, pos
        try:
            result = self._evaluate(host_states, spec_obj, uuid)
        except DataError as e:
            log_once(logging.WARNING, 'nova-netaware cannot use its data: '
                     '%s; acting %s', e, CONF.netaware.on_missing_data)
            return None
        except Exception:
            # Never raise into the scheduler; say what went wrong once.
            if log_once(logging.ERROR, 'nova-netaware failed on server %s'
                        % uuid):
                LOG.exception('nova-netaware failed; acting %s',
                              CONF.netaware.on_missing_data)
            return None
        self._cache_key, self._cache = key, (now,) + result
        return result

    def _evaluate(self, host_states, spec_obj, uuid):
        if not uuid:
            raise DataError('request has no instance uuid')
        eng = self.engine()
        traffic = self.traffic()
        # Every server of the traffic matrix: their flows load the links.
        others = [s for s in traffic.servers if s != uuid]
        placement, metadata = self.lookup(spec_obj, [uuid] + others)
        placement, also_at = self.in_flight(spec_obj, placement, uuid)
        server = server_from_spec(spec_obj, metadata)
        params = core_engine.Params.from_conf(CONF.netaware)
        cands = candidates_from_host_states(host_states)
        ev = eng.evaluate(traffic, placement, server, cands, params,
                          also_at=also_at)
        for note in ev.notes:
            log_once(logging.WARNING, 'nova-netaware: %s', note)
        pos = {h: i for i, h in enumerate(ev.hosts)}
        return ev, pos


def is_move(spec_obj):
    """True for cold/live migration, evacuate and unshelve: a move has
    ``requested_destination.cell`` set; a plain boot has not."""
    try:
        dest = spec_obj.requested_destination
    except Exception:
        return False
    return dest is not None and 'cell' in dest


def server_from_spec(spec_obj, metadata):
    """The core Server of the request (:func:`servers.server_model` on the
    flavor of *spec_obj* and the server's *metadata*)."""
    flavor = getattr(spec_obj, 'flavor', None)
    extra = (getattr(flavor, 'extra_specs', None) or {}) if flavor else {}
    return servers.server_model(
        spec_obj.instance_uuid, getattr(flavor, 'memory_mb', 0),
        getattr(flavor, 'vcpus', 0), extra, metadata,
        is_move=is_move(spec_obj), log_once=log_once)


def candidate_from_host_state(hs):
    """The core Candidate of one HostState
    (:func:`candidates_from_host_states`)."""
    c = candidates_from_host_states([hs])
    return core_engine.Candidate(
        c.hosts[0],
        None if c.free_ram_mb is None else float(c.free_ram_mb[0]),
        None if c.free_vcpus is None else float(c.free_vcpus[0]))


def _allocatable(total, used, ratio):
    """Free capacity with allocation ratios: ``total x ratio - used``
    (Nova's RAM and CPU filters), per host; ``None`` unless every host
    reports its ratio and total (a host that does not is not checked, so
    none is)."""
    if not (all(ratio) and all(total)):
        return None
    return (np.array(total, dtype=np.float64) *
            np.array(ratio, dtype=np.float64) - np.array(used,
                                                         dtype=np.float64))


def candidates_from_host_states(host_states):
    """The candidates (:class:`~nova_netaware.core.request.Candidates`) of
    Nova's HostStates: host names, and free RAM and vCPUs by the
    allocation ratios."""
    # one list per attribute: no object per host (fewer collections of
    # Python's cyclic garbage collector on a scheduler's large heap)
    names = [hs.host for hs in host_states]
    if not names:
        return core_request.Candidates([])
    ram_ratio = [getattr(hs, 'ram_allocation_ratio', None)
                 for hs in host_states]
    ram_total = [hs.total_usable_ram_mb for hs in host_states]
    ram_free = [hs.free_ram_mb for hs in host_states]
    cpu_ratio = [getattr(hs, 'cpu_allocation_ratio', None)
                 for hs in host_states]
    cpu_total = [hs.vcpus_total for hs in host_states]
    cpu_used = [hs.vcpus_used for hs in host_states]
    free_ram = None
    if all(ram_ratio) and all(ram_total):
        # used RAM = total - free, exactly (integers below 2**53)
        free_ram = _allocatable(
            ram_total, np.subtract(ram_total, ram_free, dtype=np.float64),
            ram_ratio)
    return core_request.Candidates(
        names, free_ram, _allocatable(cpu_total, cpu_used, cpu_ratio))


def wants_ledger(spec_obj):
    """Whether a decision for *spec_obj* goes to the ledger: the requests
    the filter and weigher act on."""
    return bool(CONF.netaware.apply_to_boots or is_move(spec_obj))


class NovaRuntime(Runtime):
    """Reads the placement of servers from Nova's databases.

    Decisions are serialised within the process (:meth:`begin`,
    :meth:`decided`): from the moment the filter or the weigher starts on a
    move until Nova consumes the host it claimed in Placement, another
    move's evaluation waits, at most ``[netaware] decision_wait`` seconds,
    so that it sees the first one's choice in the ledger. Without it,
    requests interleave during the Placement claim (measured in the
    functional harness: three concurrent moves all passed the same full
    uplink).
    """

    def __init__(self):
        super().__init__()
        self._ledger = None
        self._gate = threading.Condition()
        self._pending = {}          # uuid -> deadline (monotonic)
        # id(spec_obj) -> (spec_obj, uuid, monotonic time), kept 60 s
        self._consumed = {}

    # -- one decision at a time ------------------------------------------
    def begin(self, spec_obj):
        """Wait (bounded) until no other move is between its evaluation
        and Nova's choice, then mark this one pending; with a shared
        ledger, then also take the decision turn of all scheduler
        processes (:meth:`.ledger.Ledger.hold`), waiting for the rest of
        the same bound."""
        if not wants_ledger(spec_obj):
            return
        uuid = getattr(spec_obj, 'instance_uuid', None)
        wait_s = CONF.netaware.decision_wait
        if not uuid or wait_s <= 0:
            return
        with self._gate:
            now = time.monotonic()
            if uuid in self._pending:
                return
            if self._was_consumed(spec_obj, uuid):
                return      # Nova re-weighs for alternates after consuming
            deadline = now + wait_s
            while True:
                now = time.monotonic()
                expired = [u for u, d in self._pending.items() if d <= now]
                for u in expired:
                    del self._pending[u]    # never consumed: given up
                if expired:
                    self.ledger().let_go()
                if not self._pending or now >= deadline:
                    break
                self._gate.wait(min(self._pending.values()) - now)
            if self._pending:
                log_once(logging.WARNING, 'nova-netaware: a move waited '
                         '%.1f s ([netaware] decision_wait) for another '
                         'one\'s decision and went on', wait_s)
            self._pending[uuid] = time.monotonic() + wait_s
        # the other scheduler processes' turn; outside the gate, so that
        # this process's decided() calls are not held up meanwhile
        t = time.monotonic()
        held = self.ledger().hold(max(deadline - t, 0.0))
        if held is False:
            log_once(logging.WARNING, 'nova-netaware: a move waited %.1f s '
                     '([netaware] decision_wait) for another scheduler '
                     'process\'s decision and went on', wait_s)
        elif held:
            LOG.debug('nova-netaware: server %s took the decision turn '
                      'after %.3f s', uuid, time.monotonic() - t)

    def _was_consumed(self, spec_obj, uuid):
        """Whether Nova consumed a host for this very request (the same
        RequestSpec object) and server already: in a multi-create, Nova
        filters and weighs again for alternates after consuming."""
        seen = self._consumed.get(id(spec_obj))
        return seen is not None and seen[0] is spec_obj and seen[1] == uuid

    def end(self, uuid):
        """The pending decision of *uuid* is over (no host passed)."""
        with self._gate:
            if self._pending.pop(uuid, None) is not None:
                self.ledger().let_go()
                self._gate.notify_all()

    def decided(self, spec_obj, host, node):
        """Nova consumed *host* for the request: record it in the ledger
        and let the next move's evaluation go on."""
        uuid = getattr(spec_obj, 'instance_uuid', None)
        if not uuid:
            return
        wanted = wants_ledger(spec_obj)
        try:
            if wanted:
                self.ledger().record(uuid, host, node)
        finally:
            with self._gate:
                if wanted:
                    now = time.monotonic()
                    self._consumed = {k: v for k, v in
                                      self._consumed.items()
                                      if now - v[2] < 60}
                    self._consumed[id(spec_obj)] = (spec_obj, uuid, now)
                if self._pending.pop(uuid, None) is not None:
                    self.ledger().let_go()
                    self._gate.notify_all()

    def ledger(self):
        """This process's ledger (``[netaware] ledger_backend``, loaded
        once)."""
        if self._ledger is None:
            from nova_netaware.scheduler import ledger
            self._ledger = ledger.load()
        return self._ledger

    def lookup(self, spec_obj, uuids):
        from nova_netaware.scheduler import placement_map
        return placement_map.for_runtime(self).lookup(
            placement_map.admin_context(spec_obj), uuids)

    def in_flight(self, spec_obj, placement, uuid):
        """Unfinished Migration rows (one query per cell) and the ledger,
        applied to *placement*; ledger entries Nova's records now show are
        forgotten."""
        from nova_netaware.core import moves
        from nova_netaware.scheduler import placement_map
        led = self.ledger()
        entries = led.entries()
        ctx = placement_map.admin_context(spec_obj)
        since = (min(e[2] for e in entries.values()) - moves.SLACK_S
                 if entries else None)
        rows = placement_map.in_flight_migrations(
            ctx, placement_map.for_runtime(self).cells(ctx), entries, since)
        result = moves.apply(placement, rows, entries, exclude=uuid)
        if result.settled:
            led.forget(result.settled)
        for note in result.notes:
            log_once(logging.WARNING, 'nova-netaware: %s', note)
        if result.counted:
            LOG.debug('nova-netaware: moves in flight counted for server '
                      '%s: %s', uuid, ', '.join(
                          '%s at %s (%s)' % c for c in result.counted))
        return result.placement, result.also_at


_runtime = None


def get_runtime():
    global _runtime
    if _runtime is None:
        _runtime = NovaRuntime()
    return _runtime


def install_ledger_hook():
    """Record Nova's choices in the current runtime's ledger and end the
    runtime's pending decision (:func:`.ledger.install_hook`); called when
    Nova loads the filter or the weigher."""
    from nova_netaware.scheduler import ledger

    def on_consume(spec_obj, host_state):
        rt = get_runtime()
        if hasattr(rt, 'decided'):
            rt.decided(spec_obj, host_state.host, host_state.nodename)
    hooked = ledger.install_hook(on_consume)
    rt = get_runtime()
    if hooked and hasattr(rt, 'ledger'):
        # connect to a shared store now (again in each forked worker),
        # not on the first request
        getattr(rt.ledger(), 'warm', lambda: None)()
    return hooked


def set_runtime(runtime):
    """Replace the data access (the CLI and the benchmark use
    :class:`nova_netaware.cmd.sim.FixedPlacementRuntime`)."""
    global _runtime
    _runtime = runtime
