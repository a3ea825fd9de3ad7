#!/usr/bin/env python
"""Decision-quality benchmark of the rebalance advisor.

Usage::

    .venv/bin/python benchmarks/decision_quality.py [--quick] [--seeds N]

Builds seeded scenarios with the core's generators (:mod:`dq.scenarios`),
runs every method of :mod:`dq.methods` and the exact ILP optimum of
:mod:`dq.ilp` on each (:mod:`dq.run`), judges the targets
(:mod:`dq.verdicts`) and reports per method (:mod:`dq.report`):

* **network cost** ``sum over flows of rate x hops`` (the advisor's own
  :func:`~nova_netaware.core.cost.network_cost`), both for the whole
  datacenter and for the *affected flows*: the flows with an end on a
  server that any method moved in that scenario. Flows between servers no
  method touches cost the same under every method, so the affected cost is
  the total minus a constant that would only dilute the comparison;
* the **highest link utilisation** (host uplinks and fabric links);
* the **bytes moved** by the migrations, with the core's pre-copy model
  (:func:`nova_netaware.core.migration.precopy`, through the engine), and
  the same bytes times the hops they travel;
* the **decision time** (wall clock of the method alone);
* the hosts still above 90% CPU or RAM afterwards.

It prints the tables and the targets (PASS/FAIL with ratios) and writes
``docs/decision-quality.md`` and ``docs/decision-quality.png``. Not a test:
nothing here asserts.
"""

import argparse
import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
warnings.filterwarnings('ignore')

from dq import report  # noqa: E402
from dq import run  # noqa: E402
from dq import verdicts as judge  # noqa: E402
from nova_netaware.core.engine import Params  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true',
                    help='one seed per scenario family (about 30 s)')
    ap.add_argument('--seeds', type=int, default=None,
                    help='seeds per 128-host family (default 3, quick 1); '
                         'the fat-tree k=4 ILP family gets 2x as many')
    ap.add_argument('--ilp-time-limit', type=float, default=120.0)
    ap.add_argument('--out', default=os.path.join(ROOT, 'docs'),
                    help='directory for decision-quality.md/.png')
    args = ap.parse_args(argv)
    seeds = args.seeds or (1 if args.quick else 3)
    rows, extras, infos, runtime = run.run_all(seeds, Params(),
                                               args.ilp_time_limit)
    agg = report.aggregate(rows)
    head, lines = report.agg_table(agg)
    print()
    print(report.text_table(head, lines))
    instances, t1, t1s, t2, t2r = judge.targets(rows, extras)
    ilp_lines = report.ilp_table(instances)
    print()
    print(report.text_table(report.ILP_HEAD, ilp_lines))
    verdicts = judge.verdicts(t1, t2, t2r)
    print()
    report.print_targets(verdicts, t1s)
    print('\nruntime %.1f s' % runtime)
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, 'decision-quality.png')
    report.plot(agg, png)
    md = os.path.join(args.out, 'decision-quality.md')
    report.write_md(md, args, agg, ilp_lines, verdicts, t1s, infos, runtime,
                    report.analyse(rows, extras, t1))
    print('wrote %s and %s' % (md, png))
    return 0


if __name__ == '__main__':
    sys.exit(main())
