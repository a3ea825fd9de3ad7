"""The benchmarks' echo sender keeps one echo per interval: when its
thread comes back late it skips the ticks it missed (and counts them)
rather than sending them back to back, which is another load (a burst of
250-300 echoes makes the TCG guest discard its own replies)."""

import time

from nova_netaware.replica.lab import echo


def _run(stall_at, stall, n, interval=0.001):
    times, stop, skipped = [], [], []

    def send():
        times.append(time.monotonic())
        if len(times) == stall_at:
            time.sleep(stall)
        if len(times) == n:
            stop.append(1)
    echo.paced(interval, send, stop, skipped)
    return times, skipped


def test_a_late_sender_skips_the_missed_ticks_instead_of_a_burst():
    interval = 0.001
    times, skipped = _run(stall_at=5, stall=0.05, n=30, interval=interval)
    gaps = [b - a for a, b in zip(times, times[1:])]
    # 50 ms late: about 49 ticks skipped, counted
    assert 40 <= sum(skipped) <= 60, skipped
    # no catch-up burst: sends stay about an interval apart (a burst would
    # be ~49 sends microseconds apart); one short gap may follow the stall
    assert sum(g < interval / 4 for g in gaps) <= 1, gaps
    # the schedule goes on after the stall: the last 20 sends take ~20 ms
    assert times[-1] - times[-21] >= 20 * interval * 0.9


def test_a_sender_on_time_skips_nothing():
    times, skipped = _run(stall_at=0, stall=0, n=20, interval=0.01)
    assert skipped == []
    assert times[-1] - times[0] >= 19 * 0.01 * 0.9
