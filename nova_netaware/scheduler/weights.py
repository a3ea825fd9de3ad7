"""MigrationImpactWeigher: prefer the host with the lowest MIF.

The migration impact factor (:mod:`nova_netaware.core.impact`) adds the
server's traffic to its peers times the distance from the host, the bytes a
pre-copy live migration moves there times the distance they travel, and the
busiest link the server's traffic would use. The raw weight is ``-MIF``, so
Nova's highest weight is the lowest impact.

The multiplier is ``[netaware] weight_multiplier``, read at every request;
host aggregate metadata ``netaware_weight_multiplier`` overrides it. Like the
filter it acts on moves only unless ``apply_to_boots`` is set, and gives
neutral weights (all equal) when its data cannot be used.
"""

import numpy as np
from oslo_config import cfg
from oslo_log import log as logging

from nova.scheduler import utils
from nova.scheduler import weights

from nova_netaware import conf  # noqa: F401 - registers [netaware]
from nova_netaware.core import impact
from nova_netaware.scheduler import runtime

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


class MigrationImpactWeigher(weights.BaseHostWeigher):

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Nova creates it once, at scheduler start: learn Nova's choices.
        runtime.install_ledger_hook()

    #: ``[netaware] weight_multiplier`` as read by the last
    #: :meth:`weigh_objects` (Nova asks for every host's multiplier right
    #: after it, in the same request)
    _multiplier = None

    def weight_multiplier(self, host_state):
        default = self._multiplier
        if default is None:
            default = CONF.netaware.weight_multiplier
        # A host in no aggregate has no override: get_weight_multiplier
        # would return the option unchanged (one read per request instead
        # of one per host).
        if not host_state.aggregates:
            return default
        return utils.get_weight_multiplier(
            host_state, 'netaware_weight_multiplier', default)

    def weigh_objects(self, weighed_obj_list, spec_obj):
        self._multiplier = CONF.netaware.weight_multiplier
        hosts = [w.obj for w in weighed_obj_list]
        try:
            if not (CONF.netaware.apply_to_boots or
                    runtime.is_move(spec_obj)):
                return [0.0] * len(hosts)
            rt = runtime.get_runtime()
            if hasattr(rt, 'begin'):
                rt.begin(spec_obj)
            result = rt.evaluate(hosts, spec_obj)
            if result is None:
                return [0.0] * len(hosts)
            ev, pos = result
            mif = ev.mif[[pos[h.host] for h in hosts]]
            raw = (-mif).tolist()
            # Log the 20 best only: no full sort on the per-request path.
            top = np.argsort(mif, kind='stable')[:20] if len(mif) <= 20 \
                else np.argpartition(mif, 19)[:20]
            top = top[np.argsort(mif[top], kind='stable')]
            names = [hosts[j].host for j in top]
            terms = impact.weighted_terms(ev, CONF.netaware,
                                          [pos[h] for h in names])
            LOG.info('MigrationImpactWeigher ranking for server %s (host: '
                     'MIF = comm + migration + congestion terms): %s',
                     spec_obj.instance_uuid, ', '.join(
                         '%s: %.4f = %.4f + %.4f + %.4f' % (
                             h, mif[j], terms[0][k], terms[1][k],
                             terms[2][k])
                         for k, (j, h) in enumerate(zip(top, names))))
            return raw
        except Exception:
            if runtime.log_once(logging.ERROR,
                                'MigrationImpactWeigher failed'):
                LOG.exception('MigrationImpactWeigher failed; neutral '
                              'weights')
            return [0.0] * len(hosts)

    def _weigh_object(self, host_state, spec_obj):
        return 0.0
