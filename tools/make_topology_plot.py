"""Regenerate docs/topology-plot.png: ``openstack netaware topology plot``'s
picture of the example datacenter (nova_netaware/data/example), before and
after the advisor's plan (default knobs).

    python tools/make_topology_plot.py [output.png]
"""

import os
import sys

from nova_netaware import advisor
from nova_netaware.cmd.cli import example_dir
from nova_netaware.core.request import Server
from nova_netaware.core.traffic import TrafficMatrix
from nova_netaware.loading import data
from nova_netaware.loading import placement_file
from nova_netaware.osc import plot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    out = argv[0] if argv else os.path.join(ROOT, 'docs', 'topology-plot.png')
    ex = example_dir()
    eng = data.load_engine(os.path.join(ex, 'topology.yaml'), 0)
    traffic = TrafficMatrix.from_file(os.path.join(ex, 'traffic.yaml'))
    snap = placement_file.from_file(os.path.join(ex, 'placement.yaml'))
    servers = {s.uuid: Server(s.uuid, memory_mb=s.memory_mb, vcpus=s.vcpus)
               for s in snap.servers}
    plan = advisor.plan(eng, traffic, snap.placement, servers, snap.hosts)
    n = len(plan.moves)
    panels = [('current placement', snap.placement),
              ('after the plan (%d migration%s)' % (n, '' if n == 1 else 's'),
               plan.placement_after)]
    plot.plot(eng, traffic, panels, out)
    print('wrote %s' % out)


if __name__ == '__main__':
    main(sys.argv[1:])
