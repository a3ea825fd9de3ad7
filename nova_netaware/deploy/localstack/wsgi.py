"""gunicorn entry points of the local stack's API services.

Keystone and Nova parse ``sys.argv`` when their WSGI application is built;
under gunicorn that holds gunicorn's own arguments and the worker dies with
"unrecognized arguments". Each factory below resets ``sys.argv`` first.
gunicorn calls them as ``nova_netaware.deploy.localstack.wsgi:keystone()``.
Each service finds its configuration through its usual environment variable
(OS_KEYSTONE_CONFIG_DIR, OS_PLACEMENT_CONFIG_DIR, OS_GLANCE_CONFIG_DIR,
OS_NOVA_CONFIG_DIR), which the launcher sets; Watcher, which has no such
variable, gets its ``--config-file`` from ``NETAWARE_WATCHER_CONF``.
"""

import sys


def _reset_argv(prog):
    sys.argv = [prog]


def keystone():
    _reset_argv('keystone')
    from keystone.wsgi import api
    return api.application


def placement():
    _reset_argv('placement-api')
    from placement.wsgi import api
    return api.application


def glance():
    _reset_argv('glance-api')
    from glance.wsgi import api
    return api.application


def nova():
    _reset_argv('nova-api')
    from nova.wsgi import osapi_compute
    return osapi_compute.application


def watcher():
    import os
    # watcher.api.wsgi parses sys.argv: give it the stack's watcher.conf
    sys.argv = ['watcher-api', '--config-file',
                os.environ['NETAWARE_WATCHER_CONF']]
    from watcher.api import wsgi
    return wsgi.initialize_wsgi_app()


def network_standin():
    import logging
    logging.basicConfig(level=logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s %(message)s')
    from nova_netaware.deploy.localstack import netstub
    return netstub.application


def network_ports():
    """The libvirt stack's network stand-in, with ports bound
    ``vif_type=tap`` (see libvirt/netstandin.py)."""
    from nova_netaware.deploy.localstack.libvirt import netstandin
    return netstandin.app()
