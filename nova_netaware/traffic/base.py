"""Interface of traffic sources (stevedore namespace
``nova_netaware.traffic_sources``)."""

import abc


class TrafficSource(metaclass=abc.ABCMeta):
    """Gives the current :class:`~nova_netaware.core.traffic.TrafficMatrix`.

    Loaded once per scheduler process with the global ``CONF``; ``get`` is
    called on every scheduling request and should be cheap when nothing has
    changed. It raises on failure; the caller logs it once and falls back.
    """

    def __init__(self, conf):
        self.conf = conf

    @abc.abstractmethod
    def get(self):
        """Return the current TrafficMatrix (its ``version`` must change
        whenever its contents do)."""
