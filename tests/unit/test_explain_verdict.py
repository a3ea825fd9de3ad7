"""issue 16: explain says whether moving would help, against the current
host's own cost (the current host judged as a candidate)."""

from nova_netaware.core.engine import Candidate
from nova_netaware.core.engine import Engine
from nova_netaware.core.engine import Params
from nova_netaware.core.engine import Server
from nova_netaware.core.topology import leaf_spine
from nova_netaware.core.topology import Topology
from nova_netaware.core.traffic import TrafficMatrix
from nova_netaware.osc.commands import _verdict_on_moving


def _case(host_of_a):
    eng = Engine(Topology(leaf_spine(1, 2, 2, uplink_gbps=10,
                                     fabric_gbps=10)))
    placement = {'a': host_of_a, 'x': 'compute-3'}
    tm = TrafficMatrix({'flows': [{'src': 'x', 'dst': 'a', 'mbps': 3000}]})
    srv = Server('a', memory_mb=1024, vcpus=1, is_move=True)
    others = [Candidate(h, 8192, 8) for h in eng.topo.host_names
              if h != host_of_a]
    ev = eng.evaluate(tm, placement, srv, others, Params())
    cur = eng.evaluate(tm, placement, srv, [Candidate(host_of_a, 8192, 8)],
                       Params())
    return ev, cur


def test_moving_helps_when_the_best_host_has_a_lower_mif():
    ev, cur = _case('compute-1')            # a is 4 hops from its peer
    helps, text = _verdict_on_moving(ev, cur, 'compute-1')
    assert helps is True
    assert ev.winner == 'compute-3'
    assert text == ('Moving would help: compute-3 has MIF %.4f, below the '
                    'current host compute-1 (%.4f).' % (
                        ev.mif[ev.hosts.index('compute-3')], cur.mif[0]))
    assert cur.migration[0] == 0.0


def test_moving_does_not_help_next_to_the_peer():
    ev, cur = _case('compute-3')            # a is with its peer already
    helps, text = _verdict_on_moving(ev, cur, 'compute-3')
    assert helps is False
    assert text.startswith('Moving would not help: the current host '
                           'compute-3 has MIF %.4f; the best passing host, '
                           % cur.mif[0])


def test_cannot_tell_without_the_current_host_in_the_topology():
    ev, _ = _case('compute-1')
    helps, text = _verdict_on_moving(ev, None, 'compute-99')
    assert helps is None
    assert 'compute-99 is not in the topology' in text
