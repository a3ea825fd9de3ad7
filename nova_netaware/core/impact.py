"""The migration impact factor (MIF) of moving a server to a candidate host.

For server *v* with peers *p* (traffic rates ``r_p = out_p + in_p`` Mbit/s),
candidate host *c* and source host *s*::

    comm(c)       = sum_p r_p * hops(c, host(p))           [Mbit/s x hop]
    migration(c)  = V(c) * hops(s, c)                      [MB x hop]
    congestion(c) = max utilisation of the links the server's traffic
                    would use after the move                [fraction]

    MIF(c) = w_comm * comm(c) / (R * H)
           + w_mig  * migration(c) / (M * H)
           + w_cong * congestion(c)

with ``R = sum_p r_p``, ``M`` the server's memory (MB), ``H`` the longest
host-to-host distance of the topology and ``V(c)`` the pre-copy volume
``M (1 - lambda^(n+1)) / (1 - lambda)`` over the bottleneck bandwidth
between *s* and *c* (:func:`nova_netaware.core.migration.precopy`). Dividing
by ``R * H`` and ``M * H`` makes both cost terms dimensionless (0 for a move
that costs nothing, 1 for all traffic crossing the whole network, or memory
copied once across it), so the weights ``w_*`` (options
``communication_weight``, ``migration_weight``, ``congestion_weight``) trade
comparable numbers. The division does not depend on *c*, so each term alone
ranks hosts exactly as its raw form does.

Sources: communication cost as traffic x distance follows Meng et al.,
"Improving the scalability of data center networks with traffic-aware
virtual machine placement", INFOCOM'10; the migration cost follows the
pre-copy model of Liu et al. (HPDC'11); congestion as maximum link
utilisation is the usual traffic-engineering objective (Fortz & Thorup,
INFOCOM'00). Lower MIF is better.

:func:`terms` computes all three terms and the MIF of a request from its
:class:`~.state.RequestState`; :func:`weighted_terms` gives the three
weighted summands of the MIF for display (the weigher's log line, the
``explain`` command).
"""

import dataclasses

import numpy as np

from nova_netaware.core.topology import remote_host_hops
from nova_netaware.core.topology import UPLINK_HOPS


@dataclasses.dataclass
class MifTerms:
    """The MIF of each candidate and its terms, in candidate order.

    Candidates missing from the topology get the worst MIF of the others
    and 0 in every term.
    """
    comm: np.ndarray            # Mbit/s x hop
    comm_n: np.ndarray          # comm / (R H)
    migration: np.ndarray       # MB x hop
    migration_n: np.ndarray     # migration / (M H)
    congestion: np.ndarray      # fraction
    mif: np.ndarray
    volume_mb: np.ndarray       # V(c), MiB


def communication_cost(switch_rate, host_rate, dist, host_switch):
    """``comm(c) = sum_p r_p * hops(c, host(p))`` for every host *c*.

    Hops between different hosts are ``2 + dist(sw(c), sw(p))`` and 0 on the
    same host, so with ``S_t`` the rate to peers behind switch *t* and
    ``H_c`` the rate to peers on host *c*::

        comm(c) = sum_t S_t * (2 + dist(sw(c), t)) - 2 * H_c

    which costs O(switches x peer switches + hosts), not hosts x peers.

    :param switch_rate: ``{switch index: S_t}``
    :param host_rate: array of ``H_c`` per candidate
    :param dist: switch hop matrix
    :param host_switch: switch index of each candidate
    """
    if not switch_rate:
        return np.zeros(len(host_switch))
    ts = np.fromiter(switch_rate.keys(), dtype=np.int64)
    rs = np.fromiter(switch_rate.values(), dtype=np.float64)
    per_switch = remote_host_hops(dist, slice(None), ts) @ rs
    return per_switch[host_switch] - UPLINK_HOPS * host_rate


def migration_cost(volume_mb, hops_from_source):
    """``migration(c) = V(c) * hops(s, c)``, in MB x hop."""
    return volume_mb * hops_from_source


def congestion(state):
    """``congestion(c)``: the busiest link the server's traffic would use.

    The candidate's uplink in each direction the server's traffic leaves or
    enters the host by, every fabric link on its paths to the peer switches
    and the peers' uplinks, with this traffic on them.
    """
    u, p = state.uplinks, state.paths
    return np.maximum.reduce([
        np.where(u.up_grows, u.util_up, 0.0),
        np.where(u.down_grows, u.util_down, 0.0),
        np.maximum(p.fabric_util, p.peer_uplink_util)])


def _weigh(comm_n, mig_n, cong, w_comm, w_mig, w_cong):
    """The weighted summands ``(w_comm comm_n, w_mig mig_n, w_cong cong)``."""
    return w_comm * comm_n, w_mig * mig_n, w_cong * cong


def mif(comm, migration, congestion, total_rate, memory_mb, ref_hops,
        w_comm, w_mig, w_cong):
    """Combine the three terms; see the module docstring for the formula.

    :returns: ``(mif, comm_n, migration_n)``
    """
    scale_c = total_rate * ref_hops
    scale_m = memory_mb * ref_hops
    comm_n = comm / scale_c if scale_c > 0 else np.zeros_like(comm)
    mig_n = migration / scale_m if scale_m > 0 else np.zeros_like(migration)
    c, m, g = _weigh(comm_n, mig_n, congestion, w_comm, w_mig, w_cong)
    return c + m + g, comm_n, mig_n


def weighted_terms(ev, weights, positions=None):
    """The three weighted summands of the MIF of an evaluation.

    :param ev: an :class:`~.request.Evaluation` (or anything with the
        arrays ``comm_n``, ``migration_n`` and ``congestion``)
    :param weights: anything with ``communication_weight``,
        ``migration_weight`` and ``congestion_weight`` (:class:`~.request.
        Params`, ``CONF.netaware``)
    :param positions: candidate positions (default: all)
    :returns: arrays ``(w_comm x comm_n, w_mig x migration_n,
        w_cong x congestion)``; for a candidate in the topology they add up
        to its MIF.
    """
    at = slice(None) if positions is None else positions
    return _weigh(ev.comm_n[at], ev.migration_n[at], ev.congestion[at],
                  weights.communication_weight, weights.migration_weight,
                  weights.congestion_weight)


def terms(state):
    """All three terms and the MIF of every candidate of a request.

    :param state: the request's :class:`~.state.RequestState`
    :returns: :class:`MifTerms`
    """
    topo, peers, params = state.topology, state.peers, state.params
    rate = peers.out_per_host + peers.in_per_host
    switch_rate = {int(t): peers.out_by_switch[t] + peers.in_by_switch[t]
                   for t in peers.switches}
    comm = communication_cost(switch_rate, rate[state.host], topo.dist,
                              state.switch)
    mig = migration_cost(state.migration.volume_mb,
                         state.migration.hops_from_source)
    cong = congestion(state)
    total, comm_n, mig_n = mif(
        comm, mig, cong, peers.out_total + peers.in_total,
        state.server.memory_mb, topo.max_host_hops,
        params.communication_weight, params.migration_weight,
        params.congestion_weight)
    t = MifTerms(comm, comm_n, mig, mig_n, cong, total,
                 state.migration.volume_mb)
    known = state.known
    if (~known).any():
        worst = t.mif[known].max() if known.any() else 0.0
        t.mif = np.where(known, t.mif, worst)
        for name in ('comm', 'comm_n', 'migration', 'migration_n',
                     'congestion', 'volume_mb'):
            setattr(t, name, np.where(known, getattr(t, name), 0.0))
    return t
