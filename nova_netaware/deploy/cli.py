"""``python -m nova_netaware.deploy``: edits | apply | topology.

``devstack/plugin.sh`` runs ``edits`` (and applies the printed lines with
devstack's ``iniset`` / ``iniadd``) and ``topology``; ``apply`` edits the
file directly, as the local stack does.
"""

import argparse
import sys

from oslo_config import cfg

from nova_netaware.deploy import nova_conf
from nova_netaware.deploy import topology


def _settings(pairs):
    settings = {}
    for pair in pairs or []:
        if '=' not in pair:
            raise SystemExit('--set expects NAME=VALUE, got %r' % pair)
        name, value = pair.split('=', 1)
        settings[name.strip()] = value.strip()
    return settings


def _parser():
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
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if args.command == 'topology':
            topology.write_topology(args.output, topology.leaf_spine_for_hosts(
                args.hosts, args.hosts_per_leaf, args.spines,
                args.uplink_gbps, args.fabric_gbps))
            return 0
        settings = _settings(args.set)
        if args.command == 'edits':
            edits = nova_conf.nova_conf_edits(
                nova_conf.read_ini(args.config_file), settings)
        else:
            edits = nova_conf.configure_nova_conf(args.config_file, settings)
        for edit in edits:
            print(edit.line())
    except (ValueError, cfg.ParseError) as exc:
        print('nova-netaware deploy: %s' % exc, file=sys.stderr)
        return 2
    return 0
