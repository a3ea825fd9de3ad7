"""NetworkAwareFilter: hard network constraints for moves.

A host passes when it satisfies every hard constraint of
:mod:`nova_netaware.core.constraints` for the server being moved: server
capacity, uplink and path bandwidth under ``max_link_utilization``, distance
to the server's peers (``netaware:max_hops`` / ``netaware:max_latency_us``
in flavor extra specs or server metadata) and pre-copy convergence.

By default it acts on moves only (cold and live migration, evacuate,
unshelve) and passes every host on an initial boot; ``[netaware]
apply_to_boots`` changes that. When its data cannot be used it logs the
problem once and passes every host (``on_missing_data = fail-open``, the
default) or none (``fail-closed``). It never raises into the scheduler.

Every refusal is logged with the host, the constraint and the numbers.

Moves in flight (unfinished Migration records, and this plugin's own
decisions not yet in Nova's records, :mod:`.ledger`) count where they are
going (:mod:`nova_netaware.core.moves`); within a scheduler process one
move is evaluated at a time until Nova has consumed its choice
(:meth:`.runtime.NovaRuntime.begin`).

Rebuild (decision): a rebuild keeps the server on its host; Nova asks the
scheduler only whether that host is still fit for the new image, marking
the request ``_nova_check_type = ['rebuild']`` and forcing the current host.
Like Nova's filters with ``RUN_ON_REBUILD = False``, this filter then
passes every host without evaluating: network constraints judge moves, and
a rebuild moves nothing. Nova applies ``RUN_ON_REBUILD`` in
``BaseHostFilter._filter_one``, which ``filter_all`` bypasses here, so
``filter_all`` applies it itself.
"""

from oslo_config import cfg
from oslo_log import log as logging

from nova.scheduler import filters
from nova.scheduler import utils as nova_utils

from nova_netaware import conf  # noqa: F401 - registers [netaware]
from nova_netaware.scheduler import runtime

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


class NetworkAwareFilter(filters.BaseHostFilter):
    """Refuse hosts that violate the server's network constraints.

    On a rebuild (``_nova_check_type`` 'rebuild') every host passes without
    evaluation, as ``RUN_ON_REBUILD = False`` means in Nova (see the module
    docstring).
    """

    RUN_ON_REBUILD = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Nova creates it once, at scheduler start: learn Nova's choices.
        runtime.install_ledger_hook()

    def filter_all(self, filter_obj_list, spec_obj):
        hosts = list(filter_obj_list)
        try:
            if not self.RUN_ON_REBUILD and \
                    nova_utils.request_is_rebuild(spec_obj):
                return hosts
            if not hosts or not (CONF.netaware.apply_to_boots or
                                 runtime.is_move(spec_obj)):
                return hosts
            rt = runtime.get_runtime()
            if hasattr(rt, 'begin'):
                rt.begin(spec_obj)
            result = rt.evaluate(hosts, spec_obj)
            if result is None:
                return hosts if CONF.netaware.on_missing_data != \
                    'fail-closed' else []
            ev, pos = result
            passing = []
            for h in hosts:
                i = pos[h.host]
                if ev.passed[i]:
                    passing.append(h)
                else:
                    LOG.info('NetworkAwareFilter refused host %s for server '
                             '%s: %s', h.host, spec_obj.instance_uuid,
                             '; '.join(ev.reasons.get(h.host, [])))
            if not passing and hasattr(rt, 'end'):
                rt.end(spec_obj.instance_uuid)
            return passing
        except Exception:
            if runtime.log_once(logging.ERROR, 'NetworkAwareFilter failed'):
                LOG.exception('NetworkAwareFilter failed; passing all hosts')
            return hosts if CONF.netaware.on_missing_data != \
                'fail-closed' else []

    def host_passes(self, host_state, spec_obj):
        return bool(self.filter_all([host_state], spec_obj))
