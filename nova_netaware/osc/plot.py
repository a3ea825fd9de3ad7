"""Topology picture with link utilisation as colour (matplotlib, Agg).

Layers from top to bottom: switches by distance from the hosts (spines or
cores on top), then hosts. An edge's colour is the higher utilisation of its
two directions, from :func:`nova_netaware.advisor.utilisation` (the
same routing as the scheduler). One panel per placement, e.g. before and
after a rebalance plan.
"""

import numpy as np

from nova_netaware import advisor


def _layers(topo):
    """Layer per node: hosts 0, then switches by hop distance to the
    nearest host switch + 1."""
    used = np.unique(topo.host_switch)
    d = topo.dist[:, used].min(axis=1) if len(used) else \
        np.zeros(len(topo.switch_names))
    layer = {name: int(d[i]) + 1 for i, name in enumerate(topo.switch_names)}
    for h in topo.host_names:
        layer[h] = 0
    return layer


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


def plot(eng, traffic, panels, path, title=None, vmax=1.0):
    """Draw *panels* (``[(title, placement)]``) side by side into *path*."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import networkx as nx

    topo = eng.topo
    g = topo.graph()
    layer = _layers(topo)
    for n in g.nodes:
        g.nodes[n]['layer'] = -layer[n]
    pos = nx.multipartite_layout(g, subset_key='layer', align='horizontal')
    cmap = matplotlib.colormaps['RdYlGn_r']
    norm = matplotlib.colors.Normalize(vmin=0.0, vmax=vmax)
    n_hosts = len(topo.host_names)
    width = max(6.0, min(40.0, 0.35 * n_hosts)) * len(panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 6),
                             squeeze=False)
    for ax, (ptitle, placement) in zip(axes[0], panels):
        util = edge_utilisation(eng, traffic, placement)
        edges = list(g.edges)
        colors = [util.get((a, b), util.get((b, a), 0.0)) for a, b in edges]
        nx.draw_networkx_edges(g, pos, ax=ax, edgelist=edges,
                               edge_color=[cmap(norm(c)) for c in colors],
                               width=[1.5 + 3.0 * min(c, 1.5) for c in
                                      colors])
        sw = [n for n in g.nodes if g.nodes[n]['kind'] == 'switch']
        hs = [n for n in g.nodes if g.nodes[n]['kind'] == 'host']
        load = {h: 0 for h in hs}
        for s, h in placement.items():
            if h in load:
                load[h] += 1
        nx.draw_networkx_nodes(g, pos, ax=ax, nodelist=sw, node_shape='s',
                               node_color='#4a6fa5', node_size=220)
        nx.draw_networkx_nodes(g, pos, ax=ax, nodelist=hs, node_shape='o',
                               node_color='#dddddd', edgecolors='#333333',
                               node_size=[120 + 40 * load[h] for h in hs])
        if n_hosts <= 64:
            nx.draw_networkx_labels(g, pos, ax=ax, font_size=7)
        cost = advisor.network_cost(topo, traffic, placement)
        peak = advisor.max_utilisation(eng, traffic, placement)
        ax.set_title('%s\nnetwork cost %.0f Mbit/s x hop, max link '
                     'utilisation %.0f%%' % (ptitle, cost, peak * 100),
                     fontsize=9)
        ax.axis('off')
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=list(axes[0]), fraction=0.02,
                 label='link utilisation')
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
