"""A small real OpenStack on 127.0.0.1 with nova-netaware enabled.

``devstack/local-stack up|down|status|logs|env|demo`` (or
``python -m nova_netaware.deploy.localstack``) runs keystone, glance,
placement, nova-api, nova-conductor, nova-scheduler and several fake
nova-compute processes from the Python environment, each as its own
process, configured as the devstack plugin configures a devstack (see
:mod:`nova_netaware.deploy.nova_conf`).

* ``settings``: the state directory, ports and names;
* ``processes``: the process table, start/stop, probes and log triage;
* ``services``: MariaDB, RabbitMQ, database schemas, keystone registration,
  the API and daemon command lines, an SDK connection;
* ``configuration``: the configuration files, one function per service;
* ``stack``: ``up`` in named steps, ``down``, ``status``, ``logs``, ``env``;
* ``cli``: the ``local-stack`` command; ``demo``: its ``demo`` sub-command;
* ``wsgi`` and ``netstub``: gunicorn entry points and the network stand-in;
* ``snapshot``: a placement snapshot of the running cloud.
"""
