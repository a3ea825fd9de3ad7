"""``openstack netaware ...``: the OpenStackClient plugin (rebalance advisor).

* :mod:`.plugin` – what OSC needs to load the plugin;
* :mod:`.cloud` – the only module that talks to the cloud (openstacksdk);
* :mod:`.data` – configuration, and the view of the live cloud (with the
  topology and traffic loaded by :mod:`nova_netaware.loading`) that the
  core works on;
* :mod:`.commands` – the cliff commands;
* :mod:`.execute` – running a plan through Nova, with progress;
* :mod:`.plot` – the topology picture.
"""
