"""STAND-IN agent of the lab's network stand-in (:mod:`.netstandin`): the
part of a Neutron L2 agent that wires a new VIF. NOT a Neutron agent.

Runs inside one host's network namespace. Nova's libvirt driver creates
a tap device ``tap<port id[:11]>`` for each ``vif_type=tap`` port (and
deletes it when the port is unplugged); this loop puts every tap device
that has no master on the guest bridge ``br-guests`` and sets it up, as
neutron-linuxbridge-agent did. Polls ``ip -j link`` every 0.3 s.

Usage (the lab starts it): ``ip netns exec nvl-H python -m
nova_netaware.deploy.localstack.libvirt.tapagent``.
"""

import json
import subprocess
import sys
import time

from nova_netaware.deploy.localstack.libvirt import fabric


def unattached_taps(links):
    return [link['ifname'] for link in links
            if link['ifname'].startswith('tap') and not link.get('master')]


def main(bridge=fabric.GUEST_BRIDGE, interval=0.3):
    print('tapagent: attaching tap* devices to %s' % bridge, flush=True)
    while True:
        out = subprocess.run(['ip', '-j', 'link', 'show'],
                             capture_output=True, text=True).stdout
        for tap in unattached_taps(json.loads(out or '[]')):
            res = subprocess.run(['ip', 'link', 'set', tap, 'master', bridge,
                                  'up'], capture_output=True, text=True)
            print('tapagent: %s -> %s: %s' % (
                tap, bridge, 'ok' if res.returncode == 0
                else res.stderr.strip()), flush=True)
        time.sleep(interval)


if __name__ == '__main__':
    sys.exit(main())
