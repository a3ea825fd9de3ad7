"""OpenStackClient plugin module (entry point ``openstack.cli.extension``:
``netaware = nova_netaware.osc.plugin``).

OSC imports this module at start-up for every command, so it imports nothing
heavy. The commands are in namespace ``openstack.netaware.v1``.
"""

import logging

LOG = logging.getLogger(__name__)

DEFAULT_API_VERSION = '1'
API_VERSION_OPTION = 'os_netaware_api_version'
API_NAME = 'netaware'
API_VERSIONS = {'1': 'nova_netaware.osc.cloud.Cloud'}


def make_client(instance):
    """The ``client_manager.netaware`` object: a thin adapter over the
    openstacksdk connection OSC already holds (clouds.yaml, ``--os-*``)."""
    from nova_netaware.osc import cloud
    return cloud.Cloud(instance.sdk_connection)


def build_option_parser(parser):
    """Global option of the plugin (OSC convention)."""
    parser.add_argument(
        '--os-netaware-api-version',
        metavar='<netaware-api-version>',
        default=None,
        help='nova-netaware command set version, default=%s'
             % DEFAULT_API_VERSION)
    return parser
