"""The ``network_aware_rebalance`` Watcher strategy (entry point
``watcher_strategies``), goal ``network_cost``.

It is ``openstack netaware rebalance`` run by Watcher's decision engine:

1. the audit parameters are the advisor's knobs
   (:class:`~nova_netaware.advisor.params.AdvisorParams`) and how to move
   (:class:`~nova_netaware.advisor.params.ExecutionParams`), declared once
   in :mod:`nova_netaware.advisor.params`;
2. the ``[netaware]`` options are read from the decision engine's own
   config files (watcher.conf) or from the files named by
   ``[watcher_strategies.network_aware_rebalance] config_files`` (e.g.
   /etc/nova/nova.conf, the scheduler's), with the command's own
   :func:`~nova_netaware.osc.data.load_conf`;
3. topology, traffic (the traffic source plugin), servers, hypervisors and
   Placement capacity come from :func:`~nova_netaware.osc.data.read_cloud`,
   over openstacksdk with Watcher's service credentials;
4. the plan is :meth:`~nova_netaware.osc.data.CloudView.plan`, the
   command's;
5. each planned move becomes a ``migrate`` action, **without** a
   ``destination_node`` unless ``explicit_destination`` is true: Nova's
   scheduler, with the nova-netaware filter and weigher, chooses, exactly
   as when the command executes a plan.

Watcher's own cluster data model is not used (it has no ports, traffic or
topology), so an audit scope is not applied: the plan covers every compute
host of the topology, as the command's does.

Bad input (no topology, a broken topology or traffic file, a dead traffic
source, a cloud that cannot be read, a topology that lacks compute hosts,
bad parameters) raises :class:`AuditDataError`: Watcher marks the audit
FAILED, the message is written to the audit's ``status_message`` and the
decision engine's log, and no action plan is made, so nothing moves.
"""

from keystoneauth1 import exceptions as ks_exc
from oslo_config import cfg
from oslo_log import log

from watcher.common import exception
from watcher.decision_engine.strategy.strategies import base

from nova_netaware.advisor import params as advisor_params
from nova_netaware.core.exceptions import NetawareError
from nova_netaware.osc import cloud as osc_cloud
from nova_netaware.osc import data
from nova_netaware.watcher import goal

LOG = log.getLogger(__name__)
CONF = cfg.CONF

NAME = 'network_aware_rebalance'
#: Longest ``status_message`` Watcher's database keeps (String(255)).
STATUS_MESSAGE_MAX = 255


class AuditDataError(exception.WatcherException, NetawareError):
    """The audit cannot be planned from the data it was given; the message
    says why (Watcher marks the audit FAILED)."""
    msg_fmt = 'nova-netaware: %(reason)s'


def make_cloud(osc):
    """The :class:`~nova_netaware.osc.cloud.Cloud` the strategy reads: the
    openstacksdk connection of Watcher's own ``NovaHelper`` (the one its
    ``migrate`` action uses) over the strategy's keystone session
    (``[watcher_clients_auth]``); Watcher's ``[nova]`` and ``[placement]``
    sections give each service's interface and region."""
    from watcher.common import nova_helper
    return osc_cloud.Cloud(
        nova_helper.NovaHelper(session=osc.session).connection)


class NetworkAwareRebalance(base.BaseStrategy):
    """Network-aware rebalance (nova-netaware): relieve overloaded hosts and
    congested links and lower the network cost, by the plan of
    ``openstack netaware rebalance``."""

    def __init__(self, config, osc=None):
        super().__init__(config, osc)
        #: the advisor's :class:`~nova_netaware.advisor.Plan` of the last
        #: execution (None before, or when it failed)
        self.rebalance_plan = None

    @classmethod
    def get_name(cls):
        return NAME

    @classmethod
    def get_display_name(cls):
        return 'Network-aware rebalance'

    @classmethod
    def get_translatable_display_name(cls):
        return 'Network-aware rebalance'

    @classmethod
    def get_goal_name(cls):
        return goal.NAME

    @classmethod
    def get_schema(cls):
        return advisor_params.get_schema(execution=True)

    @classmethod
    def get_config_opts(cls):
        return [cfg.ListOpt(
            'config_files', default=[],
            help='Files with the [netaware] section (topology, traffic '
                 'source, constraints, weights), e.g. /etc/nova/nova.conf. '
                 'Default: the decision engine\'s own config files '
                 '(watcher.conf).')]

    # -- execution -------------------------------------------------------
    def _fail(self, audit, reason):
        err = AuditDataError(reason=reason)
        LOG.error('%s', err)
        if audit is not None and 'status_message' in getattr(
                audit, 'fields', {}):
            # Watcher marks the audit FAILED and saves it; the reason goes
            # with it (the API shows status_message from microversion 1.5).
            audit.status_message = str(err)[:STATUS_MESSAGE_MAX]
        raise err

    def _config_files(self):
        return list(self.config.get('config_files') or []) or list(
            CONF.config_file or [])

    def pre_execute(self):
        LOG.info('Initializing %s', self.get_display_name())
        if self.audit_scope:
            LOG.warning('%s plans over every compute host of the topology; '
                        'the audit scope is not applied', NAME)

    def do_execute(self, audit=None):
        self.rebalance_plan = None
        try:
            knobs, how = advisor_params.split(self.input_parameters)
        except (TypeError, ValueError) as e:
            self._fail(audit, 'bad audit parameters: %s' % e)
        try:
            c = data.load_conf(self._config_files())
            view = data.read_cloud(make_cloud(self.osc), c)
        except NetawareError as e:
            self._fail(audit, str(e))
        except (ks_exc.ClientException, exception.WatcherException) as e:
            # Watcher's keystone session or Nova client set-up
            self._fail(audit, 'cannot read the cloud: %s' % e)
        if view.missing_hosts():
            self._fail(audit, view.missing_hosts_error(
                'before running an audit'))
        for note in view.notes:           # e.g. capacity not from Placement
            LOG.warning('%s', note)
        plan = view.plan(knobs)
        names = {s.id: s.name for s in view.servers.values()}
        for step in plan.moves:
            parameters = {'migration_type': how.migration_type,
                          'source_node': step.source,
                          'resource_name': names.get(step.server,
                                                     step.server)}
            if how.explicit_destination:
                parameters['destination_node'] = step.destination
            self.solution.add_action(action_type=self.MIGRATION,
                                     resource_id=step.server,
                                     input_parameters=parameters)
        self.solution.set_efficacy_indicators(**indicators(plan))
        self.rebalance_plan = plan

    def post_execute(self):
        plan = self.rebalance_plan
        LOG.info(
            '%s: overloaded hosts: %s; congested links: %s; network cost '
            '%.1f -> %.1f Mbit/s x hop; busiest link %.1f%% -> %.1f%%; %d '
            'migration(s) planned', NAME,
            ', '.join(plan.overloaded_hosts) or 'none',
            ', '.join(plan.congested_links) or 'none', plan.cost_before,
            plan.cost_after, 100 * plan.util_before, 100 * plan.util_after,
            len(plan.moves))
        for reason in plan.reasons:
            LOG.info('%s: nothing planned: %s', NAME, reason)


def indicators(plan):
    """The ``network_cost`` goal's efficacy indicators of an advisor
    :class:`~nova_netaware.advisor.Plan` (names and units:
    :data:`nova_netaware.watcher.goal.INDICATORS`)."""
    return {
        'network_cost_before': float(plan.cost_before),
        'network_cost_after': float(plan.cost_after),
        'busiest_link_before': 100.0 * float(plan.util_before),
        'busiest_link_after': 100.0 * float(plan.util_after),
        'migration_volume': float(sum(s.volume_mb for s in plan.moves)),
        'instance_migrations_count': len(plan.moves),
    }
