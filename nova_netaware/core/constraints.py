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

Each refusal carries the constraint's name and the numbers.
"""

import numpy as np


def check(view, params):
    """Return ``(passed, reasons)`` for the candidates of a request view.

    ``reasons`` maps a candidate position to a list of messages.
    """
    n = len(view.hosts)
    passed = np.ones(n, dtype=bool)
    reasons = {}

    def refuse(mask, fmt):
        for i in np.flatnonzero(mask & view.known):
            passed[i] = False
            reasons.setdefault(int(i), []).append(fmt(int(i)))

    ceil = params.max_link_utilization
    if params.check_server_capacity:
        if view.free_ram_mb is not None:
            refuse(view.free_ram_mb < view.memory_mb, lambda i: (
                'capacity: free RAM %.0f MB < flavor %d MB' % (
                    view.free_ram_mb[i], view.memory_mb)))
        if view.free_vcpus is not None:
            refuse(view.free_vcpus < view.vcpus, lambda i: (
                'capacity: free vCPUs %.1f < flavor %d' % (
                    view.free_vcpus[i], view.vcpus)))
    refuse(view.up_grows & (view.util_up > ceil + 1e-12), lambda i: (
        'uplink: out %.0f + %.0f Mbit/s on %.0f Mbit/s = %.1f%% > %.1f%%' % (
            view.up_base[i], view.up_add[i], view.cap[i],
            100 * view.util_up[i], 100 * ceil)))
    refuse(view.down_grows & (view.util_down > ceil + 1e-12), lambda i: (
        'uplink: in %.0f + %.0f Mbit/s on %.0f Mbit/s = %.1f%% > %.1f%%' % (
            view.down_base[i], view.down_add[i], view.cap[i],
            100 * view.util_down[i], 100 * ceil)))
    refuse(view.util_path > ceil + 1e-12, lambda i: (
        'path: link %s at %.1f%% > %.1f%% with this server\'s traffic' % (
            view.path_worst(i), 100 * view.util_path[i], 100 * ceil)))
    if view.max_hops_bound:
        refuse(view.peer_hops > view.max_hops_bound, lambda i: (
            'distance: %d hops to a peer > max_hops %d' % (
                view.peer_hops[i], view.max_hops_bound)))
    if view.max_latency_bound:
        refuse(view.peer_latency > view.max_latency_bound, lambda i: (
            'distance: %.1f us to a peer > max_latency_us %.1f' % (
                view.peer_latency[i], view.max_latency_bound)))
    if view.mig is not None:
        mig = view.mig
        refuse(~mig['converges'], lambda i: (
            'migration: does not converge, lambda = D/B = %.0f/%.0f = %.2f%s'
            % (view.dirty_rate, max(view.bandwidth[i], 0.0), mig['lam'][i],
               '' if mig['lam'][i] >= 1 else
               ' (downtime %.0f ms > %d ms after %d rounds)' % (
                   1000 * mig['downtime_s'][i],
                   params.live_migration_downtime_ms,
                   params.max_precopy_rounds))))
        if params.max_migration_time_s:
            refuse(mig['converges'] &
                   (mig['time_s'] > params.max_migration_time_s), lambda i: (
                       'migration: %.0f s predicted > max_migration_time_s '
                       '%.0f (%.0f MB over %.0f Mbit/s)' % (
                           mig['time_s'][i], params.max_migration_time_s,
                           mig['volume'][i] / 8.388608, view.bandwidth[i])))
    return passed, reasons
