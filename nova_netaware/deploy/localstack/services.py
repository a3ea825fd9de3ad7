"""The services under the stack and the set-up of the OpenStack ones.

* MariaDB and RabbitMQ, machine services: started if they are not running,
  then given the stack's databases, user and vhost;
* database schemas (keystone, nova, placement, glance; watcher with
  ``--with-watcher``) and keystone's
  bootstrap, by each project's own ``*-manage`` command;
* the service users, services and endpoints in keystone (with
  ``--with-watcher``, also ``watcher``, type ``infra-optim``);
* the command lines of the API services (gunicorn) and Nova's daemons;
* :func:`connect`, an openstacksdk connection to the stack as its admin.
"""

import concurrent.futures as cf
import os
import shutil
import subprocess

from nova_netaware.deploy.localstack.processes import port_open
from nova_netaware.deploy.localstack.processes import run
from nova_netaware.deploy.localstack.processes import say
from nova_netaware.deploy.localstack.processes import wait_for
from nova_netaware.deploy.localstack.settings import CLOUD
from nova_netaware.deploy.localstack.settings import DB_PASSWORD
from nova_netaware.deploy.localstack.settings import DB_USER
from nova_netaware.deploy.localstack.settings import REGION

# -- MariaDB and RabbitMQ -----------------------------------------------------


def mysql(sql, log, timeout=60):
    return run(['mysql', '-u', 'root', '--connect-timeout=10', '-e', sql],
               log, timeout=timeout)


def ensure_mariadb(s):
    log = s.log('mariadb-setup')
    ping = ['mysqladmin', '-u', 'root', '--connect-timeout=2', 'ping']
    if subprocess.run(ping, capture_output=True, timeout=10).returncode != 0:
        say('MariaDB is not running: starting it')
        os.makedirs('/run/mysqld', exist_ok=True)
        shutil.chown('/run/mysqld', 'mysql', 'mysql')
        run(['start-stop-daemon', '--start', '--oknodo', '--background',
             '--exec', '/usr/sbin/mariadbd'], log, timeout=30)
        wait_for('MariaDB', lambda: subprocess.run(
            ping, capture_output=True, timeout=10).returncode == 0, 60,
            log='/var/log/mysql/error.log'
            if os.path.exists('/var/log/mysql/error.log') else log)
    grants = []
    for host in ('localhost', '127.0.0.1'):
        grants.append("CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s'"
                      % (DB_USER, host, DB_PASSWORD))
        grants.append("GRANT ALL PRIVILEGES ON `netaware\\_%%`.* TO '%s'@'%s'"
                      % (DB_USER, host))
    stmts = []
    for db in s.dbs:
        stmts.append('DROP DATABASE IF EXISTS %s' % s.db_name(db))
        stmts.append('CREATE DATABASE %s CHARACTER SET utf8mb4'
                     % s.db_name(db))
    mysql('; '.join(grants + stmts), log)


def ensure_rabbitmq(s):
    log = s.log('rabbitmq-setup')
    if not port_open(5672):
        say('RabbitMQ is not running: starting it')
        run(['rabbitmq-server', '-detached'], log, timeout=60)
        wait_for('RabbitMQ', lambda: port_open(5672), 90, interval=1,
                 log=log)
    ctl = ['rabbitmqctl', '-q', '--timeout', '60']
    # a fresh vhost each time: no queues left from an earlier stack
    run(ctl + ['delete_vhost', s.vhost], log, timeout=90, check=False)
    run(ctl + ['add_vhost', s.vhost], log, timeout=90)
    run(ctl + ['set_permissions', '-p', s.vhost, 'guest', '.*', '.*', '.*'],
        log, timeout=90)


def ensure_redis(s):
    """Start the machine's Redis (as tools/services.sh does) when the
    stack's ledger is tooz on the local Redis and nothing listens there;
    a ledger_url elsewhere is left alone (an unreachable store is a case
    the plugin handles: see the README)."""
    from nova_netaware.deploy.localstack.settings import REDIS_URL
    if s.ledger_backend != 'tooz' or s.ledger_url != REDIS_URL \
            or port_open(6379):
        return
    log = s.log('redis-setup')
    say('Redis is not running: starting it (the tooz ledger uses it)')
    os.makedirs('/var/lib/redis', exist_ok=True)
    os.makedirs('/var/log/redis', exist_ok=True)
    run(['redis-server', '--daemonize', 'yes', '--bind', '127.0.0.1',
         '-::1', '--port', '6379', '--save', '', '--appendonly', 'no',
         '--dir', '/var/lib/redis', '--logfile', '/var/log/redis/ci.log'],
        log, timeout=30)
    wait_for('Redis', lambda: port_open(6379), 30, log=log)


# -- command lines ------------------------------------------------------------

def gunicorn(s, procs, name, factory, port, env):
    """Start the API ``name``: gunicorn serving ``wsgi.<factory>``."""
    argv = [s.bin('gunicorn'), '-w', '1', '--threads', '4',
            '--no-control-socket', '--timeout', '120',
            '--graceful-timeout', '5',
            '-b', '127.0.0.1:%d' % port, '--access-logfile', '-',
            '--error-logfile', '-', '--name', name,
            'nova_netaware.deploy.localstack.wsgi:%s' % factory]
    return procs.start(name, argv, env=env)


def nova_cmd(s, *args):
    """A Nova command line (``args[0]`` is the binary) on the stack's
    nova.conf."""
    return [s.bin(args[0]), '--config-file',
            s.conf('nova', 'nova.conf')] + list(args[1:])


# -- database schemas ---------------------------------------------------------

def setup_keystone(s):
    conf = ['--config-file', s.conf('keystone', 'keystone.conf')]
    log = s.log('keystone-setup')
    km = s.bin('keystone-manage')
    with cf.ThreadPoolExecutor(3) as pool:
        # the key repositories do not need the database: all three at once
        jobs = [pool.submit(run, [km] + conf + ['db_sync'], log)]
        for what in ('fernet_setup', 'credential_setup'):
            jobs.append(pool.submit(run, [km] + conf + [
                what, '--keystone-user', 'root', '--keystone-group', 'root'],
                log))
        for job in jobs:
            job.result()
    run([km] + conf + ['bootstrap', '--bootstrap-password', s.password,
                       '--bootstrap-admin-url', s.url('keystone'),
                       '--bootstrap-public-url', s.url('keystone'),
                       '--bootstrap-internal-url', s.url('keystone'),
                       '--bootstrap-region-id', REGION], log)


def setup_nova_db(s):
    log = s.log('nova-setup')
    run(nova_cmd(s, 'nova-manage', 'api_db', 'sync'), log)
    run(nova_cmd(s, 'nova-manage', 'cell_v2', 'map_cell0',
                 '--database_connection', s.db_url('nova_cell0')), log)
    run(nova_cmd(s, 'nova-manage', 'cell_v2', 'create_cell', '--name',
                 'cell1', '--verbose'), log)
    run(nova_cmd(s, 'nova-manage', 'db', 'sync'), log)


def setup_placement_db(s):
    run([s.bin('placement-manage'), '--config-file',
         s.conf('placement', 'placement.conf'), 'db', 'sync'],
        s.log('placement-setup'))


def setup_watcher_db(s):
    """Watcher's schema, by its own ``watcher-db-manage upgrade``."""
    run([s.bin('watcher-db-manage'), '--config-file',
         s.conf('watcher', 'watcher.conf'), 'upgrade'],
        s.log('watcher-setup'))


def watcher_cmd(s, binary):
    """The command line of a Watcher daemon on the stack's watcher.conf."""
    return [s.bin(binary), '--config-file', s.conf('watcher', 'watcher.conf'),
            '--log-file', s.log(binary)]


def setup_glance_db(s):
    run([s.bin('glance-manage'), '--config-file',
         s.conf('glance', 'glance-api.conf'), 'db_sync'],
        s.log('glance-setup'))


# -- keystone: service users, services, endpoints -----------------------------

def register_services(s):
    """Service users, services and endpoints, in one process (fast)."""
    import openstack
    conn = openstack.connect(
        auth_url=s.auth_url, username='admin', password=s.password,
        project_name='admin', user_domain_name='Default',
        project_domain_name='Default', region_name=REGION,
        identity_api_version='3')
    idc = conn.identity
    project = idc.find_project('service') or idc.create_project(
        name='service', domain_id='default')
    admin_role = idc.find_role('admin')
    services = [
        ('nova', 'compute', s.url('nova-api', '/v2.1')),
        ('placement', 'placement', s.url('placement')),
        ('glance', 'image', s.url('glance')),
        # the network stand-in (see netstub.py), not Neutron
        ('neutron', 'network', s.url('network')),
    ]
    if s.with_watcher:
        services.append(('watcher', 'infra-optim', s.url('watcher-api')))
    for user_name, stype, url in services:
        user = idc.find_user(user_name, domain_id='default') or \
            idc.create_user(name=user_name, password=s.password,
                            domain_id='default',
                            default_project_id=project.id)
        idc.assign_project_role_to_user(project, user, admin_role)
        name = user_name if user_name != 'neutron' else 'network-standin'
        svc = idc.find_service(name) or idc.create_service(
            name=name, type=stype, enabled=True)
        for interface in ('public', 'internal', 'admin'):
            idc.create_endpoint(service_id=svc.id, interface=interface,
                                url=url, region_id=REGION)


def connect(s):
    """An openstacksdk connection as the admin of clouds.yaml."""
    import openstack.config
    import openstack.connection
    region = openstack.config.OpenStackConfig(
        config_files=[s.clouds_yaml]).get_one(cloud=CLOUD)
    return openstack.connection.Connection(config=region)
