"""The one place that decides which nova.conf lines enable the plugin.

Two deployers use it:

* ``devstack/plugin.sh`` (``stack post-config``) runs
  ``python -m nova_netaware.deploy edits --config-file $NOVA_CONF ...``
  (:mod:`nova_netaware.deploy.cli`), which prints the edits as
  tab-separated ``set|add SECTION OPTION VALUE`` lines, and applies each
  with devstack's own ``iniset`` / ``iniadd``;
* the local stack (:mod:`nova_netaware.deploy.localstack`) calls
  :func:`configure_nova_conf`, which computes the same edits and applies them
  with :func:`apply_edits`, a Python equivalent of ``iniset`` / ``iniadd``.

The edits are computed from the file's current content, so that applying
them twice changes nothing:

* ``[filter_scheduler] available_filters`` is multi-valued: our filter is
  added as one more value (``iniadd``); if the option is absent, Nova's
  default ``nova.scheduler.filters.all_filters`` is added first so that it
  is kept;
* ``[filter_scheduler] enabled_filters`` keeps its current value (Nova's
  default if absent) with ``NetworkAwareFilter`` appended;
* ``[filter_scheduler] weight_classes`` keeps its current value (Nova's
  ``all_weighers`` if absent) with our weigher appended;
* ``[netaware]`` options are set (``iniset``); their names and values are
  checked against the options declared in :mod:`nova_netaware.conf`.

Nothing is added when it is already there.
"""

import dataclasses
import os

from oslo_config import cfg

from nova_netaware.deploy.exceptions import SettingsError

SCHED = 'filter_scheduler'
FILTER_PATH = 'nova_netaware.scheduler.filters.NetworkAwareFilter'
FILTER_NAME = 'NetworkAwareFilter'
WEIGHER_PATH = 'nova_netaware.scheduler.weights.MigrationImpactWeigher'
ALL_FILTERS = 'nova.scheduler.filters.all_filters'
ALL_WEIGHERS = 'nova.scheduler.weights.all_weighers'

# Nova 34's defaults of [filter_scheduler] enabled_filters / weight_classes,
# used only when nova itself is not importable (a devstack controller always
# has it).
_NOVA_DEFAULT_ENABLED_FILTERS = [
    'ComputeFilter', 'ComputeCapabilitiesFilter', 'ImagePropertiesFilter',
    'ServerGroupAntiAffinityFilter', 'ServerGroupAffinityFilter']
_NOVA_DEFAULT_WEIGHT_CLASSES = [ALL_WEIGHERS]


@dataclasses.dataclass(frozen=True)
class Edit:
    """One ini edit: ``set`` (devstack ``iniset``) or ``add`` (``iniadd``)."""
    op: str
    section: str
    option: str
    value: str

    def line(self):
        return '\t'.join((self.op, self.section, self.option, self.value))


def _nova_default(name, fallback):
    try:
        from nova.conf import scheduler
    except Exception:  # nova not installed here: use the known default
        return list(fallback)
    for opt in scheduler.filter_scheduler_opts:
        if opt.name == name:
            return list(opt.default)
    return list(fallback)


def read_ini(path):
    """Parse an ini file with oslo.config's own parser.

    Returns ``{section: {option: [value, ...]}}``; a multi-valued option has
    one list entry per line. A missing file reads as empty.
    """
    sections = {}
    if os.path.exists(path):
        cfg.ConfigParser(path, sections).parse()
    return sections


def _split_list(values):
    out = []
    for value in values:
        out.extend(v.strip() for v in value.split(',') if v.strip())
    return out


def netaware_values(settings):
    """Validate ``{option: value}`` for ``[netaware]`` against its opts.

    Empty values are dropped (an unset devstack variable). Returns the
    values as strings, in the order the options are declared.
    """
    from nova_netaware import conf as na_conf
    opts = {opt.dest: opt for opt in na_conf.ALL_OPTS}
    unknown = sorted(set(settings) - set(opts))
    if unknown:
        raise SettingsError('unknown [netaware] option(s): %s (known: %s)'
                         % (', '.join(unknown), ', '.join(sorted(opts))))
    out = []
    for name, opt in opts.items():
        if name not in settings:
            continue
        value = settings[name]
        if value is None or str(value) == '':
            continue
        value = str(value)
        if isinstance(value, str) and isinstance(opt, cfg.BoolOpt):
            value = value.lower()
        try:
            opt.type(value)
        except (ValueError, TypeError) as exc:
            raise SettingsError('[netaware] %s = %r: %s' % (name, value, exc))
        out.append((name, value))
    return out


def _append_edit(sched, option, item, fallback):
    """The ``set`` edit that appends ``item`` to the list option ``option``
    of ``[filter_scheduler]``, keeping its current value (Nova's default,
    or ``fallback`` without Nova, if absent); None when it is there."""
    if option in sched:
        values = _split_list(sched[option][-1:])
    else:
        values = _nova_default(option, fallback)
    if item in values and option in sched:
        return None
    if item not in values:
        values.append(item)
    return Edit('set', SCHED, option, ','.join(values))


def nova_conf_edits(current, settings=None):
    """The edits that enable the plugin in a nova.conf.

    :param current: the file as returned by :func:`read_ini`.
    :param settings: ``{option: value}`` for the ``[netaware]`` group.
    """
    sched = current.get(SCHED, {})
    edits = []

    available = [v.strip() for v in sched.get('available_filters', [])]
    if not available:
        available = _nova_default('available_filters', [ALL_FILTERS])
        for value in available:
            edits.append(Edit('add', SCHED, 'available_filters', value))
    if FILTER_PATH not in available:
        edits.append(Edit('add', SCHED, 'available_filters', FILTER_PATH))

    for option, item, fallback in (
            ('enabled_filters', FILTER_NAME, _NOVA_DEFAULT_ENABLED_FILTERS),
            ('weight_classes', WEIGHER_PATH, _NOVA_DEFAULT_WEIGHT_CLASSES)):
        edit = _append_edit(sched, option, item, fallback)
        if edit is not None:
            edits.append(edit)

    have = current.get('netaware', {})
    for name, value in netaware_values(settings or {}):
        if have.get(name, [None])[-1] != value:
            edits.append(Edit('set', 'netaware', name, value))
    return edits


# -- a Python equivalent of devstack's iniset / iniadd ----------------------

def _section_bounds(lines, section):
    start = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped == '[%s]' % section:
            start = i
        elif start is not None and stripped.startswith('['):
            return start, i
    return (start, len(lines)) if start is not None else (None, None)


def _is_option(line, option):
    head = line.split('=', 1)[0]
    return '=' in line and head.strip() == option and not head[:1].isspace()


def apply_edits(path, edits):
    """Apply edits to an ini file as devstack's helpers would.

    ``set`` replaces the option's value in place (or adds it at the top of
    the section, creating the section at the end of the file); ``add``
    appends one more line to a multi-valued option.
    """
    lines = []
    if os.path.exists(path):
        with open(path) as f:
            lines = f.read().splitlines()
    for edit in edits:
        start, end = _section_bounds(lines, edit.section)
        if start is None:
            lines += ['', '[%s]' % edit.section]
            start, end = len(lines) - 1, len(lines)
        new = '%s = %s' % (edit.option, edit.value)
        idx = [i for i in range(start + 1, end)
               if _is_option(lines[i], edit.option)]
        if edit.op == 'set':
            if idx:
                lines[idx[0]] = new
                for i in reversed(idx[1:]):
                    del lines[i]
            else:
                lines.insert(start + 1, new)
        elif edit.op == 'add':
            lines.insert((idx[-1] if idx else start) + 1, new)
        else:
            raise SettingsError('unknown edit %r' % (edit,))
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(tmp, path)


def configure_nova_conf(path, settings=None):
    """Enable the plugin in the nova.conf at ``path``; idempotent.

    Returns the edits that were applied (none on a second run).
    """
    edits = nova_conf_edits(read_ini(path), settings)
    if edits:
        apply_edits(path, edits)
    return edits
