"""The ``network_cost`` goal (entry point ``watcher_goals``) and its
efficacy specification.

Why a goal of our own rather than Watcher's ``workload_balancing``: that
goal's efficacy specification has Watcher's indicators only (migration
count, instance count, standard deviation of a host metric), and Watcher
validates a solution's indicators against its goal's specification; the
network cost and the busiest link, which are what this strategy improves,
could not be reported there. Watcher 17 has no separate entry point for
efficacy specifications: a goal returns its specification from
:meth:`NetworkCost.get_efficacy_specification`.

Indicators (per action plan, ``openstack optimize actionplan show``):

=========================  ==============  =================================
name                       unit            meaning
=========================  ==============  =================================
network_cost_before        Mbit/s x hop    Σ rate × hops before the plan
network_cost_after         Mbit/s x hop    the same after the planned moves
busiest_link_before        %               busiest link's utilisation before
busiest_link_after         %               the same after the planned moves
migration_volume           MB              data the planned moves copy
instance_migrations_count                  planned migrations (Watcher's)
=========================  ==============  =================================

The numbers are the advisor's (:class:`nova_netaware.advisor.Plan`): the
network cost of :func:`nova_netaware.core.cost.network_cost`, the busiest
link of :func:`nova_netaware.advisor.max_utilisation`, the volume of the
pre-copy model (:mod:`nova_netaware.core.migration`).
"""

from watcher.decision_engine.goal import base
from watcher.decision_engine.goal.efficacy import base as efficacy_base
from watcher.decision_engine.goal.efficacy import indicators
from watcher.decision_engine.solution import efficacy

NAME = 'network_cost'


class _Number(indicators.IndicatorSpecification):
    """An indicator that is a number >= 0."""

    def __init__(self, name, description, unit):
        super().__init__(name=name, description=description, unit=unit)

    @property
    def schema(self):
        return {'type': 'number', 'minimum': 0}


INDICATORS = (
    ('network_cost_before', 'Network cost (sum over flows of rate x hops) '
     'before the plan.', 'Mbit/s x hop'),
    ('network_cost_after', 'Network cost (sum over flows of rate x hops) '
     'after the planned migrations.', 'Mbit/s x hop'),
    ('busiest_link_before', 'Utilisation of the busiest link (host uplinks '
     'and fabric links) before the plan.', '%'),
    ('busiest_link_after', 'Utilisation of the busiest link after the '
     'planned migrations.', '%'),
    ('migration_volume', 'Data the planned migrations copy (pre-copy '
     'model: memory plus the rounds of dirtied pages).', 'MB'),
)


def reduction(before, after):
    """Relative reduction in per cent: ``100 x (before - after) / before``
    (0 when *before* is 0: nothing to reduce). Used for the global
    efficacy of the ``network_cost`` goal."""
    return 100.0 * (before - after) / before if before else 0.0


class NetworkCostSpecification(efficacy_base.EfficacySpecification):
    """The efficacy specification of the ``network_cost`` goal."""

    def get_indicators_specifications(self):
        return [_Number(*i) for i in INDICATORS] + [
            indicators.InstanceMigrationsCount()]

    def get_global_efficacy_indicator(self, indicators_map=None):
        """Two global figures: the network cost reduction (%,
        :func:`reduction`) and the busiest link's reduction in percentage
        points (``before - after``)."""
        m = indicators_map or {}
        cost = reduction(m.get('network_cost_before', 0.0),
                         m.get('network_cost_after', 0.0))
        link = (m.get('busiest_link_before', 0.0) -
                m.get('busiest_link_after', 0.0))
        return [
            efficacy.Indicator(
                name='network_cost_reduction',
                description='Relative reduction of the network cost.',
                unit='%', value=cost),
            efficacy.Indicator(
                name='busiest_link_reduction',
                description='Reduction of the busiest link\'s utilisation, '
                            'in percentage points.',
                unit='%', value=link),
        ]


class NetworkCost(base.Goal):
    """Lower the network cost of the servers' traffic (rate x hops) and
    relieve congested links and overloaded hosts, with as few migrations as
    the gain is worth (nova-netaware)."""

    @classmethod
    def get_name(cls):
        return NAME

    @classmethod
    def get_display_name(cls):
        return 'Network cost'

    @classmethod
    def get_translatable_display_name(cls):
        return 'Network cost'

    @classmethod
    def get_efficacy_specification(cls):
        return NetworkCostSpecification()
