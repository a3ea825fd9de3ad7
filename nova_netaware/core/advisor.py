"""Compatibility module: the advisor moved to :mod:`nova_netaware.advisor`
and its cost measures to :mod:`nova_netaware.core.cost`.

Re-exports their public names so that ``from nova_netaware.core import
advisor`` keeps working until its importers (``osc/commands.py``,
``osc/data.py``, ``osc/plot.py``, ``snapshot.py``,
``benchmarks/scheduler_bench.py``) import the new package.
"""

from nova_netaware.advisor import *  # noqa: F401,F403
from nova_netaware.advisor import __all__  # noqa: F401
