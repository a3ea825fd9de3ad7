"""A small real OpenStack on 127.0.0.1 with nova-netaware enabled.

``devstack/local-stack up|down|status|logs|env|demo`` (or
``python -m nova_netaware.localstack``) runs keystone, glance, placement,
nova-api, nova-conductor, nova-scheduler and several fake nova-compute
processes from the Python environment, each as its own process, configured
as the devstack plugin configures a devstack (see nova_netaware.deploy).
"""
