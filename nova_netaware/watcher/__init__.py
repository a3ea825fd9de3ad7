"""OpenStack Watcher plugins: the ``network_cost`` goal and the
``network_aware_rebalance`` strategy (docs/advisor.md, "Watcher").

A thin adapter: the strategy reads the cloud exactly as ``openstack netaware
rebalance`` does (:func:`nova_netaware.osc.data.read_cloud`, the
``[netaware]`` options, the traffic source plugins, Nova and Placement
through openstacksdk) and takes the same plan
(:meth:`nova_netaware.osc.data.CloudView.plan`); it only turns the plan into
Watcher ``migrate`` actions and efficacy indicators. Only this package
imports Watcher (the ``[watcher]`` extra).

* :mod:`.goal` – the goal, its efficacy indicators and specification;
* :mod:`.strategy` – the strategy.
"""
