"""Run every method on every scenario and measure the outcome.

:func:`run_all` builds the seeded scenarios (:mod:`dq.scenarios`), runs
the methods of :mod:`dq.methods` and the ILP optimum of :mod:`dq.ilp` on
each, and returns one row of measures per (scenario, method) with the
per-scenario extras the verdicts need (:mod:`dq.verdicts`).
"""

import time

import numpy as np

from dq import ilp
from dq import methods
from dq import scenarios
from nova_netaware import advisor
from nova_netaware.core import cost
from nova_netaware.core.engine import Params

MIB_PER_GIB = 1024.0
#: (topology, migration budget, seeds per unit of ``--seeds``)
FAMILIES = [('fat-tree-k8', 16, 1), ('leaf-spine-4x8x16', 16, 1),
            ('fat-tree-k4', 10, 2)]


def measure(sc, d, affected, movers, params):
    """The measures of decision *d* on scenario *sc*."""
    placement, usage = methods.apply_moves(sc, d.moves)
    vol = methods.migration_volume_mib(sc, d.moves, params)
    hops = np.array([sc.topo.host_hops(sc.topo.host_index[a],
                                       sc.topo.host_index[b])
                     for _, a, b in d.moves])
    return {
        'scenario': sc.name, 'topology': sc.topology, 'mix': sc.mix,
        'seed': sc.seed, 'method': d.method, 'moves': len(d.moves),
        'cost_total': cost.network_cost(sc.topo, sc.traffic, placement),
        'cost_affected': ilp.flows_cost(sc, placement, affected),
        'cost_movers': ilp.flows_cost(sc, placement, movers),
        'max_util': advisor.max_utilisation(sc.eng, sc.traffic, placement),
        'hot_after': sum(1 for u in usage.values()
                         if advisor.overloaded(u, methods.KNOBS)),
        'gib': float(vol.sum()) / MIB_PER_GIB,
        'gib_hops': float((vol * hops).sum()) / MIB_PER_GIB,
        'seconds': d.seconds, 'note': d.note,
    }


def _sensitivity_reference(sc, sens_movers, movers, obj, optimal,
                           ilp_limit):
    """The ILP optimum for the servers the ``migration_weight=0`` run
    moved, *sens_movers* (solved only when they differ from *movers*)."""
    if sens_movers != set(movers):
        snew, _, _, _, sopt = ilp.solve(sc, sorted(sens_movers), ilp_limit)
        return (ilp.flows_cost(sc, snew, sens_movers)
                if snew is not None and sopt else None)
    return obj if optimal else None


def run_scenario(sc, budget, params, ilp_limit):
    """Every method on *sc*: ``(rows, extras)``."""
    adv = methods.run_advisor(sc, budget, params)
    movers = [s for s, _, _ in adv.moves]
    relief = methods.relief_moves(sc, adv)
    decisions = [
        methods.no_action(sc, budget, params),
        adv,
        methods.nova_default(sc, movers, params),
        methods.nova_default(sc, relief, params,
                             label='nova-default (relief)'),
        methods.netoverhead(sc, movers, params),
        methods.sandpiper(sc, len(movers), params),
    ]
    new, obj, msg, dt, optimal = ilp.solve(sc, movers, ilp_limit)
    if new is not None:
        decisions.append(methods.Decision(
            'ilp-optimum', [(v, sc.placement[v], new[v]) for v in movers],
            dt, note='optimal' if optimal else 'not proven optimal: ' + msg))
    sens = methods.run_advisor(sc, budget, Params(
        **dict(vars(params), migration_weight=0.0)),
        label='advisor (migration_weight=0)')
    decisions.append(sens)
    affected = set()
    for d in decisions:
        affected |= {s for s, _, _ in d.moves}
    rows = [measure(sc, d, affected, set(movers), params) for d in decisions]
    extra = {'relief': len(relief), 'movers': len(movers),
             'ilp_optimal': bool(optimal), 'ilp_seconds': dt,
             'sens_movers': set(s for s, _, _ in sens.moves)}
    # the sensitivity run moves its own servers: its ILP reference is the
    # optimum for those
    sref = _sensitivity_reference(sc, extra['sens_movers'], movers, obj,
                                  optimal, ilp_limit)
    sens_row = rows[-1]
    sens_row['cost_own_movers'] = ilp.flows_cost(
        sc, methods.apply_moves(sc, sens.moves)[0], extra['sens_movers'])
    extra['sens_ilp'] = sref
    return rows, extra


def run_all(seeds, params, ilp_limit):
    """Every scenario family, mix and seed: ``(rows, extras, infos,
    runtime)``; prints one line per scenario."""
    t_start = time.perf_counter()
    rows, extras, infos = [], {}, []
    methods.nova_weigher_names()    # import Nova once, outside the timings
    for topo, budget, per_seed in FAMILIES:
        for mix in scenarios.MIXES:
            for seed in range(1, per_seed * seeds + 1):
                sc = scenarios.build(topo, mix, seed)
                r, e = run_scenario(sc, budget, params, ilp_limit)
                rows += r
                extras[sc.name] = e
                infos.append((sc, e, budget))
                print('%-34s %3d VMs %4d flows  rack-local traffic %3.0f%%  '
                      'moved %2d (relief %2d)  ILP %s %.2fs' % (
                          sc.name, sc.info['vms'], sc.info['flows'],
                          100 * sc.info['rack_local_share'], e['movers'],
                          e['relief'], 'optimal' if e['ilp_optimal'] else
                          'NOT optimal', e['ilp_seconds']), flush=True)
    return rows, extras, infos, time.perf_counter() - t_start
