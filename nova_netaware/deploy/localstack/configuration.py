"""The configuration files of the local stack, one function per service.

nova.conf is written for the stack (fake computes, the stack's databases,
keystone and RabbitMQ vhost), and then the plugin's lines are added to it
by :func:`nova_netaware.deploy.nova_conf.configure_nova_conf`, the same code
whose edits the devstack plugin applies with ``iniset`` / ``iniadd``.
"""

import os
import shutil

from nova_netaware.deploy import nova_conf
from nova_netaware.deploy import topology
from nova_netaware.deploy.localstack.settings import CLOUD
from nova_netaware.deploy.localstack.settings import REGION

SERVICES = ('keystone', 'placement', 'glance', 'nova')

# Nova's log levels of noisy libraries (the stack runs Nova with debug on).
_NOVA_LOG_LEVELS = (
    'amqp=WARN', 'amqplib=WARN', 'oslo.messaging=INFO',
    'oslo_messaging=INFO', 'sqlalchemy=WARN', 'stevedore=WARN',
    'keystoneauth=WARN', 'keystonemiddleware=WARN',
    'urllib3.connectionpool=WARN', 'oslo_policy=WARN',
    'oslo_concurrency.lockutils=WARN', 'routes.middleware=WARN',
    'oslo.privsep.daemon=INFO', 'os_brick=WARN')

_CLOUD_ENTRY = (
    '  %(cloud)s:\n'
    '    auth:\n'
    '      auth_url: %(auth)s\n'
    '      username: admin\n'
    '      password: %(pw)s\n'
    '      project_name: admin\n'
    '      user_domain_name: Default\n'
    '      project_domain_name: Default\n'
    '    region_name: %(region)s\n'
    '    identity_api_version: 3\n'
    '    interface: public\n')


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def ini(sections):
    out = []
    for section, opts in sections.items():
        out.append('[%s]' % section)
        for key, value in opts.items():
            out.append('%s = %s' % (key, value))
        out.append('')
    return '\n'.join(out)


def _authtoken(s, user):
    return {'www_authenticate_uri': s.url('keystone'),
            'auth_url': s.url('keystone'), 'auth_type': 'password',
            'project_domain_name': 'Default', 'user_domain_name': 'Default',
            'project_name': 'service', 'username': user,
            'password': s.password, 'service_token_roles_required': 'True'}


def _client(s, user):
    return {'auth_type': 'password', 'auth_url': s.url('keystone'),
            'project_domain_name': 'Default', 'user_domain_name': 'Default',
            'project_name': 'service', 'username': user,
            'password': s.password, 'region_name': REGION}


def netaware_settings(s):
    """The [netaware] values, as the devstack plugin's settings give them.

    The fake stack reads the static traffic file (its servers send no
    packets: the demo and the tests write the rates). The libvirt stack
    reads the measured matrix: the hypervisors' flow meters through the
    stack's Prometheus (:func:`nova_netaware.flowmeter.stack.
    netaware_options`), fixed IPs resolved through the ports API of the
    stack's clouds.yaml cloud."""
    values = {'topology_file': s.topology_file, 'traffic_source': 'static',
              'static_traffic_file': s.traffic_file,
              'weight_multiplier': '10.0'}
    if s.virt == 'libvirt':
        from nova_netaware.flowmeter import stack as meters
        del values['static_traffic_file']
        values.update(meters.netaware_options(meters.prometheus_url(s),
                                              CLOUD))
    values.update(ledger_settings(s))
    return values


def ledger_settings(s):
    """The ``[netaware]`` ledger options the stack was asked for (none by
    default: the plugin's defaults apply)."""
    out = {}
    if s.ledger_backend:
        out['ledger_backend'] = s.ledger_backend
    if s.ledger_url:
        out['ledger_url'] = s.ledger_url
    return out


def scheduler_edits(s):
    """The nova.conf edits that give nova-scheduler the stack's workers
    and ledger options (for :meth:`Stack.restart_scheduler`), checked
    against the plugin's declared options like every [netaware] value."""
    edits = [nova_conf.Edit('set', 'scheduler', 'workers',
                            str(s.scheduler_workers))]
    for name, value in nova_conf.netaware_values(ledger_settings(s)):
        edits.append(nova_conf.Edit('set', 'netaware', name, value))
    return edits


def write_keystone_conf(s):
    ks = os.path.join(s.data, 'keystone')
    write(s.conf('keystone', 'keystone.conf'), ini({
        'DEFAULT': {'debug': 'False'},
        'database': {'connection': s.db_url('keystone')},
        'token': {'provider': 'fernet'},
        'fernet_tokens': {'key_repository': os.path.join(ks, 'fernet-keys')},
        'credential': {'key_repository': os.path.join(ks, 'credential-keys')},
        'cache': {'enabled': 'False'},
        # bcrypt's minimum cost: every CLI call authenticates with a
        # password, and the default cost (12) makes keystone the bottleneck
        # of a small machine. Not for production.
        'identity': {'password_hash_rounds': '4'},
    }))


def write_placement_conf(s):
    write(s.conf('placement', 'placement.conf'), ini({
        'DEFAULT': {'debug': 'False'},
        'placement_database': {'connection': s.db_url('placement')},
        'api': {'auth_strategy': 'keystone'},
        'keystone_authtoken': _authtoken(s, 'placement'),
    }))


def write_glance_conf(s):
    glance_dir = os.path.join(s.data, 'glance')
    write(s.conf('glance', 'glance-api.conf'), ini({
        'DEFAULT': {'debug': 'False', 'enabled_backends': 'fs:file',
                    'bind_host': '127.0.0.1',
                    'bind_port': str(s.ports['glance'])},
        'glance_store': {'default_backend': 'fs'},
        'fs': {'filesystem_store_datadir': os.path.join(glance_dir,
                                                        'images')},
        'os_glance_staging_store': {
            'filesystem_store_datadir': os.path.join(glance_dir, 'staging')},
        'os_glance_tasks_store': {
            'filesystem_store_datadir': os.path.join(glance_dir, 'tasks')},
        'database': {'connection': s.db_url('glance')},
        'keystone_authtoken': _authtoken(s, 'glance'),
        'paste_deploy': {'flavor': 'keystone'},
        'oslo_concurrency': {'lock_path': os.path.join(glance_dir, 'lock')},
    }))
    shutil.copy(os.path.join(s.venv, 'etc', 'glance', 'glance-api-paste.ini'),
                s.conf('glance', 'glance-api-paste.ini'))


def write_nova_conf(s):
    """nova.conf without the plugin's lines (see :func:`write_plugin`)."""
    shutil.copy(os.path.join(s.venv, 'etc', 'nova', 'api-paste.ini'),
                s.conf('nova', 'api-paste.ini'))
    nova_dir = os.path.join(s.data, 'nova')
    write(s.conf('nova', 'nova.conf'), ini({
        'DEFAULT': {
            'debug': 'True',
            'transport_url': 'rabbit://guest:guest@127.0.0.1:5672/%s'
                             % s.vhost,
            'compute_driver': 'fake.FakeDriverWithoutFakeNodes',
            'state_path': nova_dir, 'my_ip': '127.0.0.1',
            'instances_path': os.path.join(nova_dir, 'instances'),
            'default_log_levels': ','.join(_NOVA_LOG_LEVELS),
        },
        'api': {'auth_strategy': 'keystone'},
        'wsgi': {'api_paste_config': s.conf('nova', 'api-paste.ini')},
        'api_database': {'connection': s.db_url('nova_api')},
        'database': {'connection': s.db_url('nova_cell1')},
        'keystone_authtoken': _authtoken(s, 'nova'),
        'placement': _client(s, 'placement'),
        'glance': {'region_name': REGION},
        'neutron': dict(_client(s, 'neutron'),
                        service_metadata_proxy='False'),
        'scheduler': {'workers': str(s.scheduler_workers),
                      'discover_hosts_in_cells_interval': '-1'},
        'conductor': {'workers': '1'},
        'oslo_concurrency': {'lock_path': os.path.join(nova_dir, 'lock')},
        'oslo_messaging_rabbit': {'heartbeat_timeout_threshold': '0'},
        'compute': {'cpu_allocation_ratio': '16.0'},
        # demo and test workloads share the admin project
        'quota': {'instances': '-1', 'cores': '-1', 'ram': '-1'},
        'os_vif_ovs': {'ovsdb_connection': 'tcp:127.0.0.1:6640'},
        'notifications': _nova_notifications(s),
        'oslo_messaging_notifications': {
            'driver': 'messagingv2' if s.with_watcher else 'noop'},
    }))


def _nova_notifications(s):
    """Without Watcher Nova sends no notifications. With it, Nova sends
    its versioned notifications (topic ``versioned_notifications`` on the
    ``nova`` exchange), which Watcher's decision engine listens to
    (``nova.versioned_notifications``, its default ``notification_topics``)
    to keep its compute data model current between full syncs."""
    if not s.with_watcher:
        return {'notification_format': 'unversioned'}
    return {'notification_format': 'versioned',
            'notify_on_state_change': 'vm_and_task_state'}


#: How often (seconds) Watcher's decision engine rebuilds its compute data
#: model from Nova (Watcher's default: 3600); notifications update it in
#: between. Short, so that an audit right after a boot or a migration sees
#: the cloud as it is.
WATCHER_MODEL_PERIOD = 10


def write_watcher_conf(s):
    """watcher.conf, written like the other services' configurations:
    the stack's database and RabbitMQ vhost, keystone_authtoken for the
    API, ``[watcher_clients_auth]`` (the service user Watcher calls Nova
    and Placement with), the ``[nova]`` / ``[placement]`` adapter settings,
    a compute-only data model (no Cinder here) rebuilt every
    :data:`WATCHER_MODEL_PERIOD` seconds, the weight planner, and the
    nova-netaware strategy pointed at the stack's nova.conf."""
    watcher_dir = os.path.join(s.data, 'watcher')
    os.makedirs(watcher_dir, exist_ok=True)
    adapter = {'region_name': REGION, 'valid_interfaces': 'public'}
    write(s.conf('watcher', 'watcher.conf'), ini({
        'DEFAULT': {
            'debug': 'True',
            'transport_url': 'rabbit://guest:guest@127.0.0.1:5672/%s'
                             % s.vhost,
            'control_exchange': 'watcher',
            'state_path': watcher_dir,
            'default_log_levels': ','.join(_NOVA_LOG_LEVELS),
        },
        'api': {'host': '127.0.0.1', 'port': str(s.ports['watcher-api'])},
        'database': {'connection': s.db_url('watcher')},
        'keystone_authtoken': _authtoken(s, 'watcher'),
        'watcher_clients_auth': _client(s, 'watcher'),
        # Nova through openstacksdk: the session of [watcher_clients_auth],
        # these adapter settings; migrations polled every second
        'nova': dict(adapter, migration_interval='1.0'),
        'placement': adapter,
        'placement_client': {'region_name': REGION, 'interface': 'public'},
        'collector': {'collector_plugins': 'compute'},
        'watcher_cluster_data_model_collectors.compute': {
            'period': str(WATCHER_MODEL_PERIOD)},
        'watcher_decision_engine': {
            'notification_topics': 'nova.versioned_notifications'},
        'watcher_planner': {'planner': 'weight'},
        # nova-netaware's strategy reads the [netaware] options of the
        # stack's nova.conf, the scheduler's (docs/advisor.md, Watcher)
        'watcher_strategies.network_aware_rebalance': {
            'config_files': s.conf('nova', 'nova.conf')},
        'oslo_concurrency': {'lock_path': os.path.join(watcher_dir,
                                                       'lock')},
        'oslo_messaging_rabbit': {'heartbeat_timeout_threshold': '0'},
        'oslo_messaging_notifications': {'driver': 'noop'},
    }))


def stack_topology(s):
    """The plugin's topology of the stack: with the fake driver, the hosts
    on a leaf-spine; with libvirt, the lab's leaf-spine, whose capacities
    the fabric's links are shaped to (libvirt/lab.py)."""
    if s.virt == 'libvirt':
        from nova_netaware.deploy.localstack.libvirt import lab
        return lab.default_topology(len(s.hosts),
                                    host_prefix=s.profile.host_prefix)
    return topology.leaf_spine_for_hosts(s.hosts)


def write_plugin(s):
    """The plugin's files and nova.conf lines, by the same code the devstack
    plugin runs: the topology (:func:`stack_topology`), on the fake stack
    an empty traffic file (unless one is there), and the [filter_scheduler]
    and [netaware] lines."""
    topology.write_topology(s.topology_file, stack_topology(s))
    if s.virt != 'libvirt' and not os.path.exists(s.traffic_file):
        write(s.traffic_file, 'flows: []\n')
    nova_conf.configure_nova_conf(s.conf('nova', 'nova.conf'),
                                  netaware_settings(s))


def write_compute_confs(s):
    """One ``nova-compute-<host>.conf`` per fake compute: its host name and
    its own state directory. (The libvirt computes' files need the lab's
    addresses: libvirt/novastack.py writes them.)"""
    if s.virt == 'libvirt':
        return
    nova_dir = os.path.join(s.data, 'nova')
    for host in s.hosts:
        write(s.conf('nova', 'nova-compute-%s.conf' % host), ini({
            'DEFAULT': {'host': host,
                        'state_path': os.path.join(nova_dir, host),
                        'instances_path': os.path.join(nova_dir, host,
                                                       'instances')},
        }))
        os.makedirs(os.path.join(nova_dir, host), exist_ok=True)


def write_clouds_yaml(s, others=()):
    """clouds.yaml: cloud ``netaware-local`` (this stack's admin), and the
    ``(name, settings)`` of ``others`` (two clouds: :mod:`.twoclouds`)."""
    write(s.clouds_yaml, 'clouds:\n' + ''.join(
        _CLOUD_ENTRY % {'cloud': name, 'auth': st.auth_url,
                        'pw': st.password, 'region': REGION}
        for name, st in ((CLOUD, s),) + tuple(others)))


def write_configs(s):
    """Every configuration file of the stack."""
    os.makedirs(s.netaware_dir, exist_ok=True)
    for d in SERVICES + (('watcher',) if s.with_watcher else ()):
        os.makedirs(os.path.join(s.etc, d), exist_ok=True)
    write_keystone_conf(s)
    write_placement_conf(s)
    write_glance_conf(s)
    write_nova_conf(s)
    write_plugin(s)
    write_compute_confs(s)
    write_clouds_yaml(s)
    if s.with_watcher:
        write_watcher_conf(s)
