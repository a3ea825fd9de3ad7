"""Geometry of the topology picture (nova_netaware.osc.plot, Agg): hosts
under their own switch, no crossing host uplinks, the hot links labelled
with their utilisation, every label inside the figure."""

import itertools
import random

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from nova_netaware.core.engine import Engine  # noqa: E402
from nova_netaware.core.generators import fat_tree  # noqa: E402
from nova_netaware.core.generators import leaf_spine  # noqa: E402
from nova_netaware.core.topology import Topology  # noqa: E402
from nova_netaware.core.traffic import TrafficMatrix  # noqa: E402
from nova_netaware.osc import plot  # noqa: E402


def shuffled(data, seed=3):
    """The same topology with its hosts listed in a random order (the
    picture must not depend on the file's host order)."""
    data = dict(data)
    hosts = list(data['hosts'])
    random.Random(seed).shuffle(hosts)
    data['hosts'] = hosts
    return data


TOPOLOGIES = {
    'leaf-spine': shuffled(leaf_spine(2, 4, 4, uplink_gbps=10)),
    'fat-tree': shuffled(fat_tree(4)),
    'big-fat-tree': fat_tree(8),            # 128 hosts: names hidden
}


def segments_cross(p, q, r, s):
    """Do the segments pq and rs cross (a shared end point is no
    crossing)?"""
    if {p, q} & {r, s}:
        return False

    def orient(a, b, c):
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return (v > 1e-12) - (v < -1e-12)
    return (orient(p, q, r) * orient(p, q, s) < 0 and
            orient(r, s, p) * orient(r, s, q) < 0)


@pytest.mark.parametrize('name', sorted(TOPOLOGIES))
def test_hosts_under_their_switch_and_uplinks_do_not_cross(name):
    topo = Topology(TOPOLOGIES[name])
    pos, groups = plot.layout(topo)
    uplinks = []
    for i, h in enumerate(topo.host_names):
        sw = topo.switch_names[topo.host_switch[i]]
        x0, x1 = groups[sw]
        assert x0 <= pos[h][0] <= x1, (h, sw)
        assert x0 <= pos[sw][0] <= x1
        assert pos[h][1] < pos[sw][1]
        uplinks.append((pos[sw], pos[h]))
    for (p, q), (r, s) in itertools.combinations(uplinks, 2):
        assert not segments_cross(p, q, r, s)
    # every switch above the host switches is strictly higher up
    for s in topo.switch_names:
        assert pos[s][1] >= 1.0


def test_layers_of_a_fat_tree():
    pos, _ = plot.layout(Topology(fat_tree(4)))
    assert {pos['edge-0-0'][1], pos['agg-0-0'][1], pos['core-0'][1]} == \
        {1.0, 2.0, 3.0}


def hot_case():
    """Leaf-spine, 2 spines, 2 leaves, 2 hosts each; 10 Gbit/s uplinks.
    a->b saturates compute-1's uplink at 95%, c->d loads another at 30%."""
    eng = Engine(Topology(leaf_spine(2, 2, 2, uplink_gbps=10,
                                     fabric_gbps=40)))
    placement = {'a': 'compute-1', 'b': 'compute-3', 'c': 'compute-2',
                 'd': 'compute-4'}
    tm = TrafficMatrix({'flows': [{'src': 'a', 'dst': 'b', 'mbps': 9500},
                                  {'src': 'c', 'dst': 'd', 'mbps': 3000}]})
    return eng, tm, placement


@pytest.mark.parametrize('threshold', [0.8, 0.2])
def test_hot_links_carry_their_utilisation(threshold):
    eng, tm, placement = hot_case()
    util = plot.edge_utilisation(eng, tm, placement)
    fig = plot.draw(eng, tm, [('now', placement)], link_threshold=threshold)
    try:
        labels = {t.get_gid(): t.get_text() for t in fig.axes[0].texts
                  if (t.get_gid() or '').startswith('util:')}
    finally:
        plt.close(fig)
    hot = {'util:%s|%s' % e: '%.0f%%' % (u * 100)
           for e, u in util.items() if u > threshold}
    assert hot                       # the case has hot links
    assert labels == hot
    assert labels['util:compute-1|leaf-1'] == '95%'
    assert ('util:compute-2|leaf-1' in labels) == (threshold < 0.3)


def tick_texts(fig):
    """The tick labels of every axes (checked as a whole through the
    axes' tight bounding box: an axis keeps labels of ticks it does not
    draw)."""
    out = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.majorTicks + axis.minorTicks:
                out.update((tick.label1, tick.label2))
    return out


def inside(ext, box):
    return (ext.x0 >= box.x0 - 0.5 and ext.x1 <= box.x1 + 0.5 and
            ext.y0 >= box.y0 - 0.5 and ext.y1 <= box.y1 + 0.5)


@pytest.mark.parametrize('name', sorted(TOPOLOGIES))
def test_every_text_lies_inside_the_figure(name):
    topo = Topology(TOPOLOGIES[name])
    eng = Engine(topo)
    hosts = topo.host_names
    placement = {'s%d' % i: h for i, h in enumerate(hosts)}
    tm = TrafficMatrix({'flows': [
        {'src': 's0', 'dst': 's%d' % (len(hosts) - 1), 'mbps': 9000},
        {'src': 's1', 'dst': 's2', 'mbps': 4000}]})
    fig = plot.draw(eng, tm, [('before', placement), ('after', placement)])
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box = fig.bbox
        ticks = tick_texts(fig)
        texts = [t for t in fig.findobj(matplotlib.text.Text)
                 if t.get_visible() and t.get_text() and t not in ticks]
        for ax in fig.axes:
            assert inside(ax.get_tightbbox(renderer), box)
        host_names = {t.get_text() for t in texts} & set(hosts)
        if len(hosts) > plot.HOST_LABEL_LIMIT:
            assert not host_names
            assert any('Host names hidden' in t.get_text() for t in texts)
        else:
            assert host_names == set(hosts)
        for t in texts:
            ext = t.get_window_extent(renderer)
            assert inside(ext, box), (t.get_text(), ext, box)
    finally:
        plt.close(fig)


def test_plot_writes_a_png(tmp_path):
    eng, tm, placement = hot_case()
    out = plot.plot(eng, tm, [('now', placement)], str(tmp_path / 'p.png'))
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
