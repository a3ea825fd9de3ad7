"""Hard constraints: a candidate host meets all of them or is refused.

1. **Server capacity** (``check_server_capacity``): free RAM and vCPUs,
   with the host's allocation ratios, hold the flavor.
2. **Uplink bandwidth**: after the move the candidate's uplink carries its
   current load plus the server's off-host traffic,
   ``(load + traffic) / capacity <= max_link_utilization`` in each direction.
3. **Path bandwidth**: every link on any shortest path between the
   candidate's switch and each peer's switch, and each peer's own uplink,
   stays within ``max_link_utilization`` with the server's traffic to that
   peer switch added (per-flow ECMP may put a flow on any of those paths).
   Only links whose load the move increases are held against a host: a
   link on a shortest path from the source switch already carries this
   traffic, and a host's uplink gains nothing when all the traffic stays on
   the host. A peer's uplink gains traffic only when the server leaves the
   peer's host, i.e. the source host's uplink.
4. **Distance to peers**: ``hops(c, host(p)) <= max_hops`` and path latency
   ``<= max_latency_us`` for every peer (0 disables a bound).
5. **Migration feasibility**: the pre-copy model over the bottleneck free
   bandwidth between source and candidate converges (``lambda = D/B < 1``,
   downtime within ``live_migration_downtime_ms`` after at most
   ``max_precopy_rounds``) and takes at most ``max_migration_time_s``.

6. **Data** (``on_missing_data = fail-closed``): every candidate of a move
   whose source host is unknown, and every candidate missing from the
   topology, is refused.

Each refusal carries the constraint's name and the numbers. Each constraint
is one function of the typed :class:`~.state.RequestState` that yields
``(mask, message)`` pairs: candidates in *mask* are refused, with
``message(i)``; :data:`CONSTRAINTS` lists them in the order their messages
appear. A new constraint is one more such function (and its numbers, if
new, one more field of the state).
"""

import numpy as np

#: tolerance of the utilisation ceilings
_EPS = 1e-12


def capacity(state):
    """1. Free RAM and vCPUs hold the flavor."""
    if not state.params.check_server_capacity:
        return
    srv = state.server
    if state.free_ram_mb is not None:
        free = state.free_ram_mb
        yield free < srv.memory_mb, lambda i: (
            'capacity: free RAM %.0f MB < flavor %d MB' % (
                free[i], srv.memory_mb))
    if state.free_vcpus is not None:
        free_cpu = state.free_vcpus
        yield free_cpu < srv.vcpus, lambda i: (
            'capacity: free vCPUs %.1f < flavor %d' % (
                free_cpu[i], srv.vcpus))


def uplink(state):
    """2. The candidate's uplink, in each direction the move adds to."""
    u, ceil = state.uplinks, state.params.max_link_utilization
    yield u.up_grows & (u.util_up > ceil + _EPS), lambda i: (
        'uplink: out %.0f + %.0f Mbit/s on %.0f Mbit/s = %.1f%% > %.1f%%' % (
            u.up_base[i], u.up_added[i], u.capacity[i],
            100 * u.util_up[i], 100 * ceil))
    yield u.down_grows & (u.util_down > ceil + _EPS), lambda i: (
        'uplink: in %.0f + %.0f Mbit/s on %.0f Mbit/s = %.1f%% > %.1f%%' % (
            u.down_base[i], u.down_added[i], u.capacity[i],
            100 * u.util_down[i], 100 * ceil))


def path(state):
    """3. Links on the paths to the peers whose load the move increases."""
    util, ceil = state.paths.check_util, state.params.max_link_utilization
    yield util > ceil + _EPS, lambda i: (
        'path: link %s at %.1f%% > %.1f%% with this server\'s traffic' % (
            worst_link(state, i), 100 * util[i], 100 * ceil))


def worst_link(state, i):
    """Name the busiest growing link on candidate *i*'s paths."""
    p, names = state.paths, state.topology.switch_names
    if (p.peer_paths is not None and
            p.fabric_check[i] >= p.source_uplink_util[i]):
        sw = state.switch[i]
        j = p.peer_paths.worst(int(sw))
        return 'between %s and %s' % (names[sw],
                                      names[state.peers.switches[j]])
    return 'uplink of source host %s (peers stay there)' % state.source_name


def distance(state):
    """4. Hops and latency to the farthest peer (0 disables a bound)."""
    d = state.distances
    if d.max_hops:
        yield d.peer_hops > d.max_hops, lambda i: (
            'distance: %d hops to a peer > max_hops %d' % (
                d.peer_hops[i], d.max_hops))
    if d.max_latency_us:
        yield d.peer_latency_us > d.max_latency_us, lambda i: (
            'distance: %.1f us to a peer > max_latency_us %.1f' % (
                d.peer_latency_us[i], d.max_latency_us))


def migration(state):
    """5. The pre-copy migration converges, within the time limit."""
    m, params = state.migration, state.params
    pc = m.precopy
    if pc is None:
        return
    yield ~pc['converges'], lambda i: (
        'migration: does not converge, lambda = D/B = %.0f/%.0f = %.2f%s'
        % (m.dirty_rate_mbps, max(m.bandwidth[i], 0.0), pc['lam'][i],
           '' if pc['lam'][i] >= 1 else
           ' (downtime %.0f ms > %d ms after %d rounds)' % (
               1000 * pc['downtime_s'][i],
               params.live_migration_downtime_ms,
               params.max_precopy_rounds)))
    if params.max_migration_time_s:
        yield pc['converges'] & (pc['time_s'] > params.max_migration_time_s), \
            lambda i: (
                'migration: %.0f s predicted > max_migration_time_s '
                '%.0f (%.0f MB over %.0f Mbit/s)' % (
                    pc['time_s'][i], params.max_migration_time_s,
                    m.volume_mb[i], m.bandwidth[i]))


#: the network constraints, in the order of their messages; they judge
#: only the candidates in the topology
CONSTRAINTS = (capacity, uplink, path, distance, migration)


def check(state):
    """Return ``(passed, reasons)`` for the candidates of a request.

    ``passed`` is a boolean array in candidate order; ``reasons`` maps a
    candidate host name to its list of messages.
    """
    passed = np.ones(len(state.hosts), dtype=bool)
    by_position = {}
    for constraint in CONSTRAINTS:
        for mask, message in constraint(state):
            for i in np.flatnonzero(mask & state.known):
                passed[i] = False
                by_position.setdefault(int(i), []).append(message(int(i)))
    reasons = {state.hosts[i]: r for i, r in by_position.items()}
    missing_data(state, passed, reasons)
    return passed, reasons


def missing_data(state, passed, reasons):
    """6. With ``fail_closed``, refuse on a move whose source host is
    unknown, and refuse candidates missing from the topology (in place)."""
    if not state.params.fail_closed:
        return
    if state.server.is_move and state.source is None:
        passed[:] = False
        for h in state.hosts:
            reasons.setdefault(h, []).append('data: %s' % state.source_note)
    for i in np.flatnonzero(~state.known):
        h = state.hosts[i]
        passed[i] = False
        reasons.setdefault(h, []).append(
            'data: host %s is not in the topology' % h)
