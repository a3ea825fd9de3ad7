"""Reading topology and traffic files (YAML or JSON) into plain data.

Kept apart from validation (:mod:`.topology`, :mod:`.traffic`) and from the
generators (:mod:`.generators`), as networkx keeps ``readwrite/`` apart.
"""

import json

import yaml

from nova_netaware.core.exceptions import TopologyError

_SAFE_LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)


def load_data_file(path, error=TopologyError, raw=None):
    """Read a YAML or JSON file (by its extension) into plain data.

    :param error: the :class:`~.exceptions.DataError` subclass raised when
        the file cannot be read or parsed (the caller's kind of data); the
        message names the file and the cause.
    :param raw: the file's bytes, when the caller has read them already.
    """
    if raw is None:
        try:
            with open(path, 'rb') as f:
                raw = f.read()
        except OSError as e:
            raise error('cannot read %s: %s' % (path, e.strerror or e))
    try:
        if path.endswith('.json'):
            return json.loads(raw)
        # libyaml's parser when PyYAML has it (several times faster on a
        # large fabric); the same safe constructors either way
        return yaml.load(raw, Loader=_SAFE_LOADER)
    except (ValueError, yaml.YAMLError) as e:
        raise error('%s is not valid %s: %s' % (
            path, 'JSON' if path.endswith('.json') else 'YAML', e))
