"""The pre-copy model (core/migration.py) against hand computations.

Notation of the module: M memory, D dirty rate, B bandwidth, lambda = D/B,
n rounds; downtime = M lambda^n / B, volume V = M (1 - lambda^(n+1)) /
(1 - lambda) = sum_{i=0..n} M lambda^i, time = V / B.
"""

import math

import numpy as np
import pytest

from nova_netaware.core.migration import precopy

TIGHT = dict(rel=1e-12)


def one(res, key):
    return float(np.asarray(res[key]))


def test_lambda_zero_moves_memory_once():
    # D = 0: one round sends M, nothing is left to stop-and-copy.
    r = precopy(8000.0, 0.0, 1000.0, 0.5, 30)
    assert one(r, 'lam') == 0.0
    assert int(r['rounds']) == 1
    assert one(r, 'volume') == 8000.0
    assert one(r, 'downtime_s') == 0.0
    assert one(r, 'time_s') == 8.0           # 8000 Mbit / 1000 Mbit/s
    assert bool(r['converges'])


def test_lambda_tends_to_zero_moves_memory():
    # lambda = 1e-12: V = M (1 + lambda) ~ M
    r = precopy(8000.0, 1e-9, 1000.0, 0.5, 30)
    assert one(r, 'lam') == pytest.approx(1e-12, **TIGHT)
    assert int(r['rounds']) == 1
    assert one(r, 'volume') == pytest.approx(8000.0, rel=1e-11)
    assert bool(r['converges'])


def test_hand_computed_case():
    # M = 8000 Mbit, D = 400, B = 1000 -> lambda = 0.4; max downtime 0.1 s.
    # n >= log(0.1 * 1000 / 8000) / log(0.4) = log(0.0125)/log(0.4)
    #   = -4.38203 / -0.91629 = 4.78 -> n = 5
    # (n = 4 would give 8000 * 0.0256 / 1000 = 0.2048 s > 0.1 s)
    # downtime = 8000 * 0.4^5 / 1000 = 8000 * 0.01024 / 1000 = 0.08192 s
    # V = 8000 (1 - 0.4^6) / 0.6 = 8000 * 0.995904 / 0.6 = 13278.72 Mbit
    # time = 13278.72 / 1000 = 13.27872 s
    r = precopy(8000.0, 400.0, 1000.0, 0.1, 30)
    assert one(r, 'lam') == pytest.approx(0.4, **TIGHT)
    assert int(r['rounds']) == 5
    assert one(r, 'downtime_s') == pytest.approx(0.08192, **TIGHT)
    assert one(r, 'volume') == pytest.approx(13278.72, **TIGHT)
    assert one(r, 'time_s') == pytest.approx(13.27872, **TIGHT)
    assert bool(r['converges'])
    # the volume is the sum of the rounds 0..4 plus the final copy
    assert one(r, 'volume') == pytest.approx(
        sum(8000 * 0.4 ** i for i in range(6)), **TIGHT)


def test_round_cap_leaves_downtime_too_long():
    # Same case, at most 3 rounds: downtime 8000 * 0.064 / 1000 = 0.512 s
    # > 0.1 s -> does not converge; V = 8000 (1 - 0.4^4) / 0.6
    #   = 8000 * 0.9744 / 0.6 = 12992.
    r = precopy(8000.0, 400.0, 1000.0, 0.1, 3)
    assert int(r['rounds']) == 3
    assert one(r, 'downtime_s') == pytest.approx(0.512, **TIGHT)
    assert one(r, 'volume') == pytest.approx(12992.0, **TIGHT)
    assert one(r, 'time_s') == pytest.approx(12.992, **TIGHT)
    assert not bool(r['converges'])


def test_one_round_is_enough_when_the_first_copy_fits():
    # lambda = 400/8000 = 0.05; 0.1 * 8000 / 8000 = 0.1 >= 0.05 -> n = 1
    # downtime = 8000 * 0.05 / 8000 = 0.05 s
    # V = 8000 (1 - 0.0025) / 0.95 = 8000 * 1.05 = 8400, time 1.05 s
    r = precopy(8000.0, 400.0, 8000.0, 0.1, 30)
    assert int(r['rounds']) == 1
    assert one(r, 'downtime_s') == pytest.approx(0.05, **TIGHT)
    assert one(r, 'volume') == pytest.approx(8400.0, **TIGHT)
    assert one(r, 'time_s') == pytest.approx(1.05, **TIGHT)
    assert bool(r['converges'])


def test_exact_downtime_boundary_takes_the_first_round_that_fits():
    # M = 1000, D = 200, B = 1000 -> lambda = 0.2; max downtime 0.008 s
    # = 1000 * 0.2^3 / 1000 exactly, so n = 3 (the first n that fits), not
    # 4; V = 1000 (1 - 0.2^4) / 0.8 = 1000 * 0.9984 / 0.8 = 1248.
    # BUG found (fixed in core/migration.py): log(0.008)/log(0.2) evaluates
    # to 3.0000000000000004 in floating point and the ceiling gave n = 4
    # (V = 1249.6, downtime 0.0016 s).
    r = precopy(1000.0, 200.0, 1000.0, 0.008, 30)
    assert int(r['rounds']) == 3
    assert one(r, 'downtime_s') == pytest.approx(0.008, **TIGHT)
    assert one(r, 'volume') == pytest.approx(1248.0, **TIGHT)
    assert bool(r['converges'])
    # lambda = 0.5, 0.125 s = 1000 * 0.5^3 / 1000: n = 3, V = 1875
    r = precopy(1000.0, 500.0, 1000.0, 0.125, 30)
    assert int(r['rounds']) == 3
    assert one(r, 'volume') == pytest.approx(1875.0, **TIGHT)


def test_lambda_just_below_one_converges_with_loose_downtime():
    # lambda = 0.999999; 1000 * 1000 / 1000 = 1000 >= 1 -> n = 1
    # downtime = 1000 * 0.999999 / 1000 = 0.999999 s
    # V = 1000 (1 - lambda^2) / (1 - lambda) = 1000 (1 + lambda) = 1999.999
    r = precopy(1000.0, 999.999, 1000.0, 1000.0, 30)
    assert one(r, 'lam') == pytest.approx(0.999999, **TIGHT)
    assert int(r['rounds']) == 1
    assert one(r, 'downtime_s') == pytest.approx(0.999999, rel=1e-9)
    assert one(r, 'volume') == pytest.approx(1999.999, rel=1e-9)
    assert bool(r['converges'])


def test_lambda_just_below_one_hits_the_round_cap():
    # 0.5 s needs lambda^n <= 0.5: n >= log 0.5 / log 0.999999 ~ 693147
    # -> capped at 30: downtime = 1000 * 0.999999^30 / 1000
    #   ~ 1 - 30e-6 = 0.99997 s > 0.5 s -> not converging;
    # V = 1000 * sum_{i=0..30} lambda^i ~ 1000 (31 - 1e-6 * 465)
    #   = 30999.535
    r = precopy(1000.0, 999.999, 1000.0, 0.5, 30)
    assert int(r['rounds']) == 30
    assert one(r, 'downtime_s') == pytest.approx(0.99997, rel=1e-8)
    assert one(r, 'volume') == pytest.approx(30999.535, rel=1e-8)
    assert not bool(r['converges'])


@pytest.mark.parametrize('dirty', [1000.0, 1000.000001, 2000.0, 1e9])
def test_lambda_one_or_more_does_not_converge(dirty):
    r = precopy(8000.0, dirty, 1000.0, 0.5, 30)
    assert one(r, 'lam') == pytest.approx(dirty / 1000.0, **TIGHT)
    assert not bool(r['converges'])
    assert one(r, 'time_s') == math.inf
    assert one(r, 'downtime_s') == math.inf
    # the documented cap M (max_rounds + 1) = 8000 * 31
    assert one(r, 'volume') == 248000.0


def test_vectorised_over_bandwidth_with_zero_bandwidth():
    # D = 400, M = 8000, 0.1 s, 30 rounds, B = 0, 200, 400, 1000, 8000:
    # B = 0 -> no bandwidth; 200 -> lambda 2; 400 -> lambda 1; 1000 and
    # 8000 as in the cases above.
    r = precopy(8000.0, 400.0, [0.0, 200.0, 400.0, 1000.0, 8000.0], 0.1, 30)
    assert list(r['converges']) == [False, False, False, True, True]
    assert list(r['lam'][:3]) == [math.inf, 2.0, 1.0]
    assert list(r['rounds'][3:]) == [5, 1]
    assert r['volume'] == pytest.approx(
        [248000.0, 248000.0, 248000.0, 13278.72, 8400.0], **TIGHT)
    assert list(r['time_s'][:3]) == [math.inf] * 3
    assert r['time_s'][3:] == pytest.approx([13.27872, 1.05], **TIGHT)
    assert r['downtime_s'][3:] == pytest.approx([0.08192, 0.05], **TIGHT)


def test_infinite_bandwidth_is_instant():
    # Same host: B = inf -> lambda 0, V = M, no time.
    r = precopy(8000.0, 400.0, np.array([np.inf]), 0.5, 30)
    assert list(r['lam']) == [0.0]
    assert list(r['volume']) == [8000.0]
    assert list(r['time_s']) == [0.0]
    assert list(r['converges']) == [True]
