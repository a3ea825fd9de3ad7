"""Base of the ``openstack netaware`` command tests: a real Nova API.

Nova's functional harness (tests/functional/base.NetawareTestCase: real
nova-api behind wsgi-intercept, conductor, scheduler with the nova-netaware
filter and weigher, six fake computes on a leaf-spine) is driven by the
whole OpenStackClient shell, which loads our plugin through its
``openstack.cli.extension`` entry point, exactly as an operator runs it.
See /work/shared/NOTES.md for the recipe (auth none + endpoint, admin
context, root logger reset by OSC).
"""

from tests.functional import base  # noqa: I100 - eventlet patch first

import contextlib
import io
import logging
import os

import fixtures

from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session
from nova.api import auth as nova_auth
import openstack.connection

ADMIN_HEADERS = {'X-Auth-User': 'admin', 'X-User-Id': 'admin',
                 'X-Auth-Project-Id': 'admin-project', 'X-Roles': 'admin'}


class OscTestCase(base.NetawareTestCase):

    def setUp(self):
        super().setUp()
        self.base_url = self.api_fixture.base_url
        self.conf_path = os.path.join(self.tmp, 'nova.conf')
        self.write_conf()
        # The OSC shell cannot send Nova's test identity headers: requests
        # without them become admin (test harness only; a real cloud has
        # keystone).
        orig = nova_auth.NovaKeystoneContext._create_context

        def create_context(env, **kw):
            if not env.get('HTTP_X_USER_ID') and not env.get(
                    'HTTP_X_AUTH_USER'):
                env['HTTP_X_USER_ID'] = env['HTTP_X_AUTH_USER'] = 'admin'
                env['HTTP_X_AUTH_PROJECT_ID'] = 'admin-project'
                env['HTTP_X_ROLES'] = 'admin'
            return orig(env, **kw)
        self.useFixture(fixtures.MonkeyPatch(
            'nova.api.auth.NovaKeystoneContext._create_context',
            staticmethod(create_context)))

    def write_conf(self, **extra):
        opts = {'topology_file': self.topology_path,
                'traffic_source': 'static',
                'static_traffic_file': self.traffic_path}
        opts.update(extra)
        lines = ['[netaware]'] + ['%s = %s' % kv for kv in opts.items()]
        with open(self.conf_path, 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def sdk(self):
        sess = ks_session.Session(auth=noauth.NoAuth(endpoint=self.base_url),
                                  additional_headers=ADMIN_HEADERS)
        return openstack.connection.Connection(
            session=sess, compute_endpoint_override=self.base_url,
            compute_api_version='2', identity_api_version='3',
            identity_endpoint_override=self.base_url)

    def osc(self, *argv, conf=True):
        """Run ``openstack <argv>`` in-process; returns (rc, out, err)."""
        from openstackclient import shell
        args = ['--os-auth-type', 'none', '--os-endpoint', self.base_url,
                '--os-identity-api-version', '3', '--os-compute-api-version',
                '2'] + list(argv)
        if conf:
            args += ['--config-file', self.conf_path]
        out, err = io.StringIO(), io.StringIO()
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            with contextlib.redirect_stdout(out), \
                    contextlib.redirect_stderr(err):
                rc = shell.OpenStackShell().run(args)
        finally:
            # OSC reconfigures the root logger on each run.
            for h in list(root.handlers):
                root.removeHandler(h)
            for h in handlers:
                root.addHandler(h)
            root.setLevel(level)
        return rc, out.getvalue(), err.getvalue()

    def placement_now(self):
        return {s['id']: s['OS-EXT-SRV-ATTR:host'] for s in
                self.api.get_servers(detail=True,
                                     search_opts={'all_tenants': 1})}

