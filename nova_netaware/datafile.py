"""Small shared pieces for data files: errors, change-aware cache, log-once."""

import collections
import os
import threading


class DataError(Exception):
    """The plugin cannot use its data for this request."""


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


class FileCache(object):
    """Re-reads a file only when its (mtime, size, inode) changes."""

    def __init__(self, loader):
        self._loader = loader
        self._key = None
        self._value = None
        self._error = None

    def get(self, path):
        try:
            st = os.stat(path)
        except OSError as e:
            raise DataError('cannot read %s: %s' % (path, e.strerror))
        key = (path, st.st_mtime_ns, st.st_size, st.st_ino)
        if key != self._key:
            self._key = key
            try:
                self._value, self._error = self._loader(path, key), None
            except Exception as e:  # noqa - any loader failure is data error
                self._value, self._error = None, str(e)
        if self._error:
            raise DataError(self._error)
        return self._value
