"""The ``static`` traffic source: ``[netaware] static_traffic_file``.

The file is re-read when its modification time, size or inode changes, so an
edit takes effect on the next scheduling request without a restart.
"""

from nova_netaware.core.exceptions import DataError
from nova_netaware.core.traffic import TrafficMatrix
from nova_netaware.loading.data import FileCache
from nova_netaware.traffic import base


class StaticTrafficSource(base.TrafficSource):

    def __init__(self, conf):
        super().__init__(conf)
        self._cache = FileCache(
            lambda path, key: TrafficMatrix.from_file(path, version=key))

    def get(self):
        path = self.conf.netaware.static_traffic_file
        if not path:
            raise DataError('[netaware] static_traffic_file is not set')
        return self._cache.get(path)
