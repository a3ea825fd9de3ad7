"""Rebalance advisor: which servers to move, and where.

1. **Hot spots** (:mod:`.hotspots`): hosts above the CPU or RAM threshold,
   links above the utilisation threshold.
2. **Selection** (:mod:`.selection`): the servers involved, highest
   incoming traffic first.
3. **Plan** (:mod:`.plan`): each selected server placed by the same engine
   as the Nova filter and weigher, within the thresholds, and moved only
   when the move relieves a hot spot or gains at least ``min_gain``.

The thresholds and knobs are declared once, in :mod:`.params`
(:class:`AdvisorParams`, :func:`get_schema`). Quality measures:
``network_cost`` (:mod:`nova_netaware.core.cost`, Meng et al., INFOCOM'10)
and ``max_utilisation``, the busiest link.
"""

from nova_netaware.advisor.hotspots import HostUsage
from nova_netaware.advisor.hotspots import hot_spots
from nova_netaware.advisor.hotspots import link_name
from nova_netaware.advisor.hotspots import max_utilisation
from nova_netaware.advisor.hotspots import overloaded
from nova_netaware.advisor.hotspots import overloaded_with
from nova_netaware.advisor.hotspots import utilisation
from nova_netaware.advisor.params import add_arguments
from nova_netaware.advisor.params import AdvisorParams
from nova_netaware.advisor.params import ExecutionParams
from nova_netaware.advisor.params import get_schema
from nova_netaware.advisor.params import resolve
from nova_netaware.advisor.plan import Plan
from nova_netaware.advisor.plan import plan
from nova_netaware.advisor.plan import Step
from nova_netaware.advisor.selection import select
from nova_netaware.core.cost import network_cost
from nova_netaware.core.cost import server_cost

__all__ = [
    'AdvisorParams', 'ExecutionParams', 'HostUsage', 'Plan', 'Step', 'add_arguments',
    'get_schema', 'hot_spots', 'link_name', 'max_utilisation',
    'network_cost', 'overloaded', 'overloaded_with', 'plan', 'resolve',
    'select', 'server_cost', 'utilisation',
]
