"""Where the local stack keeps its state, and which ports and names it uses.

Layout of the state directory (``$NETAWARE_STACK_DIR``, by default
``<checkout>/local-stack-state``, which is git-ignored):

* ``etc/``: keystone.conf, placement.conf, glance-api.conf, nova.conf (with
  the plugin lines written by :mod:`nova_netaware.deploy.nova_conf`) and one
  ``nova-compute-<host>.conf`` per compute;
* ``logs/``: one log file per service (``logs/<service>.log``);
* ``netaware/``: the plugin's topology and traffic files;
* ``clouds.yaml``: cloud ``netaware-local`` (admin);
* ``procs.json``: the processes this launcher started (pid, start time),
  so that ``down`` stops those and nothing else;
* ``virt``: the virt driver of the last ``up`` (``fake`` or ``libvirt``);
* ``libvirt/`` (``--virt libvirt`` only): the libvirt lab's state
  (``lab.json``, its own ``procs.json``, private libvirt directories per
  host), see :mod:`nova_netaware.deploy.localstack.libvirt`.

With ``up --with-watcher`` the stack also runs OpenStack Watcher
(``etc/watcher/watcher.conf``, database ``netaware_watcher``, API on the
``watcher-api`` port).

MariaDB and RabbitMQ are machine services: ``up`` starts them if they are
not running and ``down`` leaves them running. The stack uses its own
databases (``netaware_*``) and RabbitMQ vhost (``netaware``).
"""

import os
import shlex
import sys

import nova_netaware
from nova_netaware.deploy.exceptions import StackError

#: The checkout (or site-packages) directory that holds ``nova_netaware``;
#: the stack's processes get it first on their PYTHONPATH.
PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(
    nova_netaware.__file__)))
CLOUD = 'netaware-local'
REGION = 'RegionOne'
PASSWORD = 'netaware'
DB_USER = 'netaware'
DB_PASSWORD = 'netaware'
VHOST = 'netaware'
DBS = ('keystone', 'glance', 'placement', 'nova_api', 'nova_cell0',
       'nova_cell1')
#: the database of ``up --with-watcher``
WATCHER_DBS = ('watcher',)
PORT_NAMES = ('keystone', 'nova-api', 'placement', 'glance', 'network',
              'watcher-api')
#: ``fake``: Nova's fake driver, one nova-compute process per host on
#: 127.0.0.1 (fast, the default); ``libvirt``: Nova's LibvirtDriver on QEMU,
#: each compute in its own namespaces with its own libvirtd (real guests)
VIRTS = ('fake', 'libvirt')
#: the libvirt computes' host names (``lvcmp1`` ...), see libvirt/lab.py
LIBVIRT_HOST_PREFIX = 'lvcmp'


class CloudProfile(object):
    """What keeps two local clouds on one machine apart (``up --clouds
    2``, :mod:`.twoclouds`): database names, RabbitMQ vhost, admin and
    service password, the libvirt hosts' names, the lab's namespace prefix
    and its underlay addresses (``10.<net>.<switch>.<host>/24``, switch
    links in ``10.<net + 1>.0.0/16``)."""

    def __init__(self, name, db_prefix, vhost, password, host_prefix,
                 ns_prefix, net):
        self.name = name
        self.db_prefix = db_prefix
        self.vhost = vhost
        self.password = password
        self.host_prefix = host_prefix
        self.ns_prefix = ns_prefix
        self.net = net


#: ``a``: the one cloud of a plain ``up`` (and cloud-a of ``--clouds 2``);
#: ``b``: the second cloud, in ``<state dir>/cloud-b``
PROFILES = {
    'a': CloudProfile('a', 'netaware_', VHOST, PASSWORD,
                      LIBVIRT_HOST_PREFIX, 'nvl-', 0),
    'b': CloudProfile('b', 'netaware_b_', VHOST + '_b', PASSWORD + '-b',
                      'lvbcmp', 'nvlb-', 2),
}


def _default_state_dir():
    if os.path.isdir(os.path.join(PKG_ROOT, '.git')) or os.path.exists(
            os.path.join(PKG_ROOT, 'setup.cfg')):
        return os.path.join(PKG_ROOT, 'local-stack-state')
    return os.path.expanduser('~/.local/share/nova-netaware/local-stack')


#: The local Redis (tools/services.sh starts it): the shared ledger's store
#: when the stack runs with ``--ledger-backend tooz``.
REDIS_URL = 'redis://127.0.0.1:6379'
LEDGER_BACKENDS = ('memory', 'tooz')


class Settings(object):
    """The stack's names, ports and paths, and its scheduler options.

    ``scheduler_workers`` is nova.conf's ``[scheduler] workers`` (default 1;
    ``$NETAWARE_STACK_SCHEDULER_WORKERS``). ``ledger_backend`` (``memory``
    or ``tooz``; ``$NETAWARE_STACK_LEDGER_BACKEND``) and ``ledger_url``
    (``$NETAWARE_STACK_LEDGER_URL``; :data:`REDIS_URL` by default with
    ``tooz``) are written to ``[netaware]`` only when set, so that by
    default nova.conf carries the plugin's own defaults. ``virt`` is
    ``fake`` (default) or ``libvirt`` (see :mod:`.libvirt`);
    ``with_watcher`` adds OpenStack Watcher's services.
    """

    def __init__(self, state_dir=None, computes=None, port_base=None,
                 scheduler_workers=None, ledger_backend=None,
                 ledger_url=None, virt=None, with_watcher=False,
                 cloud=None):
        cloud = cloud or os.environ.get('NETAWARE_STACK_CLOUD') or 'a'
        if cloud not in PROFILES:
            raise StackError('unknown cloud profile %r (known: %s)'
                             % (cloud, ', '.join(sorted(PROFILES))))
        #: the :class:`CloudProfile` (names, vhost, password, addresses)
        self.profile = PROFILES[cloud]
        self.password = self.profile.password
        self.vhost = self.profile.vhost
        self.state_dir = os.path.abspath(
            state_dir or os.environ.get('NETAWARE_STACK_DIR')
            or _default_state_dir())
        self.virt_file = os.path.join(self.state_dir, 'virt')
        #: ``up`` is told (default fake); the other commands read what
        #: the last ``up`` wrote
        self.virt = virt or self._last_virt()
        if self.virt not in VIRTS:
            raise StackError('unknown virt driver %r (choose from %s)'
                             % (self.virt, ', '.join(VIRTS)))
        self.computes = int(computes or os.environ.get(
            'NETAWARE_STACK_COMPUTES', 4))
        if self.computes < 2:
            raise StackError('at least 2 computes are needed')
        base = int(port_base or os.environ.get('NETAWARE_STACK_PORT_BASE',
                                               25000))
        self.ports = {name: base + i for i, name in enumerate(PORT_NAMES)}
        if scheduler_workers is None:
            scheduler_workers = os.environ.get(
                'NETAWARE_STACK_SCHEDULER_WORKERS') or 1
        self.scheduler_workers = int(scheduler_workers)
        if self.scheduler_workers < 1:
            raise StackError('scheduler workers must be at least 1')
        self.ledger_backend = ledger_backend or os.environ.get(
            'NETAWARE_STACK_LEDGER_BACKEND') or None
        if self.ledger_backend not in (None,) + LEDGER_BACKENDS:
            raise StackError('unknown ledger backend %r (known: %s)' % (
                self.ledger_backend, ', '.join(LEDGER_BACKENDS)))
        self.ledger_url = ledger_url or os.environ.get(
            'NETAWARE_STACK_LEDGER_URL') or (
                REDIS_URL if self.ledger_backend == 'tooz' else None)
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
        self.lab_dir = os.path.join(self.state_dir, 'libvirt')
        prefix = (self.profile.host_prefix if self.virt == 'libvirt'
                  else 'netaware-cmp')
        self.hosts = ['%s%d' % (prefix, i + 1)
                      for i in range(self.computes)]
        self.with_watcher = bool(with_watcher)
        #: more root-namespace ports the libvirt hosts reach through the
        #: control-plane relay: with two clouds, the other cloud's APIs
        #: (public endpoints are reachable across sites), see twoclouds.py
        self.extra_relay_ports = ()

    @property
    def dbs(self):
        """The stack's databases (``netaware_<name>``)."""
        return DBS + (WATCHER_DBS if self.with_watcher else ())

    def _last_virt(self):
        try:
            with open(self.virt_file) as f:
                return f.read().strip() or 'fake'
        except OSError:
            return 'fake'

    def record_virt(self):
        os.makedirs(self.state_dir, exist_ok=True)
        with open(self.virt_file, 'w') as f:
            f.write(self.virt + '\n')

    def url(self, name, path=''):
        return 'http://127.0.0.1:%d%s' % (self.ports[name], path)

    @property
    def auth_url(self):
        return self.url('keystone', '/v3')

    def health_urls(self):
        """``{process name: URL}`` of each API; it answers 200 or 300."""
        return {
            'keystone': self.auth_url,
            'placement': self.url('placement', '/'),
            'glance': self.url('glance', '/versions'),
            'network-standin': self.url('network', '/'),
            'nova-api': self.url('nova-api', '/v2.1/'),
            'watcher-api': self.url('watcher-api', '/'),
        }

    def db_url(self, name):
        return ('mysql+pymysql://%s:%s@127.0.0.1/%s?charset=utf8'
                % (DB_USER, DB_PASSWORD, self.db_name(name)))

    def db_name(self, name):
        """The database of ``name`` (``netaware_nova_api``; cloud b:
        ``netaware_b_nova_api``)."""
        return self.profile.db_prefix + name

    def conf(self, service, name):
        """The path of a configuration file, ``etc/<service>/<name>``."""
        return os.path.join(self.etc, service, name)

    def shell_exports(self):
        """The ``export`` lines that point a shell at this stack: the
        virtualenv's bin first on PATH (``openstack``, ``nova-netaware``),
        the openstack CLI's cloud, and the nova.conf whose [netaware]
        section ``openstack netaware ...`` reads (``$NETAWARE_CONFIG_FILE``).
        """
        from nova_netaware.osc.data import CONFIG_ENV
        q = shlex.quote
        return ['export PATH=%s:"$PATH"' % q(self.bindir),
                'export OS_CLIENT_CONFIG_FILE=%s' % q(self.clouds_yaml),
                'export OS_CLOUD=%s' % q(CLOUD),
                'export %s=%s' % (CONFIG_ENV,
                                  q(self.conf('nova', 'nova.conf')))]

    def log(self, service):
        return os.path.join(self.logs, service + '.log')

    def bin(self, name):
        return os.path.join(self.bindir, name)
