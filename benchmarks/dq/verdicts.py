"""Judge the rows of :mod:`dq.run` against the benchmark's targets.

* the advisor's cost of its moved servers' flows is at most
  :data:`MAX_RATIO` times the ILP optimum for the same servers;
* on the rack-local mix the advisor's affected network cost is at least
  :data:`MIN_REDUCTION` below Nova's default weighers moving the same
  servers (and, stricter, only the servers needed for relief).
"""

import collections

import numpy as np

from dq import scenarios

MAX_RATIO = 1.10
MIN_REDUCTION = 0.5
FAMILY_NAMES = ('fat-tree-k4', 'fat-tree-k8', 'leaf-spine-4x8x16')


def by_scenario(rows):
    """``{scenario: {method: row}}``."""
    by = collections.defaultdict(dict)
    for r in rows:
        by[r['scenario']][r['method']] = r
    return by


def against_optimum(by, extras):
    """One dict per instance whose ILP is proven optimal: the costs of the
    advisor's moved servers' flows under each method, and the ratios."""
    out = []
    for name, ms in by.items():
        if 'ilp-optimum' not in ms or not extras[name]['ilp_optimal']:
            continue
        opt = ms['ilp-optimum']['cost_movers']
        adv = ms['advisor']['cost_movers']
        ratio = adv / opt if opt > 0 else (1.0 if adv == 0 else np.inf)
        sref = extras[name]['sens_ilp']
        sr = ms['advisor (migration_weight=0)']
        out.append({
            'name': name, 'ms': ms, 'opt': opt, 'adv': adv, 'ratio': ratio,
            'sratio': sr['cost_own_movers'] / sref if sref else None,
            'ilp_seconds': extras[name]['ilp_seconds']})
    return out


def against_nova(by, extras, ref):
    """Rack-local instances: ``(name, reduction, advisor's affected cost,
    ref's, the optimum's reduction or None)`` against method *ref*."""
    out = []
    for name, ms in by.items():
        if ms['advisor']['mix'] != 'rack-local':
            continue
        a = ms['advisor']['cost_affected']
        best = (ms['ilp-optimum']['cost_affected']
                if 'ilp-optimum' in ms and extras[name]['ilp_optimal']
                else None)
        n = ms[ref]['cost_affected']
        out.append((name, 1 - a / n, a, n,
                    None if best is None else 1 - best / n))
    return out


def targets(rows, extras):
    """``(instances vs optimum, t1, t1_sens, t2, t2r)``: t1 is ``(name,
    ratio, advisor cost, optimum)`` per instance, t1_sens the ratios of the
    ``migration_weight=0`` run, t2 / t2r :func:`against_nova` for
    nova-default and nova-default (relief)."""
    by = by_scenario(rows)
    inst = against_optimum(by, extras)
    t1 = [(x['name'], x['ratio'], x['adv'], x['opt']) for x in inst]
    t1_sens = [x['sratio'] for x in inst if x['sratio'] is not None]
    return (inst, t1, t1_sens, against_nova(by, extras, 'nova-default'),
            against_nova(by, extras, 'nova-default (relief)'))


def _optimum_verdicts(t1):
    worst = max(t1, key=lambda x: x[1])
    n_ok = sum(1 for x in t1 if x[1] <= MAX_RATIO + 1e-12)
    out = [(
        'advisor cost <= 1.10 x ILP optimum, every instance (cost of the '
        'moved servers\' flows)', n_ok == len(t1),
        '%d/%d instances within 1.10; worst %.3f (%s), mean %.3f' % (
            n_ok, len(t1), worst[1], worst[0],
            float(np.mean([x[1] for x in t1]))))]
    agg_ratio = sum(x[2] for x in t1) / sum(x[3] for x in t1)
    out.append(('advisor cost <= 1.10 x ILP optimum, summed over instances',
                agg_ratio <= MAX_RATIO, 'ratio %.3f' % agg_ratio))
    for fam in FAMILY_NAMES:
        for mix in scenarios.MIXES:
            sub = [x for x in t1 if x[0].startswith('%s/%s/' % (fam, mix))]
            if sub:
                out.append((
                    '  %s %s' % (fam, mix), max(x[1] for x in sub) <=
                    MAX_RATIO + 1e-12, 'worst %.3f, summed %.3f over %d' % (
                        max(x[1] for x in sub),
                        sum(x[2] for x in sub) / sum(x[3] for x in sub),
                        len(sub))))
    return out


def _nova_verdicts(label, data):
    n_ok = sum(1 for x in data if x[1] >= MIN_REDUCTION)
    worst = min(data, key=lambda x: x[1])
    ceil = [x for x in data if x[1] < MIN_REDUCTION and x[4] is not None]
    out = [(
        label + ', every instance', n_ok == len(data),
        '%d/%d instances; worst %.1f%% less (%s)%s' % (
            n_ok, len(data), 100 * worst[1], worst[0],
            '' if not ceil else '; where missed, the ILP optimum '
            'itself is %s less' % ', '.join(
                '%.1f%%' % (100 * x[4]) for x in ceil)))]
    red = 1 - sum(x[2] for x in data) / sum(x[3] for x in data)
    out.append((label + ', summed over instances', red >= MIN_REDUCTION,
                '%.1f%% less' % (100 * red)))
    for fam in FAMILY_NAMES:
        sub = [x for x in data if x[0].startswith(fam + '/')]
        if sub:
            r = 1 - sum(x[2] for x in sub) / sum(x[3] for x in sub)
            out.append(('  %s' % fam, r >= MIN_REDUCTION,
                        '%.1f%% less summed, worst instance %.1f%%' % (
                            100 * r, 100 * min(x[1] for x in sub))))
    return out


def verdicts(t1, t2, t2r):
    """``[(label, passed, detail)]``; an indented label is a breakdown."""
    out = _optimum_verdicts(t1) if t1 else []
    for label, data in (
            ('advisor >= 50% less network cost than Nova default weighers, '
             'rack-local mix (affected flows; Nova moves the same servers)',
             t2),
            ('stricter: Nova moves only the servers needed to relieve the '
             'hot spots', t2r)):
        if data:
            out += _nova_verdicts(label, data)
    return out
