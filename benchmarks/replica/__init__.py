"""Helpers of benchmarks/replica_bench.py."""


def pct(xs, p):
    """The ``p``-th percentile of ``xs``, linear between the two closest
    ranks: at rank ``k = (n - 1) * p / 100``,
    ``xs[floor(k)] + (xs[floor(k) + 1] - xs[floor(k)]) * (k - floor(k))``
    (numpy's default; ``statistics.quantiles(method='inclusive')``). NaN
    for no sample. The one percentile of the replica benchmarks ("median
    and p90 over 20 switchovers")."""
    xs = sorted(xs)
    if not xs:
        return float('nan')
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
