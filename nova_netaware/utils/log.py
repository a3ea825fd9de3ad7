"""Logging helper shared by the scheduler plugin, the traffic sources and the
loading code: log each distinct problem once."""

import collections
import threading


class LogOnce(object):
    """Log each distinct message once (bounded memory)."""

    def __init__(self, logger, limit=4096):
        self._log = logger
        self._seen = collections.OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def __call__(self, level, msg, *args):
        key = (level, msg % args if args else msg)
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = True
            if len(self._seen) > self._limit:
                self._seen.popitem(last=False)
        self._log.log(level, msg, *args)
        return True
