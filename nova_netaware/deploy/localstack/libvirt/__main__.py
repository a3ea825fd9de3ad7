"""``python -m nova_netaware.deploy.localstack.libvirt up|down|status``: the libvirt lab
alone (namespaced hypervisors on a leaf-spine, no OpenStack)."""

import argparse
import json
import sys

from nova_netaware.deploy.localstack.libvirt import lab


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m nova_netaware.deploy.localstack.libvirt')
    parser.add_argument('--state-dir')
    parser.add_argument('command', choices=('up', 'down', 'status'))
    parser.add_argument('--hosts', type=int, default=3)
    args = parser.parse_args(argv)
    the_lab = lab.Lab(lab.LabSettings(args.state_dir))
    try:
        if args.command == 'up':
            the_lab.up(lab.default_topology(args.hosts))
        elif args.command == 'down':
            the_lab.down()
        else:
            state = the_lab.state
            if not state.get('namespaces'):
                print('the libvirt lab is not up')
                return 3
            print(json.dumps({'namespaces': state['namespaces'],
                              'holders': state['holders'],
                              'hosts': {h: v['ip'] for h, v in
                                        state['plan']['hosts'].items()}},
                             indent=1))
    except lab.LabError as exc:
        print('local-stack libvirt lab: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
