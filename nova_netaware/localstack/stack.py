"""Bring up, check and stop the local stack.

Layout of the state directory (``$NETAWARE_STACK_DIR``, by default
``<checkout>/local-stack-state``, which is git-ignored):

* ``etc/``: keystone.conf, placement.conf, glance-api.conf, nova.conf (with
  the plugin lines written by :mod:`nova_netaware.deploy`) and one
  ``nova-compute-<host>.conf`` per compute;
* ``logs/``: one log file per service (``logs/<service>.log``);
* ``netaware/``: the plugin's topology and traffic files;
* ``clouds.yaml``: cloud ``netaware-local`` (admin);
* ``procs.json``: the processes this launcher started (pid, start time),
  so that ``down`` stops those and nothing else.

MariaDB and RabbitMQ are machine services: ``up`` starts them if they are
not running and ``down`` leaves them running. The stack uses its own
databases (``netaware_*``) and RabbitMQ vhost (``netaware``).
"""

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from nova_netaware import deploy

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CLOUD = 'netaware-local'
REGION = 'RegionOne'
PASSWORD = 'netaware'
DB_USER = 'netaware'
DB_PASSWORD = 'netaware'
VHOST = 'netaware'
DBS = ('keystone', 'glance', 'placement', 'nova_api', 'nova_cell0',
       'nova_cell1')
PORT_NAMES = ('keystone', 'nova-api', 'placement', 'glance', 'network')


class StackError(Exception):
    pass


def _default_state_dir():
    if os.path.isdir(os.path.join(PKG_ROOT, '.git')) or os.path.exists(
            os.path.join(PKG_ROOT, 'setup.cfg')):
        return os.path.join(PKG_ROOT, 'local-stack-state')
    return os.path.expanduser('~/.local/share/nova-netaware/local-stack')


class Settings(object):
    def __init__(self, state_dir=None, computes=None, port_base=None):
        self.state_dir = os.path.abspath(
            state_dir or os.environ.get('NETAWARE_STACK_DIR')
            or _default_state_dir())
        self.computes = int(computes or os.environ.get(
            'NETAWARE_STACK_COMPUTES', 4))
        if self.computes < 2:
            raise StackError('at least 2 computes are needed')
        base = int(port_base or os.environ.get('NETAWARE_STACK_PORT_BASE',
                                               25000))
        self.ports = {name: base + i for i, name in enumerate(PORT_NAMES)}
        self.bindir = os.path.dirname(sys.executable)
        self.venv = os.path.dirname(self.bindir)
        self.etc = os.path.join(self.state_dir, 'etc')
        self.logs = os.path.join(self.state_dir, 'logs')
        self.data = os.path.join(self.state_dir, 'data')
        self.netaware_dir = os.path.join(self.state_dir, 'netaware')
        self.topology_file = os.path.join(self.netaware_dir, 'topology.yaml')
        self.traffic_file = os.path.join(self.netaware_dir, 'traffic.yaml')
        self.clouds_yaml = os.path.join(self.state_dir, 'clouds.yaml')
        self.procs_file = os.path.join(self.state_dir, 'procs.json')
        self.hosts = ['netaware-cmp%d' % (i + 1)
                      for i in range(self.computes)]

    def url(self, name, path=''):
        return 'http://127.0.0.1:%d%s' % (self.ports[name], path)

    @property
    def auth_url(self):
        return self.url('keystone', '/v3')

    def db_url(self, name):
        return ('mysql+pymysql://%s:%s@127.0.0.1/netaware_%s?charset=utf8'
                % (DB_USER, DB_PASSWORD, name))

    def log(self, service):
        return os.path.join(self.logs, service + '.log')

    def bin(self, name):
        return os.path.join(self.bindir, name)


# -- output -------------------------------------------------------------------

_T0 = time.monotonic()


def say(msg):
    print('[%6.1fs] %s' % (time.monotonic() - _T0, msg), flush=True)


# -- processes ----------------------------------------------------------------

def _env(extra=None):
    """Environment of the stack's processes: this checkout's nova_netaware
    first on the path (nova-scheduler loads the plugin from it), no OS_*
    client variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (PKG_ROOT, os.environ.get('PYTHONPATH')) if p)
    env.update(extra or {})
    return env


def _proc_start_time(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(')', 1)[1].split()[19])


def _alive(rec):
    """The recorded process is still the one we started (pid not reused)."""
    start = _proc_start_time(rec['pid'])
    if start is None or start != rec['start_time']:
        return False
    with open('/proc/%d/stat' % rec['pid']) as f:
        state = f.read().rsplit(')', 1)[1].split()[0]
    return state != 'Z'


class Procs(object):
    """procs.json: the processes the launcher started."""

    def __init__(self, settings):
        self.s = settings
        self.records = []
        if os.path.exists(settings.procs_file):
            with open(settings.procs_file) as f:
                self.records = json.load(f)

    def save(self):
        tmp = self.s.procs_file + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.records, f, indent=1)
        os.replace(tmp, self.s.procs_file)

    def start(self, name, argv, env=None):
        log = self.s.log(name)
        full_env = _env(env)
        with open(log, 'ab') as out:
            out.write(('\n==== %s: starting %s\n' % (
                time.strftime('%Y-%m-%d %H:%M:%S'), ' '.join(argv))).encode())
            out.flush()
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=full_env,
                                    cwd=self.s.state_dir,
                                    start_new_session=True)
        rec = {'name': name, 'pid': proc.pid,
               'start_time': _proc_start_time(proc.pid), 'argv': argv,
               'log': log}
        self.records.append(rec)
        self.save()
        return rec

    def get(self, name):
        for rec in self.records:
            if rec['name'] == name:
                return rec
        return None

    def alive(self):
        return [r for r in self.records if _alive(r)]

    def dead(self):
        return [r for r in self.records if not _alive(r)]

    def stop_all(self, timeout=30):
        live = self.alive()
        for rec in live:
            # Each service runs in its own session/process group (gunicorn
            # master and workers together); signal that group only.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(rec['pid'], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(r) for r in live):
            time.sleep(0.3)
        for rec in live:
            if _alive(rec):
                say('%s did not stop in %ds: SIGKILL' % (rec['name'], timeout))
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(rec['pid'], signal.SIGKILL)
        self.records = []
        self.save()
        return live


# -- failure reporting --------------------------------------------------------

_BAD = re.compile(r'\b(ERROR|CRITICAL)\b|Traceback|Error:|Exception:|'
                  r'error:|refused|denied', re.I)


_GUNICORN_NOISE = re.compile(
    r'\[(ERROR|INFO|WARNING)\] (Shutting down|Reason: |Worker \(pid|'
    r'Worker exiting|Booting worker|Handling signal|Starting gunicorn|'
    r'Listening at|Using worker)')


def why(log, max_lines=4000):
    """The log line that best says why a service failed."""
    try:
        with open(log, errors='replace') as f:
            lines = f.read().splitlines()[-max_lines:]
    except OSError:
        return '(no log at %s)' % log
    # last "starting" marker: only this run's lines
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith('==== ') and ': starting ' in lines[i]:
            lines = lines[i + 1:]
            break
    lines = [line for line in lines
             if line.strip() and not _GUNICORN_NOISE.search(line)]
    if not lines:
        return '(log %s is empty)' % log
    # oslo.log: a CRITICAL record is what killed the service
    for line in reversed(lines):
        if re.search(r' CRITICAL \S+ \[', line):
            return line.strip()
    # a plain Python traceback: its closing exception line
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith('Traceback'):
            for line in lines[i + 1:]:
                if re.match(r'^[A-Za-z_.]+(Error|Exception|Exit)\b.*', line):
                    return line.strip()
    # oslo.log ERROR records (the first line of a record has its context
    # "[-]" or "[req-..."; traceback continuation lines do not)
    for line in reversed(lines):
        if re.search(r' (ERROR|CRITICAL) \S+ \[', line):
            return line.strip()
    for line in reversed(lines):
        if re.search(r'\b(CRITICAL|ERROR)\b', line):
            return line.strip()
    for line in reversed(lines):
        if _BAD.search(line):
            return line.strip()
    return lines[-1].strip()


def fail(service, log, what):
    raise StackError('%s did not start: %s.\n  log: %s\n  why: %s'
                     % (service, what, log, why(log)))


# -- small helpers ------------------------------------------------------------

def run(argv, log, timeout=300, env=None, check=True, input=None):
    """Run a set-up command, its output appended to ``log``."""
    full_env = _env(env)
    with open(log, 'ab') as out:
        out.write(('\n==== %s: starting %s\n' % (
            time.strftime('%Y-%m-%d %H:%M:%S'), ' '.join(argv))).encode())
        out.flush()
        try:
            res = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.PIPE if input else
                                 subprocess.DEVNULL, input=input,
                                 env=full_env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StackError('%s timed out after %ds (log: %s)'
                             % (' '.join(argv), timeout, log))
    if check and res.returncode != 0:
        raise StackError('%s failed (exit %d).\n  log: %s\n  why: %s'
                         % (' '.join(argv[:3]), res.returncode, log, why(log)))
    return res.returncode


def http_status(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def port_open(port, host='127.0.0.1'):
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


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


def wait_for(what, check, timeout, interval=0.5, proc=None, log=None):
    """Wait until ``check()`` is true; fail naming ``what`` and quoting the
    log when it is not, or when the process ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if proc is not None and not _alive(proc):
            fail(what, log or proc['log'], 'its process exited')
        if time.monotonic() > deadline:
            fail(what, log or (proc and proc['log']),
                 'no answer within %ds' % timeout)
        time.sleep(interval)


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
    for db in DBS:
        stmts.append('DROP DATABASE IF EXISTS netaware_%s' % db)
        stmts.append('CREATE DATABASE netaware_%s CHARACTER SET utf8mb4' % db)
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
    run(ctl + ['delete_vhost', VHOST], log, timeout=90, check=False)
    run(ctl + ['add_vhost', VHOST], log, timeout=90)
    run(ctl + ['set_permissions', '-p', VHOST, 'guest', '.*', '.*', '.*'],
        log, timeout=90)


# -- configuration ------------------------------------------------------------

def _authtoken(s, user):
    return {'www_authenticate_uri': s.url('keystone'),
            'auth_url': s.url('keystone'), 'auth_type': 'password',
            'project_domain_name': 'Default', 'user_domain_name': 'Default',
            'project_name': 'service', 'username': user,
            'password': PASSWORD, 'service_token_roles_required': 'True'}


def _client(s, user):
    return {'auth_type': 'password', 'auth_url': s.url('keystone'),
            'project_domain_name': 'Default', 'user_domain_name': 'Default',
            'project_name': 'service', 'username': user,
            'password': PASSWORD, 'region_name': REGION}


def netaware_settings(s):
    """The [netaware] values, as the devstack plugin's settings give them."""
    return {'topology_file': s.topology_file, 'traffic_source': 'static',
            'static_traffic_file': s.traffic_file,
            'weight_multiplier': '10.0'}


def write_configs(s):
    os.makedirs(s.netaware_dir, exist_ok=True)
    for d in ('keystone', 'placement', 'glance', 'nova'):
        os.makedirs(os.path.join(s.etc, d), exist_ok=True)
    ks = os.path.join(s.data, 'keystone')
    write(os.path.join(s.etc, 'keystone', 'keystone.conf'), ini({
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
    write(os.path.join(s.etc, 'placement', 'placement.conf'), ini({
        'DEFAULT': {'debug': 'False'},
        'placement_database': {'connection': s.db_url('placement')},
        'api': {'auth_strategy': 'keystone'},
        'keystone_authtoken': _authtoken(s, 'placement'),
    }))
    glance_dir = os.path.join(s.data, 'glance')
    write(os.path.join(s.etc, 'glance', 'glance-api.conf'), ini({
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
                os.path.join(s.etc, 'glance', 'glance-api-paste.ini'))
    shutil.copy(os.path.join(s.venv, 'etc', 'nova', 'api-paste.ini'),
                os.path.join(s.etc, 'nova', 'api-paste.ini'))
    nova_dir = os.path.join(s.data, 'nova')
    nova_conf = os.path.join(s.etc, 'nova', 'nova.conf')
    write(nova_conf, ini({
        'DEFAULT': {
            'debug': 'True',
            'transport_url': 'rabbit://guest:guest@127.0.0.1:5672/%s'
                             % VHOST,
            'compute_driver': 'fake.FakeDriverWithoutFakeNodes',
            'state_path': nova_dir, 'my_ip': '127.0.0.1',
            'instances_path': os.path.join(nova_dir, 'instances'),
            'default_log_levels': ','.join([
                'amqp=WARN', 'amqplib=WARN', 'oslo.messaging=INFO',
                'oslo_messaging=INFO', 'sqlalchemy=WARN', 'stevedore=WARN',
                'keystoneauth=WARN', 'keystonemiddleware=WARN',
                'urllib3.connectionpool=WARN', 'oslo_policy=WARN',
                'oslo_concurrency.lockutils=WARN', 'routes.middleware=WARN',
                'oslo.privsep.daemon=INFO', 'os_brick=WARN']),
        },
        'api': {'auth_strategy': 'keystone'},
        'wsgi': {'api_paste_config': os.path.join(s.etc, 'nova',
                                                  'api-paste.ini')},
        'api_database': {'connection': s.db_url('nova_api')},
        'database': {'connection': s.db_url('nova_cell1')},
        'keystone_authtoken': _authtoken(s, 'nova'),
        'placement': _client(s, 'placement'),
        'glance': {'region_name': REGION},
        'neutron': dict(_client(s, 'neutron'),
                        service_metadata_proxy='False'),
        'scheduler': {'workers': '1',
                      'discover_hosts_in_cells_interval': '-1'},
        'conductor': {'workers': '1'},
        'oslo_concurrency': {'lock_path': os.path.join(nova_dir, 'lock')},
        'oslo_messaging_rabbit': {'heartbeat_timeout_threshold': '0'},
        'compute': {'cpu_allocation_ratio': '16.0'},
        # demo and test workloads share the admin project
        'quota': {'instances': '-1', 'cores': '-1', 'ram': '-1'},
        'os_vif_ovs': {'ovsdb_connection': 'tcp:127.0.0.1:6640'},
        'notifications': {'notification_format': 'unversioned'},
        'oslo_messaging_notifications': {'driver': 'noop'},
    }))
    # The plugin's lines, by the same code the devstack plugin runs.
    deploy.write_topology(s.topology_file,
                          deploy.leaf_spine_for_hosts(s.hosts))
    if not os.path.exists(s.traffic_file):
        write(s.traffic_file, 'flows: []\n')
    deploy.configure_nova_conf(nova_conf, netaware_settings(s))
    for host in s.hosts:
        write(os.path.join(s.etc, 'nova', 'nova-compute-%s.conf' % host), ini({
            'DEFAULT': {'host': host,
                        'state_path': os.path.join(nova_dir, host),
                        'instances_path': os.path.join(nova_dir, host,
                                                       'instances')},
        }))
        os.makedirs(os.path.join(nova_dir, host), exist_ok=True)
    write(s.clouds_yaml, (
        'clouds:\n'
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
        '    interface: public\n') % {
            'cloud': CLOUD, 'auth': s.auth_url, 'pw': PASSWORD,
            'region': REGION})


# -- services -----------------------------------------------------------------

def gunicorn(s, procs, name, factory, port, env):
    argv = [s.bin('gunicorn'), '-w', '1', '--threads', '4',
            '--no-control-socket', '--timeout', '120',
            '--graceful-timeout', '5',
            '-b', '127.0.0.1:%d' % port, '--access-logfile', '-',
            '--error-logfile', '-', '--name', name,
            'nova_netaware.localstack.wsgi:%s' % factory]
    return procs.start(name, argv, env=env)


def _nova(s, *args):
    return [s.bin(args[0]), '--config-file',
            os.path.join(s.etc, 'nova', 'nova.conf')] + list(args[1:])


def setup_keystone(s):
    conf = ['--config-file', os.path.join(s.etc, 'keystone', 'keystone.conf')]
    log = s.log('keystone-setup')
    km = s.bin('keystone-manage')
    import concurrent.futures as cf
    with cf.ThreadPoolExecutor(3) as pool:
        # the key repositories do not need the database: all three at once
        jobs = [pool.submit(run, [km] + conf + ['db_sync'], log)]
        for what in ('fernet_setup', 'credential_setup'):
            jobs.append(pool.submit(run, [km] + conf + [
                what, '--keystone-user', 'root', '--keystone-group', 'root'],
                log))
        for job in jobs:
            job.result()
    run([km] + conf + ['bootstrap', '--bootstrap-password', PASSWORD,
                       '--bootstrap-admin-url', s.url('keystone'),
                       '--bootstrap-public-url', s.url('keystone'),
                       '--bootstrap-internal-url', s.url('keystone'),
                       '--bootstrap-region-id', REGION], log)


def setup_nova_db(s):
    log = s.log('nova-setup')
    run(_nova(s, 'nova-manage', 'api_db', 'sync'), log)
    run(_nova(s, 'nova-manage', 'cell_v2', 'map_cell0', '--database_connection',
              s.db_url('nova_cell0')), log)
    run(_nova(s, 'nova-manage', 'cell_v2', 'create_cell', '--name', 'cell1',
              '--verbose'), log)
    run(_nova(s, 'nova-manage', 'db', 'sync'), log)


def register_services(s):
    """Service users, services and endpoints, in one process (fast)."""
    import openstack
    conn = openstack.connect(
        auth_url=s.auth_url, username='admin', password=PASSWORD,
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
    for user_name, stype, url in services:
        user = idc.find_user(user_name, domain_id='default') or \
            idc.create_user(name=user_name, password=PASSWORD,
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


class Stack(object):
    def __init__(self, settings):
        self.s = settings

    @contextlib.contextmanager
    def lock(self):
        os.makedirs(self.s.state_dir, exist_ok=True)
        with open(os.path.join(self.s.state_dir, '.lock'), 'w') as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StackError('another local-stack command is running on '
                                 '%s' % self.s.state_dir)
            yield

    def conn(self):
        return connect(self.s)

    # -- up ---------------------------------------------------------------

    def up(self, timeout=180):
        s = self.s
        with self.lock():
            procs = Procs(s)
            if procs.records:
                dead = procs.dead()
                if not dead:
                    say('the local stack is already running (%d processes; '
                        'state in %s)' % (len(procs.records), s.state_dir))
                    return 0
                raise StackError(
                    'the local stack is partly running; these processes '
                    'died: %s. Run "local-stack down" and then "up".'
                    % ', '.join('%s (log %s)' % (r['name'], r['log'])
                                for r in dead))
            busy = [n for n, p in s.ports.items() if port_open(p)]
            if busy:
                raise StackError('port(s) already in use: %s; set '
                                 'NETAWARE_STACK_PORT_BASE to move the stack'
                                 % ', '.join('%s %d' % (n, s.ports[n])
                                             for n in busy))
            t0 = time.monotonic()
            for sub in ('etc', 'logs', 'data', 'netaware'):
                shutil.rmtree(os.path.join(s.state_dir, sub),
                              ignore_errors=True)
            os.makedirs(s.logs)
            say('state and logs in %s' % s.state_dir)
            try:
                self._up(procs, timeout)
            except BaseException:
                say('start failed: stopping what was started')
                procs.stop_all(timeout=20)
                raise
            with open(os.path.join(s.state_dir, 'up-seconds'), 'w') as f:
                f.write('%.1f\n' % (time.monotonic() - t0))
            say('the local stack is up in %.0f s: %d computes (%s)'
                % (time.monotonic() - t0, len(s.hosts), ', '.join(s.hosts)))
            say('use it: export OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=%s'
                % (s.clouds_yaml, CLOUD))
            return 0

    def _up(self, procs, timeout):
        s = self.s
        say('MariaDB and RabbitMQ')
        ensure_mariadb(s)
        ensure_rabbitmq(s)
        say('configuration (nova.conf plugin lines by nova_netaware.deploy)')
        write_configs(s)

        say('database schemas (keystone, nova, placement, glance), each '
            'service started as soon as its schema is ready')
        setups = {
            'keystone': lambda: setup_keystone(s),
            'nova': lambda: setup_nova_db(s),
            'placement': lambda: run(
                [s.bin('placement-manage'), '--config-file',
                 os.path.join(s.etc, 'placement', 'placement.conf'),
                 'db', 'sync'], s.log('placement-setup')),
            'glance': lambda: run(
                [s.bin('glance-manage'), '--config-file',
                 os.path.join(s.etc, 'glance', 'glance-api.conf'),
                 'db_sync'], s.log('glance-setup')),
        }
        apis = {'network-standin': gunicorn(
            s, procs, 'network-standin', 'network_standin()',
            s.ports['network'], {})}
        daemons = {}
        ready = set()

        def start(name):
            if name == 'keystone':
                apis['keystone'] = gunicorn(
                    s, procs, 'keystone', 'keystone()', s.ports['keystone'],
                    {'OS_KEYSTONE_CONFIG_DIR': os.path.join(s.etc,
                                                            'keystone')})
            elif name == 'placement':
                apis['placement'] = gunicorn(
                    s, procs, 'placement', 'placement()',
                    s.ports['placement'],
                    {'OS_PLACEMENT_CONFIG_DIR': os.path.join(s.etc,
                                                             'placement')})
            elif name == 'glance':
                apis['glance'] = gunicorn(
                    s, procs, 'glance', 'glance()', s.ports['glance'],
                    {'OS_GLANCE_CONFIG_DIR': os.path.join(s.etc, 'glance')})
            elif name == 'nova':
                apis['nova-api'] = gunicorn(
                    s, procs, 'nova-api', 'nova()', s.ports['nova-api'],
                    {'OS_NOVA_CONFIG_DIR': os.path.join(s.etc, 'nova')})
            if name in ('nova', 'register'):
                ready.add(name)
            if ready == {'nova', 'register'}:
                # they talk to placement with keystone credentials at start
                for binary in ('nova-conductor', 'nova-scheduler'):
                    daemons[binary] = procs.start(binary, _nova(
                        s, binary, '--log-file', s.log(binary)))
                say('nova-conductor and nova-scheduler started')
            elif name != 'register':
                say('%s schema ready: started' % name)

        def register():
            # while the other schemas are still syncing
            wait_for('keystone', lambda: http_status(s.auth_url) == 200,
                     timeout, proc=apis['keystone'])
            try:
                register_services(s)
            except Exception as exc:
                with open(s.log('keystone-setup'), 'a') as f:
                    f.write('ERROR registering services: %r\n' % (exc,))
                raise StackError('%r; log: %s; why: %s' % (
                    exc, s.log('keystone'), why(s.log('keystone'))))

        import concurrent.futures as cf
        with cf.ThreadPoolExecutor(4) as pool:
            futures = {pool.submit(fn): name for name, fn in setups.items()}
            pending = set(futures)
            errors = []
            while pending:
                done, pending = cf.wait(pending,
                                        return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    name = futures[fut]
                    try:
                        fut.result()
                    except StackError as exc:
                        errors.append('%s set-up failed: %s' % (name, exc))
                        continue
                    if name == 'register':
                        say('keystone answers; service users and endpoints '
                            'registered')
                    start(name)
                    if name == 'keystone':
                        reg = pool.submit(register)
                        futures[reg] = 'register'
                        pending.add(reg)
            if errors:
                raise StackError('\n'.join(errors))
        conductor = daemons['nova-conductor']
        scheduler = daemons['nova-scheduler']
        checks = {
            'placement': s.url('placement', '/'),
            'glance': s.url('glance', '/versions'),
            'network-standin': s.url('network', '/'),
            'nova-api': s.url('nova-api', '/v2.1/'),
        }
        # placement first: computes report to it as they start
        wait_for('placement', lambda: http_status(checks['placement']) == 200,
                 timeout, proc=apis['placement'])
        say('%d nova-compute processes' % len(s.hosts))
        computes = {}
        for host in s.hosts:
            name = 'nova-compute-%s' % host
            computes[host] = procs.start(name, [
                s.bin('nova-compute'), '--config-file',
                os.path.join(s.etc, 'nova', 'nova.conf'), '--config-file',
                os.path.join(s.etc, 'nova', 'nova-compute-%s.conf' % host),
                '--log-file', s.log(name)])
        for name, url in checks.items():
            wait_for(name, lambda url=url: http_status(url) in (200, 300),
                     timeout, proc=apis[name])

        say('waiting for nova-conductor, nova-scheduler and the computes to '
            'report up')
        conn = self.conn()
        expected = {('nova-conductor', None): conductor,
                    ('nova-scheduler', None): scheduler}
        for host, rec in computes.items():
            expected[('nova-compute', host)] = rec

        def missing():
            try:
                services = list(conn.compute.services())
            except Exception:
                return list(expected)
            up = {(x.binary, x.host) for x in services
                  if x.state == 'up' and x.status == 'enabled'}
            up_bins = {b for b, _ in up}
            return [k for k in expected
                    if not (k in up or (k[1] is None and k[0] in up_bins))]

        deadline = time.monotonic() + timeout
        while True:
            left = missing()
            if not left:
                break
            for key in left:
                if not _alive(expected[key]):
                    fail(expected[key]['name'], expected[key]['log'],
                         'its process exited')
            if time.monotonic() > deadline:
                key = left[0]
                fail(expected[key]['name'], expected[key]['log'],
                     'not reported up in nova service list within %ds'
                     % timeout)
            time.sleep(1)

        say('cell_v2 discover_hosts')
        deadline = time.monotonic() + timeout
        while True:
            run(_nova(s, 'nova-manage', 'cell_v2', 'discover_hosts',
                      '--verbose'), s.log('nova-setup'))
            hyps = {h.name for h in conn.compute.hypervisors()
                    if h.status == 'enabled' and h.state == 'up'}
            rps = {rp.name for rp in conn.placement.resource_providers()}
            if set(s.hosts) <= hyps and set(s.hosts) <= rps:
                break
            if time.monotonic() > deadline:
                host = sorted(set(s.hosts) - (hyps & rps))[0]
                fail('nova-compute-%s' % host, s.log('nova-compute-%s' % host),
                     'no hypervisor / resource provider within %ds' % timeout)
            time.sleep(2)

    # -- down / status / logs ---------------------------------------------

    def down(self):
        with self.lock():
            procs = Procs(self.s)
            if not procs.records:
                say('the local stack is not running')
                return 0
            say('stopping %d processes started by local-stack'
                % len(procs.alive()))
            stopped = procs.stop_all()
            say('stopped: %s' % ', '.join(r['name'] for r in stopped))
            say('MariaDB and RabbitMQ are machine services: left running')
            return 0

    def status(self):
        s = self.s
        procs = Procs(s)
        if not procs.records:
            print('the local stack is not running (state dir %s)'
                  % s.state_dir)
            return 3
        bad = 0
        checks = {
            'keystone': s.auth_url, 'placement': s.url('placement', '/'),
            'glance': s.url('glance', '/versions'),
            'network-standin': s.url('network', '/'),
            'nova-api': s.url('nova-api', '/v2.1/'),
        }
        for rec in procs.records:
            alive = _alive(rec)
            extra = ''
            if rec['name'] in checks:
                code = http_status(checks[rec['name']])
                extra = ' http=%s' % code
                alive = alive and code in (200, 300)
            bad += not alive
            print('%-28s %-8s pid %-7d%s  %s' % (
                rec['name'], 'running' if alive else 'DOWN', rec['pid'],
                extra, rec['log']))
        print('MariaDB: %s, RabbitMQ: %s' % (
            'running' if port_open(3306) else 'DOWN',
            'running' if port_open(5672) else 'DOWN'))
        print('clouds.yaml: %s (cloud %s)' % (s.clouds_yaml, CLOUD))
        return 1 if bad else 0

    def logs(self, service=None, lines=20):
        s = self.s
        print('log directory: %s' % s.logs)
        if not os.path.isdir(s.logs):
            return 1
        names = sorted(f[:-4] for f in os.listdir(s.logs)
                       if f.endswith('.log'))
        if service:
            names = [n for n in names if n == service or n.startswith(
                service)]
            if not names:
                print('no log for %r' % service)
                return 1
        for name in names:
            path = s.log(name)
            print('==> %s <==' % path)
            if lines:
                with open(path, errors='replace') as f:
                    for line in f.read().splitlines()[-lines:]:
                        print(line)
        return 0

    def env(self):
        print('export OS_CLIENT_CONFIG_FILE=%s' % self.s.clouds_yaml)
        print('export OS_CLOUD=%s' % CLOUD)
        return 0
