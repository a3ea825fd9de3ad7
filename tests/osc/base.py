"""Base of the ``openstack netaware`` command tests: a real Nova API.

Nova's functional harness (tests/functional/base.NetawareTestCase: real
nova-api behind wsgi-intercept, conductor, scheduler with the nova-netaware
filter and weigher, six fake computes on a leaf-spine) is driven by the
whole OpenStackClient shell, which loads our plugin through its
``openstack.cli.extension`` entry point, exactly as an operator runs it.
See /work/shared/NOTES.md for the recipe (auth none + endpoint, admin
context, root logger reset by OSC). Placement is the harness's real
Placement fixture, reached by the shell through
``OS_PLACEMENT_ENDPOINT_OVERRIDE`` (openstacksdk's per-service endpoint
override, as in a clouds.yaml) with the token in :attr:`placement_token`.
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

    # Placement's noauth middleware takes the token as the user; 'admin' is
    # an admin (test harness only; a real cloud has keystone tokens). Any
    # other token is a user without roles, whom Placement refuses (403).
    placement_token = 'admin'

    def setUp(self):
        super().setUp()
        self.base_url = self.api_fixture.base_url
        # With auth none every service would resolve to Nova's URL: point
        # openstacksdk's placement proxy at the Placement fixture instead.
        self.useFixture(fixtures.EnvironmentVariable(
            'OS_PLACEMENT_ENDPOINT_OVERRIDE',
            self.placement.fixture.endpoint))
        self.useFixture(fixtures.MonkeyPatch(
            'keystoneauth1.noauth.NoAuth.get_token',
            lambda plugin, session, **kw: self.placement_token))
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
        # An operator's every ``openstack`` command is a new process. In one
        # process OSC keeps a plugin's client at class level (osc_lib
        # ClientCache on its ClientManager) and would reuse an earlier
        # test's connection, with that test's Placement endpoint: drop it.
        from osc_lib import clientmanager
        cache = vars(clientmanager.ClientManager).get('netaware')
        if cache is not None:
            cache._handle = None
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

    def set_inventory(self, host, resource_class, **fields):
        """Change fields (total, reserved, allocation_ratio) of a compute
        node's inventory in Placement, as an operator would."""
        rp = self._get_provider_uuid_by_host(host)
        resp = self.placement.get(
            '/resource_providers/%s/inventories/%s' % (rp, resource_class))
        body = dict(resp.body, **fields)
        resp = self.placement.put(
            '/resource_providers/%s/inventories/%s' % (rp, resource_class),
            body)
        self.assertEqual(200, resp.status, resp.body)

    def placement_now(self):
        return {s['id']: s['OS-EXT-SRV-ATTR:host'] for s in
                self.api.get_servers(detail=True,
                                     search_opts={'all_tenants': 1})}

