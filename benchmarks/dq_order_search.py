"""How much of the advisor's gap to the ILP optimum is execution order?

Experiment, not shipped behaviour. For each fat-tree k=4 scenario of
``decision_quality.py`` the advisor plans as shipped (servers in
descending incoming traffic). The same moved servers are then replanned
with :func:`nova_netaware.advisor.plan` in other orders, each server
still placed by the engine's filter and MIF at its turn (what Nova's
scheduler would do if the migrations ran in that order). A hill climb moves
one server to an earlier position while that lowers the cost of the moved
servers' flows, every one of them still moves (the ILP moves them all) and
no more hosts are left overloaded. Printed: the shipped
order's and the best order's cost against the ILP optimum for the same
servers (``benchmarks/dq/ilp.py``).

Run: ``.venv/bin/python benchmarks/dq_order_search.py`` (about 15 s).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dq import ilp  # noqa: E402
from dq import methods  # noqa: E402
from dq import scenarios  # noqa: E402
from nova_netaware import advisor  # noqa: E402
from nova_netaware.core.engine import Params  # noqa: E402


def replan(sc, params, selection):
    p = advisor.plan(sc.eng, sc.traffic, sc.placement, sc.servers, sc.usage,
                     params, max_migrations=len(selection), min_gain=0.0,
                     selection=selection)
    _, usage = methods.apply_moves(
        sc, [(s.server, s.source, s.destination) for s in p.moves])
    hot = sum(1 for u in usage.values()
              if advisor.overloaded(u, methods.KNOBS))
    return p, hot


def main():
    params = Params()
    print('%-28s %6s %8s %10s %8s' % ('instance', 'moved', 'shipped',
                                       'best order', 'orders'))
    worst = [0.0, 0.0]
    t0 = time.perf_counter()
    for mix in scenarios.MIXES:
        for seed in range(1, 7):
            sc = scenarios.build('fat-tree-k4', mix, seed)
            plan = advisor.plan(sc.eng, sc.traffic, sc.placement, sc.servers,
                                sc.usage, params, max_migrations=10)
            sel = [(s.server, s.incoming_mbps, s.why) for s in plan.moves]
            movers = set(s for s, _, _ in sel)
            _, opt, _, _, optimal = ilp.solve(sc, sorted(movers))
            shipped = ilp.flows_cost(sc, plan.placement_after, movers) / opt
            _, hot0 = replan(sc, params, sel)
            best, order, tried, better = shipped, sel, 1, True
            while better:
                better = False
                for i in range(len(order)):
                    for j in range(i + 1, len(order)):
                        o2 = list(order)
                        o2.insert(i, o2.pop(j))
                        p2, hot = replan(sc, params, o2)
                        tried += 1
                        c = ilp.flows_cost(sc, p2.placement_after,
                                           movers) / opt
                        if (len(p2.moves) == len(o2) and hot <= hot0 and
                                c < best - 1e-9):
                            best, order, better = c, o2, True
            worst = [max(worst[0], shipped), max(worst[1], best)]
            print('%-28s %6d %8.3f %10.3f %8d%s' % (
                sc.name, len(movers), shipped, best, tried,
                '' if optimal else '  (ILP not proven optimal)'))
    print('worst: shipped %.3f, best order %.3f  (%.1f s)' % (
        worst[0], worst[1], time.perf_counter() - t0))


if __name__ == '__main__':
    main()
