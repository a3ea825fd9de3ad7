"""The local stack: up, down, status, logs and env.

``up`` brings the stack up in named steps (:meth:`Stack._up`): machine
services, configuration, database schemas with each API started as soon as
its schema is ready (:class:`_Startup`), the computes, and then waits until
every API answers, every Nova service reports up and every compute is a
hypervisor and a resource provider. A failed step stops what was started
and raises :class:`StackError` naming the service and quoting its log.
"""

import concurrent.futures as cf
import contextlib
import fcntl
import os
import shutil
import signal
import time

from nova_netaware.deploy import nova_conf
from nova_netaware.deploy.exceptions import StackError
from nova_netaware.deploy.localstack import configuration
from nova_netaware.deploy.localstack import services
from nova_netaware.deploy.localstack.processes import _alive
from nova_netaware.deploy.localstack.processes import fail
from nova_netaware.deploy.localstack.processes import http_status
from nova_netaware.deploy.localstack.processes import port_open
from nova_netaware.deploy.localstack.processes import Procs
from nova_netaware.deploy.localstack.processes import run
from nova_netaware.deploy.localstack.processes import say
from nova_netaware.deploy.localstack.processes import wait_for
from nova_netaware.deploy.localstack.processes import why
from nova_netaware.deploy.localstack.settings import CLOUD

# The APIs started once their schema is ready: schema (also the name of
# the wsgi factory and of the etc/ directory) -> (process and port name,
# the variable that points the service at its configuration directory).
_APIS = {
    'keystone': ('keystone', 'OS_KEYSTONE_CONFIG_DIR'),
    'placement': ('placement', 'OS_PLACEMENT_CONFIG_DIR'),
    'glance': ('glance', 'OS_GLANCE_CONFIG_DIR'),
    'nova': ('nova-api', 'OS_NOVA_CONFIG_DIR'),
    # up --with-watcher; the variable names watcher.conf (see wsgi.watcher)
    'watcher': ('watcher-api', 'NETAWARE_WATCHER_CONF'),
}
# Nova's daemons, started once nova's schema is ready and the services are
# registered in keystone: they talk to placement with keystone credentials
# at start.
_DAEMONS = ('nova-conductor', 'nova-scheduler')


class _Startup(object):
    """Database schemas set up in parallel, each API started as soon as its
    schema is ready; the services registered in keystone as soon as it
    answers (while the other schemas are still syncing); then Nova's
    daemons."""

    def __init__(self, s, procs, timeout):
        self.s = s
        self.procs = procs
        self.timeout = timeout
        if s.virt == 'libvirt':
            # ports bound vif_type=tap on the lab's guest network
            factory, env = 'network_ports()', {
                'NETAWARE_NETSTANDIN_STATE': os.path.join(s.data,
                                                          'ports.json')}
        else:
            factory, env = 'network_standin()', {}
        self.apis = {'network-standin': services.gunicorn(
            s, procs, 'network-standin', factory, s.ports['network'], env)}
        self.daemons = {}
        self.ready = set()

    def setups(self):
        s = self.s
        setups = {
            'keystone': lambda: services.setup_keystone(s),
            'nova': lambda: services.setup_nova_db(s),
            'placement': lambda: services.setup_placement_db(s),
            'glance': lambda: services.setup_glance_db(s),
        }
        if s.with_watcher:
            setups['watcher'] = lambda: services.setup_watcher_db(s)
        return setups

    def start(self, name):
        """Start what waited for ``name`` (a schema, or 'register')."""
        s = self.s
        if name in _APIS:
            proc, variable = _APIS[name]
            where = (s.conf('watcher', 'watcher.conf') if name == 'watcher'
                     else os.path.join(s.etc, name))
            self.apis[proc] = services.gunicorn(
                s, self.procs, proc, '%s()' % name, s.ports[proc],
                {variable: where})
        if name in ('nova', 'register'):
            self.ready.add(name)
            if self.ready == {'nova', 'register'}:
                for binary in _DAEMONS:
                    self.daemons[binary] = self.procs.start(
                        binary, services.nova_cmd(s, binary, '--log-file',
                                                  s.log(binary)),
                        env=_daemon_env(s))
                say('nova-conductor and nova-scheduler started')
                return
        if name != 'register':
            say('%s schema ready: started' % name)

    def register(self):
        s = self.s
        wait_for('keystone', lambda: http_status(s.auth_url) == 200,
                 self.timeout, proc=self.apis['keystone'])
        try:
            services.register_services(s)
        except Exception as exc:
            with open(s.log('keystone-setup'), 'a') as f:
                f.write('ERROR registering services: %r\n' % (exc,))
            raise StackError('%r; log: %s; why: %s' % (
                exc, s.log('keystone'), why(s.log('keystone'))))

    def run(self):
        """Run every set-up; the APIs and daemons once all succeeded."""
        with cf.ThreadPoolExecutor(4) as pool:
            futures = {pool.submit(fn): name
                       for name, fn in self.setups().items()}
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
                    self.start(name)
                    if name == 'keystone':
                        reg = pool.submit(self.register)
                        futures[reg] = 'register'
                        pending.add(reg)
            if errors:
                raise StackError('\n'.join(errors))
        return self.apis, self.daemons


def _daemon_env(s):
    """The environment of nova-scheduler (and conductor): on the libvirt
    stack, the clouds.yaml of the measured matrix's port lookup."""
    if s.virt != 'libvirt':
        return None
    from nova_netaware.flowmeter import stack as meters
    return meters.scheduler_env(s)


def meters():
    """The flow meters and Prometheus of the libvirt stack."""
    from nova_netaware.flowmeter import stack as mod
    return mod


def novastack():
    """The libvirt half of the stack (imported only with --virt libvirt)."""
    from nova_netaware.deploy.localstack.libvirt import novastack as mod
    return mod


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
        return services.connect(self.s)

    # -- up ---------------------------------------------------------------

    def up(self, timeout=180):
        s = self.s
        with self.lock():
            procs = Procs(s)
            if procs.records:
                return self._already_running(procs)
            self._check_ports()
            t0 = time.monotonic()
            if s.virt == 'libvirt':
                self._check_libvirt()
            for sub in ('etc', 'logs', 'data', 'netaware', 'prometheus'):
                shutil.rmtree(os.path.join(s.state_dir, sub),
                              ignore_errors=True)
            os.makedirs(s.logs)
            os.makedirs(s.data)
            s.record_virt()
            say('state and logs in %s (virt driver: %s)'
                % (s.state_dir, s.virt))
            try:
                self._up(procs, timeout)
            except BaseException:
                say('start failed: stopping what was started')
                procs.stop_all(timeout=20)
                if s.virt == 'libvirt':
                    novastack().down(s)
                raise
            with open(os.path.join(s.state_dir, 'up-seconds'), 'w') as f:
                f.write('%.1f\n' % (time.monotonic() - t0))
            say('the local stack is up in %.0f s: %d computes (%s)'
                % (time.monotonic() - t0, len(s.hosts), ', '.join(s.hosts)))
            say('use it from a shell (or eval "$(devstack/local-stack '
                'env)"):\n  ' + '\n  '.join(s.shell_exports()))
            return 0

    def _already_running(self, procs):
        dead = procs.dead()
        if not dead:
            if self.s.with_watcher and not procs.get('watcher-api'):
                raise StackError(
                    'the local stack is running without Watcher; run '
                    '"local-stack down" and then "up --with-watcher"')
            say('the local stack is already running (%d processes; '
                'state in %s)' % (len(procs.records), self.s.state_dir))
            return 0
        raise StackError(
            'the local stack is partly running; these processes '
            'died: %s. Run "local-stack down" and then "up".'
            % ', '.join('%s (log %s)' % (r['name'], r['log'])
                        for r in dead))

    def _check_ports(self):
        s = self.s
        ports = dict(s.ports)
        if s.virt == 'libvirt':
            ports.update(meters().all_ports(s, s.hosts))
        busy = [n for n, p in ports.items() if port_open(p)]
        if busy:
            raise StackError('port(s) already in use: %s; set '
                             'NETAWARE_STACK_PORT_BASE to move the stack'
                             % ', '.join('%s %d' % (n, ports[n])
                                         for n in busy))

    def _check_libvirt(self):
        missing = [b for b in ('libvirtd', 'virtlogd', 'virsh',
                               'qemu-system-x86_64', 'nsenter', 'unshare',
                               'sshd', 'ssh-keygen', 'scp')
                   if not shutil.which(b)]
        try:
            import libvirt  # noqa: F401  (nova's LibvirtDriver needs it)
        except ImportError:
            missing.append('libvirt-python (pip)')
        if os.geteuid() != 0:
            raise StackError('--virt libvirt needs root (namespaces, '
                             'libvirtd, bridges)')
        if missing:
            raise StackError('--virt libvirt needs %s: run tools/setup.sh '
                             '(installs the Debian packages and '
                             'libvirt-python)' % ', '.join(missing))

    def _up(self, procs, timeout):
        s = self.s
        if s.virt != 'libvirt':
            return self._up_services(procs, timeout, None)
        # the lab (namespaces, fabric, libvirtd per host) comes up while
        # the databases are set up
        with cf.ThreadPoolExecutor(1) as pool:
            lab = pool.submit(novastack().lab_up, s)
            try:
                self._up_services(procs, timeout, lab)
            finally:
                lab.exception()  # wait for it (the caller tears down)

    def _up_services(self, procs, timeout, lab):
        s = self.s
        say('MariaDB and RabbitMQ')
        services.ensure_mariadb(s)
        services.ensure_rabbitmq(s)
        services.ensure_redis(s)
        say('configuration (nova.conf plugin lines by nova_netaware.deploy)')
        configuration.write_configs(s)
        say('database schemas (keystone, nova, placement, glance%s), each '
            'service started as soon as its schema is ready'
            % (', watcher' if s.with_watcher else ''))
        apis, daemons = _Startup(s, procs, timeout).run()
        urls = {name: url for name, url in s.health_urls().items()
                if name != 'keystone' and name in apis}
        # placement first: computes report to it as they start
        wait_for('placement', lambda: http_status(urls['placement']) == 200,
                 timeout, proc=apis['placement'])
        computes = self._start_computes(procs, lab)
        if lab is not None:
            self._start_meters(procs, lab.result())
        for name, url in urls.items():
            wait_for(name, lambda url=url: http_status(url) in (200, 300),
                     timeout, proc=apis[name])
        say('waiting for nova-conductor, nova-scheduler and the computes to '
            'report up')
        conn = self.conn()
        self._wait_reported_up(conn, daemons, computes, timeout)
        say('cell_v2 discover_hosts')
        self._discover_hosts(conn, timeout)
        if lab is not None:
            say('guest image (kernel, ramdisk, machine image) in glance, '
                'flavor %s' % novastack().FLAVOR)
            novastack().upload_image(conn, lab.result().state['image'])
        if s.with_watcher:
            self._start_watcher(procs, conn, timeout)

    def _start_meters(self, procs, lab):
        """One flow meter per hypervisor namespace and a Prometheus
        scraping them (the scheduler's measured traffic matrix)."""
        s = self.s
        namespaces = {h: lab.plan['hosts'][h]['ns'] for h in s.hosts}
        url = meters().start(s, procs, namespaces)
        say('flow meters in %d hypervisor namespaces, Prometheus %s '
            'scraping them (traffic_source = prometheus)'
            % (len(namespaces), url))

    def _start_watcher(self, procs, conn, timeout):
        """watcher-decision-engine and watcher-applier, started once every
        compute is a hypervisor (the engine builds its compute data model
        from Nova as it starts); then wait until Watcher lists both as
        ACTIVE (``openstack optimize service list``)."""
        s = self.s
        say('watcher-decision-engine and watcher-applier')
        # the strategy reads the scheduler's [netaware] options: the same
        # environment as nova-scheduler
        daemons = {binary: procs.start(binary, services.watcher_cmd(
            s, binary), env=_daemon_env(s))
            for binary in ('watcher-decision-engine', 'watcher-applier')}

        def missing():
            try:
                resp = conn.session.get(
                    s.url('watcher-api', '/v1/services'),
                    headers={'OpenStack-API-Version': 'infra-optim 1.0'})
                listed = resp.json().get('services', [])
            except Exception:
                return list(daemons)
            active = {x['name'] for x in listed if x.get('status') == 'ACTIVE'}
            return [b for b in daemons if b not in active]

        _wait_listed(missing, daemons,
                     'not ACTIVE in watcher service list', timeout)
        say('watcher: API, decision engine and applier up')

    def _start_computes(self, procs, lab=None):
        s = self.s
        if lab is not None:
            lab = lab.result()
            say('%d nova-compute processes on the libvirt driver, each in '
                'its host\'s namespaces' % len(s.hosts))
            return novastack().start_computes(s, procs, lab)
        say('%d nova-compute processes' % len(s.hosts))
        return {host: self._start_compute(procs, host) for host in s.hosts}

    def _start_compute(self, procs, host):
        s = self.s
        name = 'nova-compute-%s' % host
        return procs.start(name, [
            s.bin('nova-compute'), '--config-file',
            s.conf('nova', 'nova.conf'), '--config-file',
            s.conf('nova', 'nova-compute-%s.conf' % host),
            '--log-file', s.log(name)])

    # -- a compute failure, a scheduler reconfiguration ---------------------

    def _running(self):
        procs = Procs(self.s)
        if not procs.records:
            raise StackError('the local stack is not running')
        return procs

    def _check_host(self, host):
        if host not in self.s.hosts:
            raise StackError('unknown compute host %r (the stack has %s)'
                             % (host, ', '.join(self.s.hosts)))

    def stop_compute(self, host, kill=False):
        """Stop ``host``'s nova-compute (SIGKILL with ``kill``: a host
        failure). Its fake servers live in that process and are gone;
        Nova sees the service down after ``[DEFAULT] service_down_time``,
        or at once after ``openstack compute service set --down``."""
        self._check_host(host)
        with self.lock():
            rec = self._running().stop(
                'nova-compute-%s' % host,
                signal.SIGKILL if kill else signal.SIGTERM)
        if rec is None:
            raise StackError('nova-compute-%s is not running' % host)
        say('nova-compute-%s stopped (%s)' % (host,
                                              'SIGKILL' if kill else 'SIGTERM'))
        return 0

    def start_compute(self, host, timeout=180):
        """Start ``host``'s nova-compute again and wait until it reports
        up (a forced-down service stays down until ``openstack compute
        service set --up``; that is the operator's call)."""
        self._check_host(host)
        name = 'nova-compute-%s' % host
        with self.lock():
            procs = self._running()
            old = procs.get(name)
            if old is not None and _alive(old):
                raise StackError('%s is already running' % name)
            procs.stop(name)
            rec = self._start_compute(procs, host)
        wait_for(name, lambda: self._log_mark(rec['log'],
                                              'Starting compute node') >= 1,
                 timeout, proc=rec)
        say('%s started' % name)
        return 0

    @staticmethod
    def _log_mark(log, text):
        """How many lines of ``log``'s latest run contain ``text``."""
        try:
            with open(log, errors='replace') as f:
                lines = f.read().splitlines()
        except OSError:
            return 0
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].startswith('==== ') and ': starting ' in lines[i]:
                lines = lines[i + 1:]
                break
        return sum(text in line for line in lines)

    def restart_scheduler(self, timeout=180):
        """Write the settings' ``[scheduler] workers`` and ``[netaware]``
        ledger options into nova.conf and restart nova-scheduler; returns
        once each worker has started consuming requests (Nova logs
        "Starting scheduler node" once per worker)."""
        s = self.s
        with self.lock():
            procs = self._running()
            edits = configuration.scheduler_edits(s)
            services.ensure_redis(s)
            nova_conf.apply_edits(s.conf('nova', 'nova.conf'), edits)
            procs.stop('nova-scheduler')
            rec = procs.start('nova-scheduler', services.nova_cmd(
                s, 'nova-scheduler', '--log-file', s.log('nova-scheduler')),
                env=_daemon_env(s))
        wait_for('nova-scheduler', lambda: self._log_mark(
            rec['log'], 'Starting scheduler node') >= s.scheduler_workers,
            timeout, proc=rec)
        say('nova-scheduler restarted: %s' % ', '.join(
            '%s = %s' % (e.option, e.value) for e in edits))
        return 0

    def _wait_reported_up(self, conn, daemons, computes, timeout):
        """Until ``openstack compute service list`` has each daemon and
        compute up and enabled; fail on the first one that died."""
        expected = {(binary, None): daemons[binary] for binary in _DAEMONS}
        for host, rec in computes.items():
            expected[('nova-compute', host)] = rec

        def missing():
            try:
                listed = list(conn.compute.services())
            except Exception:
                return list(expected)
            up = {(x.binary, x.host) for x in listed
                  if x.state == 'up' and x.status == 'enabled'}
            up_bins = {b for b, _ in up}
            return [k for k in expected
                    if not (k in up or (k[1] is None and k[0] in up_bins))]

        _wait_listed(missing, expected,
                     'not reported up in nova service list', timeout)

    def _discover_hosts(self, conn, timeout):
        """``nova-manage cell_v2 discover_hosts`` until every compute is an
        enabled, up hypervisor and a resource provider."""
        s = self.s
        deadline = time.monotonic() + timeout
        while True:
            run(services.nova_cmd(s, 'nova-manage', 'cell_v2',
                                  'discover_hosts', '--verbose'),
                s.log('nova-setup'))
            hyps = {h.name for h in conn.compute.hypervisors()
                    if h.status == 'enabled' and h.state == 'up'}
            rps = {rp.name for rp in conn.placement.resource_providers()}
            if set(s.hosts) <= hyps and set(s.hosts) <= rps:
                return
            if time.monotonic() > deadline:
                host = sorted(set(s.hosts) - (hyps & rps))[0]
                fail('nova-compute-%s' % host, s.log('nova-compute-%s' % host),
                     'no hypervisor / resource provider within %ds' % timeout)
            time.sleep(2)

    # -- down / status / logs / env ---------------------------------------

    def down(self):
        with self.lock():
            procs = Procs(self.s)
            lab = os.path.exists(os.path.join(self.s.lab_dir, 'lab.json'))
            if not procs.records and not lab:
                say('the local stack is not running')
                return 0
            say('stopping %d processes started by local-stack'
                % len(procs.alive()))
            stopped = procs.stop_all()
            say('stopped: %s' % ', '.join(r['name'] for r in stopped))
            if lab:
                # after nova-compute: domains, libvirtd, namespaces
                novastack().down(self.s)
            # the flow meters' Prometheus data (its process is stopped)
            shutil.rmtree(os.path.join(self.s.state_dir, 'prometheus'),
                          ignore_errors=True)
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
        urls = s.health_urls()
        records = list(procs.records)
        if s.virt == 'libvirt':
            # the lab's daemons: holders, virtlogd, libvirtd, sshd
            records += novastack().lab_settings_procs(s)
        for rec in records:
            alive = _alive(rec)
            extra = ''
            if rec['name'] in urls:
                code = http_status(urls[rec['name']])
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
        for line in self.s.shell_exports():
            print(line)
        return 0


def _wait_listed(missing, records, what, timeout):
    """Poll ``missing()`` (the keys of *records* a service list does not
    show yet) every second until it is empty; fail naming the process when
    one of them exited, or the first one left (*what* within *timeout*)."""
    deadline = time.monotonic() + timeout
    while True:
        left = missing()
        if not left:
            return
        for key in left:
            if not _alive(records[key]):
                fail(records[key]['name'], records[key]['log'],
                     'its process exited')
        if time.monotonic() > deadline:
            rec = records[left[0]]
            fail(rec['name'], rec['log'], '%s within %ds' % (what, timeout))
        time.sleep(1)
