"""``openstack netaware ...``: the OpenStackClient plugin (rebalance advisor).

* :mod:`.plugin` – what OSC needs to load the plugin;
* :mod:`.cloud` – the only module that talks to the cloud (openstacksdk);
* :mod:`.data` – configuration, topology and traffic, and the snapshot the
  core works on;
* :mod:`.commands` – the cliff commands;
* :mod:`.execute` – running a plan through Nova, with progress;
* :mod:`.plot` – the topology picture.
"""
