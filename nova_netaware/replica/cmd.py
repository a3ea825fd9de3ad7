"""``nova-netaware-replica-agent``: run the agent or command a running one.

    nova-netaware-replica-agent --config-file replica.conf run
    nova-netaware-replica-agent --config-file replica.conf status
    nova-netaware-replica-agent --config-file replica.conf switchover
    nova-netaware-replica-agent --config-file replica.conf copy \
        pause|unpause|state
    nova-netaware-replica-agent replicate --from CLOUD:SERVER --to CLOUD \
        --config-dir DIR [--flavor F] [--host H] [--os-config-file Y] ...

``copy`` acts on the local copy through the configured cloud driver alone
(no agent, no data plane): for an operator checking the driver's set-up and
for the tests; do not use it on a copy whose agent is running.
"""

import json
import os
import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging

from nova_netaware.replica import agent as agent_mod
from nova_netaware.replica import conf as conf_mod
from nova_netaware.replica import control
from nova_netaware.replica.errors import AgentError
from nova_netaware.replica.replicate import ReplicateError

LOG = logging.getLogger(__name__)


def _add_parsers(subparsers):
    subparsers.add_parser('run', help='run the agent in the foreground')
    subparsers.add_parser('status', help='print the status of the running '
                                         'agent as JSON')
    subparsers.add_parser('switchover', help='switch the active copy over '
                                             '(from either side)')
    p = subparsers.add_parser('copy', help='pause, unpause or show the '
                                           'local copy through the cloud '
                                           'driver (not while the agent '
                                           'runs)')
    p.add_argument('action', choices=['pause', 'unpause', 'state'])


command_opt = cfg.SubCommandOpt('command', title='Commands',
                                handler=_add_parsers,
                                help='run | status | switchover | copy')


def make_conf(argv):
    conf = cfg.ConfigOpts()
    conf_mod.register_opts(conf)
    logging.register_options(conf)
    conf.register_cli_opt(command_opt)
    conf(argv, project='nova-netaware',
         prog='nova-netaware-replica-agent')
    # oslo.config checks types and choices on access: touch every option
    # now so a bad value is reported at once, naming the option
    for opt in conf_mod.ALL_OPTS:
        getattr(conf.replica, opt.dest)
    return conf


def set_priority(nice):
    """Give this process (and the threads it starts later) the nice
    value ``nice``; returns the value in effect."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as e:
        LOG.warning('cannot set the agent\'s nice value to %d (%s); it '
                    'stays at %d', nice, e, os.getpriority(
                        os.PRIO_PROCESS, 0))
    return os.getpriority(os.PRIO_PROCESS, 0)


def set_realtime(priority):
    """Put this thread, and the threads and commands it starts later, in
    the SCHED_FIFO class at ``priority`` (1-99); returns ``(policy,
    priority)`` in effect, policy ``'fifo'`` or ``'other'``."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as e:
        LOG.warning('cannot give the agent real-time priority %d (%s); '
                    'it runs in the normal time-sharing class', priority,
                    e)
    return agent_mod.scheduling()


def run(conf):
    logging.setup(conf, 'nova-netaware-replica-agent')
    # the switchover thread must not wait a default 5 ms GIL slice behind
    # the data plane thread
    sys.setswitchinterval(0.0005)
    if conf.replica.nice is not None:
        set_priority(conf.replica.nice)
    if conf.replica.realtime_priority:
        set_realtime(conf.replica.realtime_priority)
    agent = agent_mod.Agent(conf)
    done = threading.Event()

    def on_signal(signum, frame):
        LOG.info('signal %d: stopping', signum)
        done.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.start()
    print('agent %s ready: %s epoch %d' % (agent.id, agent.state,
                                           agent.epoch), flush=True)
    while not done.wait(0.5):
        pass
    agent.stop()
    return 0


def copy_command(conf, action):
    """Pause, unpause or show the copy with the cloud driver; a dict."""
    import time
    from nova_netaware.replica import drivers
    c = conf.replica
    driver = drivers.load('nova_netaware.replica.cloud_drivers',
                          c.cloud_driver, conf, None)
    # first call: the driver finds its copy and connects (not timed)
    before = driver.is_running(c.copy_name)
    t0 = time.monotonic()
    if action != 'state':
        getattr(driver, action)(c.copy_name)
    res = {'ok': True, 'action': action, 'cloud_driver': c.cloud_driver,
           'seconds': round(time.monotonic() - t0, 4),
           'running_before': before,
           'running': driver.is_running(c.copy_name)}
    if action != 'state' and hasattr(driver, 'wait_settled'):
        res['settle'] = driver.wait_settled()
    if hasattr(driver, 'api_view'):
        res['api_view'] = list(driver.api_view())
    if hasattr(driver, 'stats'):
        res['driver_counters'] = driver.stats()
    return res


def replicate_parser():
    import argparse
    p = argparse.ArgumentParser(
        prog='nova-netaware-replica-agent replicate',
        description='Create the paused replica of a Nova server in another '
                    'cloud (snapshot, glance-to-glance transfer, boot, '
                    'pause) and write the [replica] configuration of both '
                    'agents of the pair. Progress goes to stderr, the '
                    'result (JSON) to stdout.')
    p.add_argument('--from', dest='src', required=True,
                   metavar='CLOUD:SERVER',
                   help='source cloud of clouds.yaml and server name or ID')
    p.add_argument('--to', dest='dst', required=True, metavar='CLOUD',
                   help='destination cloud of clouds.yaml')
    p.add_argument('--config-dir', required=True,
                   help='directory for <service>.active.conf and '
                        '<service>.standby.conf')
    p.add_argument('--os-config-file', metavar='CLOUDS_YAML',
                   help='clouds.yaml (default: OS_CLIENT_CONFIG_FILE, then '
                        'openstacksdk\'s standard locations)')
    p.add_argument('--flavor', help='destination flavor (default: the '
                                    'source server\'s flavor name)')
    p.add_argument('--host', help='destination compute host (default: the '
                                  'destination scheduler chooses)')
    p.add_argument('--network', help='destination network (default: the '
                                     'source server\'s network names)')
    p.add_argument('--name', help='replica server name (default: '
                                  '<server>-replica)')
    p.add_argument('--service-name', help='[replica] service_name of the '
                                          'pair (default: the server name)')
    p.add_argument('--pause-control', choices=('api', 'libvirt'),
                   default='api',
                   help='how the openstack driver pauses the replica (and '
                        'the openstack_control written for the pair)')
    p.add_argument('--libvirt-uri', default='qemu:///system',
                   help='libvirt URI of the replica\'s hypervisor (with '
                        '--pause-control libvirt)')
    p.add_argument('--coordination-url',
                   help='tooz URL for both agents, e.g. redis://HOST:6379')
    p.add_argument('--wait-guest', choices=('auto', 'yes', 'no'),
                   default='auto',
                   help='before pausing the replica, wait until its guest '
                        'endpoint answers (Nova says ACTIVE before the guest '
                        'has booted); auto: with --pause-control libvirt, '
                        'where the command runs on the replica\'s hypervisor')
    p.add_argument('--guest-port', type=int, default=7001,
                   help='the guest endpoint\'s port (--wait-guest)')
    p.add_argument('--keep-snapshot', action='store_true',
                   help='keep the source snapshot image')
    p.add_argument('--timeout', type=float, default=600.0,
                   help='seconds for each wait (snapshot, upload, boot)')
    return p


def replicate_command(argv):
    from nova_netaware.replica import replicate
    a = replicate_parser().parse_args(argv)
    cloud, sep, server = a.src.partition(':')
    if not sep or not cloud or not server:
        raise ValueError('--from must be CLOUD:SERVER, not %r' % a.src)
    r = replicate.Replicator(
        cloud, server, a.dst, a.config_dir, config_file=a.os_config_file,
        flavor=a.flavor, host=a.host, network=a.network, name=a.name,
        service_name=a.service_name, pause_control=a.pause_control,
        libvirt_uri=a.libvirt_uri, coordination_url=a.coordination_url,
        keep_snapshot=a.keep_snapshot, timeout=a.timeout,
        wait_guest=a.wait_guest, guest_port=a.guest_port)
    res = r.run()
    res['ok'] = True
    return res


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ['replicate']:
            # no agent configuration: its own arguments
            res = replicate_command(argv[1:])
            print(json.dumps(res, indent=2, sort_keys=True, default=str))
            return 0
        conf = make_conf(argv)
        cmd = conf.command.name
        if cmd == 'run':
            return run(conf)
        if cmd == 'copy':
            logging.setup(conf, 'nova-netaware-replica-agent')
            res = copy_command(conf, conf.command.action)
        else:
            res = control.control_call(conf.replica.control_socket, cmd)
    except ReplicateError as e:     # a step failed, after its cleanup
        print('nova-netaware-replica-agent: error: %s' % e, file=sys.stderr)
        return 1
    except (cfg.Error, AgentError, ValueError) as e:
        print('nova-netaware-replica-agent: error: %s' % e, file=sys.stderr)
        return 2
    except Exception as e:  # clear message for every other failure too
        print('nova-netaware-replica-agent: error: %s: %s'
              % (type(e).__name__, e), file=sys.stderr)
        return 1
    print(json.dumps(res, indent=2, sort_keys=True, default=str))
    return 0 if res.get('ok') else 1


if __name__ == '__main__':
    sys.exit(main())
