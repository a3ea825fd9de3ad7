"""``local-stack``: up | down | status | logs | env | demo."""

import argparse
import os
import sys

from nova_netaware.deploy.exceptions import StackError
from nova_netaware.deploy.localstack import settings as ls_settings
from nova_netaware.deploy.localstack import stack


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='local-stack',
        description='A real OpenStack (keystone, glance, placement, nova '
                    'with fake computes) on 127.0.0.1, with nova-netaware '
                    'enabled as the devstack plugin enables it.')
    parser.add_argument('--state-dir', help='state, config and logs '
                        '(default $NETAWARE_STACK_DIR or '
                        '<checkout>/local-stack-state)')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('up', help='start the stack and wait until every '
                       'service answers')
    p.add_argument('--computes', type=int, help='number of nova-compute '
                   'processes (default $NETAWARE_STACK_COMPUTES or 4)')
    p.add_argument('--with-watcher', action='store_true',
                   help='also run OpenStack Watcher (watcher-api, '
                   'watcher-decision-engine, watcher-applier), registered '
                   'in keystone as the infra-optim service')
    p.add_argument('--timeout', type=int, default=180,
                   help='seconds to wait for each service (default 180)')
    sub.add_parser('down', help='stop the processes that up started')
    sub.add_parser('status', help='show each process and API')
    p = sub.add_parser('logs', help='show the log directory and log tails')
    p.add_argument('service', nargs='?')
    p.add_argument('-n', '--lines', type=int, default=20)
    sub.add_parser('env', help='print the exports that point the openstack '
                   'CLI at the stack')
    p = sub.add_parser('demo', help='up (if needed), boot a demo workload, '
                       'migrate a chatty server and explain where it went')
    p.add_argument('--computes', type=int)
    args = parser.parse_args(argv)
    # mariadbd, rabbitmq-server, start-stop-daemon live in sbin
    path = os.environ.get('PATH', '').split(os.pathsep)
    for d in ('/usr/sbin', '/sbin'):
        if d not in path:
            path.append(d)
    os.environ['PATH'] = os.pathsep.join(path)
    try:
        settings = ls_settings.Settings(
            args.state_dir, computes=getattr(args, 'computes', None),
            with_watcher=getattr(args, 'with_watcher', False))
        st = stack.Stack(settings)
        if args.command == 'up':
            return st.up(timeout=args.timeout)
        if args.command == 'down':
            return st.down()
        if args.command == 'status':
            return st.status()
        if args.command == 'logs':
            return st.logs(args.service, args.lines)
        if args.command == 'env':
            return st.env()
        if args.command == 'demo':
            from nova_netaware.deploy.localstack import demo
            return demo.run(st)
    except StackError as exc:
        print('local-stack: %s' % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2
