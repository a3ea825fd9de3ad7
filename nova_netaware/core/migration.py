"""Pre-copy live-migration model.

Source: H. Liu et al., "Performance and energy modeling for live migration of
virtual machines", HPDC'11; S. Akoush et al., "Predicting the performance of
virtual machine migration", MASCOTS'10.

With memory size ``M``, dirty rate ``D`` and bottleneck bandwidth ``B``, and
``lambda = D / B``:

* round ``i`` sends ``M * lambda**i`` (round 0 sends all memory);
* pre-copy runs rounds ``0 .. n-1`` and then stops the VM and sends the rest,
  ``M * lambda**n``, so the **downtime** is ``M * lambda**n / B``;
* the **total data** is ``V = M * (1 - lambda**(n+1)) / (1 - lambda)``;
* the **migration time** is ``V / B``.

``n`` is the first round count whose downtime is within the allowed downtime
(QEMU stops likewise; Nova's libvirt default is 500 ms), capped at
``max_rounds`` (Xen stops after 29 rounds plus the final one). The migration
**does not converge** when ``lambda >= 1``.

Units are the caller's, as long as they agree: memory in Mbit, rates in
Mbit/s gives time in seconds. Everything is vectorised over ``B``.
"""

import numpy as np

#: Mbit in one MiB (2**20 bytes x 8 bits / 10**6). Nova sizes memory in
#: MiB ("MB") and rates are in Mbit/s: the model runs in Mbit and reports
#: volumes back in MiB.
MBIT_PER_MIB = 8.388608


def precopy(memory, dirty_rate, bandwidth, max_downtime_s, max_rounds):
    """Evaluate the pre-copy model for each bandwidth in *bandwidth*.

    :returns: dict of arrays ``lam``, ``rounds``, ``volume`` (same unit as
        *memory*), ``time_s``, ``downtime_s`` and ``converges`` (``lam < 1``
        and downtime within *max_downtime_s* after at most *max_rounds*).
        Where ``lam >= 1`` (or no bandwidth) the volume is the cap
        ``memory * (max_rounds + 1)`` and the times are ``inf``.
    """
    b = np.asarray(bandwidth, dtype=np.float64)
    m = float(memory)
    with np.errstate(divide='ignore', invalid='ignore'):
        lam = np.where(b > 0, float(dirty_rate) / b, np.inf)
        ok = lam < 1.0
        # smallest n >= 1 with M * lam**n / B <= max_downtime:
        #   n >= log(max_downtime * B / M) / log(lam)
        target = np.where(ok, max_downtime_s * b / m, 1.0)
        need = np.where((lam > 0) & ok & (target < 1.0),
                        np.ceil(np.log(target) / np.log(np.where(
                            (lam > 0) & ok, lam, 0.5))), 1.0)
        # Rounding in the logarithms can overshoot an exact boundary by one
        # round (log(0.008)/log(0.2) = 3.0000000000000004): take n - 1
        # when it already fits, with the tolerance of ``converges`` below.
        prev = need - 1.0
        lam_ok = np.where(ok, lam, 0.0)
        fits = (prev >= 1.0) & ok & (
            m * lam_ok ** prev <= max_downtime_s * b * (1 + 1e-9))
        need = np.where(fits, prev, need)
        need = np.maximum(need, 1.0)
        rounds = np.minimum(need, float(max_rounds))
        lam_n = np.where(ok, lam ** rounds, np.inf)
        volume = np.where(ok, m * (1.0 - lam_n * lam) / np.where(
            ok, 1.0 - lam, 1.0), m * (max_rounds + 1))
        downtime = np.where(ok, m * lam_n / b, np.inf)
        time_s = np.where(ok, volume / b, np.inf)
    converges = ok & (downtime <= max_downtime_s * (1 + 1e-9))
    return {'lam': lam, 'rounds': rounds.astype(np.int64), 'volume': volume,
            'time_s': time_s, 'downtime_s': downtime, 'converges': converges}
