"""The one place that decides which nova.conf lines enable the plugin.

Two deployers use it:

* ``devstack/plugin.sh`` (``stack post-config``) runs
  ``python -m nova_netaware.deploy edits --config-file $NOVA_CONF ...``,
  which prints the edits as tab-separated ``set|add SECTION OPTION VALUE``
  lines, and applies each with devstack's own ``iniset`` / ``iniadd``;
* the local stack (``nova_netaware.localstack``) calls
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

import argparse
import dataclasses
import os
import sys

from oslo_config import cfg

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
        raise ValueError('unknown [netaware] option(s): %s (known: %s)'
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
            raise ValueError('[netaware] %s = %r: %s' % (name, value, exc))
        out.append((name, value))
    return out


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

    if 'enabled_filters' in sched:
        enabled = _split_list(sched['enabled_filters'][-1:])
    else:
        enabled = _nova_default('enabled_filters',
                                _NOVA_DEFAULT_ENABLED_FILTERS)
    if FILTER_NAME not in enabled or 'enabled_filters' not in sched:
        if FILTER_NAME not in enabled:
            enabled.append(FILTER_NAME)
        edits.append(Edit('set', SCHED, 'enabled_filters', ','.join(enabled)))

    if 'weight_classes' in sched:
        weighers = _split_list(sched['weight_classes'][-1:])
    else:
        weighers = _nova_default('weight_classes',
                                 _NOVA_DEFAULT_WEIGHT_CLASSES)
    if WEIGHER_PATH not in weighers or 'weight_classes' not in sched:
        if WEIGHER_PATH not in weighers:
            weighers.append(WEIGHER_PATH)
        edits.append(Edit('set', SCHED, 'weight_classes', ','.join(weighers)))

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
            raise ValueError('unknown edit %r' % (edit,))
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


# -- topology of the deployment's compute hosts ------------------------------

def leaf_spine_for_hosts(hosts, hosts_per_leaf=2, spines=2, uplink_gbps=25,
                         fabric_gbps=100, latency_us=2):
    """A leaf-spine topology dict whose hosts are the given compute hosts.

    Built by the core's ``leaf_spine`` generator; its generated host names
    are replaced, in order, by ``hosts``.
    """
    hosts = list(hosts)
    if not hosts:
        raise ValueError('no compute host names given')
    leaves = -(-len(hosts) // hosts_per_leaf)
    topo = _leaf_spine(spines, leaves, hosts_per_leaf, uplink_gbps,
                       fabric_gbps, latency_us)
    generated = topo['hosts']
    if len(generated) < len(hosts):
        raise ValueError('leaf_spine gave %d hosts, %d needed'
                         % (len(generated), len(hosts)))
    topo['hosts'] = [dict(h, name=name) for h, name in zip(generated, hosts)]
    return topo


def _leaf_spine(spines, leaves, hosts_per_leaf, uplink_gbps, fabric_gbps,
                latency_us):
    from nova_netaware.core.topology import leaf_spine
    return leaf_spine(spines, leaves, hosts_per_leaf,
                      uplink_gbps=uplink_gbps, fabric_gbps=fabric_gbps,
                      latency_us=latency_us)


def write_topology(path, topo):
    import yaml
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        yaml.safe_dump(topo, f, default_flow_style=None, sort_keys=False)
    os.replace(tmp, path)


# -- command line -------------------------------------------------------------

def _settings(pairs):
    settings = {}
    for pair in pairs or []:
        if '=' not in pair:
            raise SystemExit('--set expects NAME=VALUE, got %r' % pair)
        name, value = pair.split('=', 1)
        settings[name.strip()] = value.strip()
    return settings


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m nova_netaware.deploy',
        description='The nova.conf lines that enable nova-netaware.')
    sub = parser.add_subparsers(dest='command', required=True)
    for name, text in (('edits', 'print the edits as tab-separated '
                        '"set|add SECTION OPTION VALUE" lines (devstack '
                        'applies them with iniset/iniadd)'),
                       ('apply', 'apply the edits to the file directly')):
        p = sub.add_parser(name, help=text)
        p.add_argument('--config-file', required=True,
                       help='the nova.conf to read (and, for apply, edit)')
        p.add_argument('--set', action='append', metavar='NAME=VALUE',
                       help='a [netaware] option; repeatable; an empty '
                            'VALUE is ignored')
    p = sub.add_parser('topology', help='write a leaf-spine topology file '
                       'whose hosts are the given compute host names')
    p.add_argument('--output', required=True)
    p.add_argument('--hosts-per-leaf', type=int, default=2)
    p.add_argument('--spines', type=int, default=2)
    p.add_argument('--uplink-gbps', type=float, default=25)
    p.add_argument('--fabric-gbps', type=float, default=100)
    p.add_argument('hosts', nargs='+', help='nova-compute host names')
    args = parser.parse_args(argv)
    try:
        if args.command == 'topology':
            write_topology(args.output, leaf_spine_for_hosts(
                args.hosts, args.hosts_per_leaf, args.spines,
                args.uplink_gbps, args.fabric_gbps))
            return 0
        settings = _settings(args.set)
        if args.command == 'edits':
            for edit in nova_conf_edits(read_ini(args.config_file), settings):
                print(edit.line())
        else:
            for edit in configure_nova_conf(args.config_file, settings):
                print(edit.line())
    except (ValueError, cfg.ParseError) as exc:
        print('nova-netaware deploy: %s' % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
