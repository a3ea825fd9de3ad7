"""Deploying nova-netaware: the nova.conf lines, and a local OpenStack.

* :mod:`~nova_netaware.deploy.nova_conf`: the one place that decides which
  nova.conf lines enable the plugin (edits computed from the file's current
  content, and a Python equivalent of devstack's ``iniset`` / ``iniadd``);
* :mod:`~nova_netaware.deploy.topology`: the topology file of the
  deployment's compute hosts (the core's leaf-spine generator, hosts named);
* :mod:`~nova_netaware.deploy.cli`: ``python -m nova_netaware.deploy
  edits|apply|topology``, which ``devstack/plugin.sh`` runs;
* :mod:`~nova_netaware.deploy.exceptions`: the deployment errors;
* :mod:`~nova_netaware.deploy.localstack`: the multi-process local stack
  behind ``devstack/local-stack``.
"""
