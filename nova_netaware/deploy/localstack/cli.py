"""``local-stack``: up | down | status | logs | env | demo | scheduler |
compute (``up`` and ``demo`` take ``--virt fake|libvirt``)."""

import argparse
import os
import sys

from nova_netaware.deploy.exceptions import StackError
from nova_netaware.deploy.localstack import settings as ls_settings
from nova_netaware.deploy.localstack import stack


def _scheduler_args(p, workers_flag):
    p.add_argument(workers_flag, dest='workers', type=int,
                   help='nova-scheduler processes ([scheduler] workers; '
                   'default $NETAWARE_STACK_SCHEDULER_WORKERS or 1)')
    p.add_argument('--ledger-backend', choices=ls_settings.LEDGER_BACKENDS,
                   help='[netaware] ledger_backend (default '
                   '$NETAWARE_STACK_LEDGER_BACKEND, else the plugin\'s '
                   'default); tooz shares it between the workers')
    p.add_argument('--ledger-url', help='[netaware] ledger_url (default '
                   '$NETAWARE_STACK_LEDGER_URL, or %s with tooz)'
                   % ls_settings.REDIS_URL)


def _virt_arg(p):
    p.add_argument('--virt', choices=ls_settings.VIRTS, default='fake',
                   help='fake: Nova\'s fake driver, fast (default); '
                   'libvirt: nova-compute on LibvirtDriver/QEMU, each in its '
                   'own namespaces with its own libvirtd, real guests and a '
                   'shaped leaf-spine (root, Debian packages; slower)')


def _intercloud(settings, action):
    import json
    from nova_netaware.deploy.localstack import twoclouds
    if not twoclouds.has_b(settings):
        raise StackError('no cloud-b: run up --virt libvirt --clouds 2')
    link = twoclouds.link(settings)
    if action == 'measure':
        out = twoclouds.measure(settings)
    elif action == 'cut':
        out = link.cut()
    elif action == 'restore':
        out = link.restore()
    else:
        out = link.state()
    print(json.dumps(out, indent=1, sort_keys=True))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='local-stack',
        description='A real OpenStack (keystone, glance, placement, nova '
                    'with fake computes, or libvirt computes with --virt '
                    'libvirt) on 127.0.0.1, with nova-netaware enabled as '
                    'the devstack plugin enables it.')
    parser.add_argument('--state-dir', help='state, config and logs '
                        '(default $NETAWARE_STACK_DIR or '
                        '<checkout>/local-stack-state)')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('up', help='start the stack and wait until every '
                       'service answers')
    p.add_argument('--computes', type=int, help='number of nova-compute '
                   'processes (default $NETAWARE_STACK_COMPUTES or 4)')
    _virt_arg(p)
    p.add_argument('--with-watcher', action='store_true',
                   help='also run OpenStack Watcher (watcher-api, '
                   'watcher-decision-engine, watcher-applier), registered '
                   'in keystone as the infra-optim service')
    p.add_argument('--timeout', type=int, default=180,
                   help='seconds to wait for each service (default 180)')
    p.add_argument('--clouds', type=int, choices=(1, 2), default=1,
                   help='2: also cloud-b, a second complete cloud in '
                   '<state dir>/cloud-b (own keystone, glance, placement, '
                   'nova, libvirt computes), joined to this one by a shaped, '
                   'measured veth link; clouds.yaml gets cloud-a and cloud-b '
                   '(--virt libvirt only; the replica agent\'s two clouds)')
    p.add_argument('--b-computes', type=int, help='computes of cloud-b '
                   '(default $NETAWARE_STACK_B_COMPUTES or 2)')
    _scheduler_args(p, '--scheduler-workers')
    p = sub.add_parser('scheduler', help='restart nova-scheduler with other '
                       '[scheduler] workers / [netaware] ledger options')
    _scheduler_args(p, '--workers')
    p.add_argument('--timeout', type=int, default=180)
    p = sub.add_parser('compute', help='stop a compute (a host failure) or '
                       'start it again')
    p.add_argument('action', choices=('stop', 'start'))
    p.add_argument('host', help='e.g. netaware-cmp1')
    p.add_argument('--kill', action='store_true', help='stop with SIGKILL '
                   '(a crash) instead of SIGTERM')
    p.add_argument('--timeout', type=int, default=180)
    sub.add_parser('down', help='stop the processes that up started '
                   '(both clouds after up --clouds 2)')
    p = sub.add_parser('intercloud', help='the link between cloud-a and '
                       'cloud-b: show, cut, restore or measure it')
    p.add_argument('action', choices=('show', 'cut', 'restore', 'measure'))
    sub.add_parser('status', help='show each process and API')
    p = sub.add_parser('logs', help='show the log directory and log tails')
    p.add_argument('service', nargs='?')
    p.add_argument('-n', '--lines', type=int, default=20)
    sub.add_parser('env', help='print the exports that point the openstack '
                   'CLI at the stack')
    p = sub.add_parser('demo', help='up (if needed), boot a demo workload, '
                       'migrate a chatty server and explain where it went')
    p.add_argument('--computes', type=int)
    _virt_arg(p)
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
            scheduler_workers=getattr(args, 'workers', None),
            ledger_backend=getattr(args, 'ledger_backend', None),
            ledger_url=getattr(args, 'ledger_url', None),
            virt=getattr(args, 'virt', None),
            with_watcher=getattr(args, 'with_watcher', False))
        st = stack.Stack(settings)
        if args.command == 'up' and args.clouds == 2:
            from nova_netaware.deploy.localstack import twoclouds
            return twoclouds.up(stack.Stack, settings, timeout=args.timeout,
                                b_computes=args.b_computes)
        if args.command == 'up':
            return st.up(timeout=args.timeout)
        if args.command == 'intercloud':
            return _intercloud(settings, args.action)
        if args.command == 'scheduler':
            return st.restart_scheduler(timeout=args.timeout)
        if args.command == 'compute':
            if args.action == 'stop':
                return st.stop_compute(args.host, kill=args.kill)
            return st.start_compute(args.host, timeout=args.timeout)
        if args.command == 'down':
            from nova_netaware.deploy.localstack import twoclouds
            return twoclouds.down(stack.Stack, settings)
        if args.command == 'status':
            return st.status()
        if args.command == 'logs':
            return st.logs(args.service, args.lines)
        if args.command == 'env':
            return st.env()
        if args.command == 'demo' and settings.virt == 'libvirt':
            from nova_netaware.deploy.localstack.libvirt import demo
            return demo.run(st)
        if args.command == 'demo':
            from nova_netaware.deploy.localstack import demo
            return demo.run(st)
    except StackError as exc:
        print('local-stack: %s' % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2
