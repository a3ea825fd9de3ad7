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
"""

import numpy as np

from nova_netaware.core.topology import UPLINK_HOPS


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
    per_switch = (UPLINK_HOPS + dist[:, ts]) @ rs
    return per_switch[host_switch] - UPLINK_HOPS * host_rate


def migration_cost(volume_mb, hops_from_source):
    """``migration(c) = V(c) * hops(s, c)``, in MB x hop."""
    return volume_mb * hops_from_source


def mif(comm, migration, congestion, total_rate, memory_mb, ref_hops,
        w_comm, w_mig, w_cong):
    """Combine the three terms; see the module docstring for the formula."""
    scale_c = total_rate * ref_hops
    scale_m = memory_mb * ref_hops
    comm_n = comm / scale_c if scale_c > 0 else np.zeros_like(comm)
    mig_n = migration / scale_m if scale_m > 0 else np.zeros_like(migration)
    return w_comm * comm_n + w_mig * mig_n + w_cong * congestion, comm_n, mig_n
