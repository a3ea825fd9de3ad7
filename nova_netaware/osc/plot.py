"""Topology picture with link utilisation as colour (matplotlib, Agg).

Layered drawing, top to bottom: switches by hop distance from the hosts'
switches (spines, cores or aggregation on top, leaves or edge switches just
above the hosts), then the hosts, each group directly under its own switch.
Switches at the host level keep the topology file's order; hosts follow the
order of their switch, so no two host uplinks cross. A switch higher up sits
at the rank of the mean position of the switches below it (barycentre
ordering), spread evenly over the width.

An edge's colour is the higher utilisation of its two directions, from
:func:`nova_netaware.advisor.utilisation` (the same routing as the
scheduler); a link above the advisor's link threshold carries its
utilisation as a number. One panel per placement, e.g. before and after a
rebalance plan. Every label is a plain unclipped text artist inside the
figure (constrained layout); with many hosts the host names are hidden and
the caption says so.
"""

import numpy as np

from nova_netaware import advisor
from nova_netaware.core.topology import UNREACHABLE

#: Above this many hosts the host names are not drawn (the caption says so).
HOST_LABEL_LIMIT = 64


def _layers(topo):
    """Layer per node: hosts 0, then switches by hop distance to the
    nearest host switch + 1 (a switch with no path to any host switch is
    put with the host switches, layer 1)."""
    used = np.unique(topo.host_switch)
    d = topo.dist[:, used].min(axis=1) if len(used) else \
        np.zeros(len(topo.switch_names), dtype=int)
    layer = {name: int(d[i]) + 1 if d[i] < UNREACHABLE else 1
             for i, name in enumerate(topo.switch_names)}
    for h in topo.host_names:
        layer[h] = 0
    return layer


def layout(topo):
    """``(pos, groups)``: ``pos[node] = (x, y)`` with y the layer, and
    ``groups[switch] = (x0, x1)``, the span of the host slots under each
    switch of layer 1 (hosts one unit apart, a switch without hosts gets one
    empty slot)."""
    layer = _layers(topo)
    under = {s: [] for s in topo.switch_names}
    for i, h in enumerate(topo.host_names):
        under[topo.switch_names[topo.host_switch[i]]].append(h)
    pos, groups, x = {}, {}, 0.0
    for s in topo.switch_names:
        if layer[s] != 1:
            continue
        hosts = under[s]
        groups[s] = (x, x + max(1, len(hosts)))
        for j, h in enumerate(hosts):
            pos[h] = (x + j + 0.5, 0.0)
        pos[s] = ((groups[s][0] + groups[s][1]) / 2.0, 1.0)
        x = groups[s][1]
    width = max(x, 1.0)
    g = topo.graph()
    for lay in range(2, max(layer.values()) + 1):
        row = [s for s in topo.switch_names if layer[s] == lay]
        below = [[pos[n][0] for n in g.neighbors(s)
                  if layer[n] == lay - 1] for s in row]
        bary = [np.mean(b) if b else width / 2.0 for b in below]
        order = sorted(range(len(row)), key=lambda i: (bary[i], i))
        for rank, i in enumerate(order):
            pos[row[i]] = (width * (rank + 0.5) / len(row), float(lay))
    return pos, groups


def edge_utilisation(eng, traffic, placement):
    """``{(node, node): utilisation}`` for host uplinks and fabric links
    (the higher of the two directions)."""
    topo, fab = eng.topo, eng.fabric
    up, links = advisor.utilisation(eng, traffic, placement)
    out = {}
    for i, h in enumerate(topo.host_names):
        out[(h, topo.switch_names[topo.host_switch[i]])] = float(up[i])
    for k in range(fab.m):
        a = topo.switch_names[fab.eu[k]]
        b = topo.switch_names[fab.ev[k]]
        key = (a, b) if (b, a) not in out else (b, a)
        out[key] = max(out.get(key, 0.0), float(links[k]))
    return out


def _font_size(n_hosts):
    """Label size in points: 9 for a few hosts, down to 5 for many."""
    return float(np.clip(10.0 - n_hosts / 12.0, 5.0, 9.0))


def _draw_edges(ax, pos, util, cmap, norm, threshold, fs):
    """Edges coloured (and thickened) by utilisation; the hot ones (above
    *threshold*) with their utilisation as a number at their middle."""
    from matplotlib.collections import LineCollection
    edges = sorted(util.items(), key=lambda kv: kv[1])   # hot ones on top
    segs = [(pos[a], pos[b]) for (a, b), _ in edges]
    vals = [u for _, u in edges]
    ax.add_collection(LineCollection(
        segs, colors=[cmap(norm(u)) for u in vals],
        linewidths=[0.8 + 3.0 * min(u, 1.5) for u in vals], zorder=1))
    for ((a, b), u) in edges:
        if u <= threshold:
            continue
        (xa, ya), (xb, yb) = pos[a], pos[b]
        ax.text((xa + xb) / 2.0, (ya + yb) / 2.0, '%.0f%%' % (u * 100),
                fontsize=fs, fontweight='bold', ha='center', va='center',
                zorder=4, clip_on=False, gid='util:%s|%s' % (a, b),
                bbox=dict(boxstyle='round,pad=0.15', fc='white',
                          ec=cmap(norm(u)), lw=1.0))


def _draw_nodes(ax, topo, pos, placement, fs, host_labels):
    """Switches as blue squares named above, hosts as grey circles sized by
    their number of servers, named below (unless *host_labels* is off)."""
    load = {h: 0 for h in topo.host_names}
    for h in placement.values():
        if h in load:
            load[h] += 1
    sw = topo.switch_names
    ax.scatter([pos[s][0] for s in sw], [pos[s][1] for s in sw], marker='s',
               s=140, c='#4a6fa5', edgecolors='#1f3a60', zorder=3,
               clip_on=False)
    hs = topo.host_names
    ax.scatter([pos[h][0] for h in hs], [pos[h][1] for h in hs], marker='o',
               s=[40 + 25 * load[h] for h in hs], c='#dddddd',
               edgecolors='#333333', zorder=3, clip_on=False)
    for s in sw:
        ax.annotate(s, pos[s], xytext=(0, 8), textcoords='offset points',
                    ha='center', va='bottom', fontsize=fs, zorder=5,
                    annotation_clip=False,
                    bbox=dict(boxstyle='round,pad=0.1', fc='white',
                              ec='none', alpha=0.8))
    if host_labels:
        for h in hs:
            ax.annotate(h, pos[h], xytext=(0, -9),
                        textcoords='offset points', ha='center', va='top',
                        rotation=90, fontsize=fs, zorder=5,
                        annotation_clip=False)


def _caption(threshold, n_hosts, host_labels):
    text = ('Link colour and width: utilisation, the higher of both '
            'directions; links above the link threshold (%.0f%%) carry it as '
            'a number. Host size: servers on the host.' % (threshold * 100))
    if not host_labels:
        text += ('\nHost names hidden (%d hosts, more than %d); hosts are '
                 'drawn in the order of their switch.'
                 % (n_hosts, HOST_LABEL_LIMIT))
    return text


def draw(eng, traffic, panels, title=None, vmax=1.0, link_threshold=None):
    """The figure: *panels* (``[(title, placement)]``) side by side."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    topo = eng.topo
    threshold = (advisor.AdvisorParams().link_threshold
                 if link_threshold is None else link_threshold)
    pos, _ = layout(topo)
    n_hosts = len(topo.host_names)
    n_layers = int(max(y for _, y in pos.values())) + 1
    fs = _font_size(n_hosts)
    host_labels = n_hosts <= HOST_LABEL_LIMIT
    cmap = matplotlib.colormaps['RdYlGn_r']
    norm = matplotlib.colors.Normalize(vmin=0.0, vmax=vmax)
    width = max(6.0, min(24.0, 0.45 * n_hosts + 2.0))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(width * len(panels) + 1.0,
                                 1.5 * n_layers + 2.5),
        squeeze=False, layout='constrained')
    for ax, (ptitle, placement) in zip(axes[0], panels):
        util = edge_utilisation(eng, traffic, placement)
        _draw_edges(ax, pos, util, cmap, norm, threshold, fs)
        _draw_nodes(ax, topo, pos, placement, fs, host_labels)
        cost = advisor.network_cost(topo, traffic, placement)
        peak = advisor.max_utilisation(eng, traffic, placement)
        ax.set_title('%s\nnetwork cost %.0f Mbit/s x hop, max link '
                     'utilisation %.0f%%' % (ptitle, cost, peak * 100),
                     fontsize=10)
        ax.autoscale_view()
        ax.margins(x=0.02, y=0.08)
        ax.axis('off')
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    bar = fig.colorbar(sm, ax=list(axes[0]), fraction=0.025, pad=0.01,
                       shrink=0.8, label='link utilisation')
    bar.ax.axhline(threshold, color='black', lw=1.2)
    bar.ax.yaxis.set_major_formatter(
        matplotlib.ticker.PercentFormatter(xmax=1.0, decimals=0))
    fig.supxlabel(_caption(threshold, n_hosts, host_labels), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot(eng, traffic, panels, path, title=None, vmax=1.0,
         link_threshold=None):
    """Draw *panels* (``[(title, placement)]``) side by side into *path*;
    *link_threshold* (default: the advisor's) decides which links show
    their utilisation as a number."""
    import matplotlib.pyplot as plt
    fig = draw(eng, traffic, panels, title=title, vmax=vmax,
               link_threshold=link_threshold)
    try:
        fig.savefig(path, dpi=120, bbox_inches='tight', pad_inches=0.15)
    finally:
        plt.close(fig)
    return path
