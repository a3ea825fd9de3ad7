"""Watcher's database test case without its API app.

Watcher's own ``watcher.tests.unit.db.base.DbTestCase`` also loads its
pecan API test app, which needs WebTest (not installed: the API is not
under test here). This is the same set-up with Watcher's own fixtures:
configuration parsed with no files, policy, the fake message transport,
an sqlite database with Watcher's schema, and an admin context.
"""

import copy

from oslo_messaging import conffixture

from watcher.common import context as watcher_context
from watcher.common import service
from watcher.objects import base as objects_base
from watcher.tests import base as watcher_base
from watcher.tests.local_fixtures import conf_fixture
from watcher.tests.local_fixtures import db as db_fixture
from watcher.tests.local_fixtures import policy_fixture


class WatcherDbTestCase(watcher_base.WatcherBaseTestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(conf_fixture.ConfReloadFixture())
        self.useFixture(policy_fixture.PolicyFixture())
        messaging = self.useFixture(conffixture.ConfFixture(
            conf_fixture.cfg.CONF))
        messaging.transport_url = 'fake:/'
        objects_base.WatcherObject.indirection_api = None
        self.context = watcher_context.RequestContext(
            project_id='admin', user_id='admin', roles=['admin'],
            is_admin=True)
        registry = objects_base.WatcherObjectRegistry._registry
        saved = copy.copy(registry._obj_classes)
        self.addCleanup(setattr, registry, '_obj_classes', saved)
        service.Singleton._instances.clear()
        self.addCleanup(service.Singleton._instances.clear)
        self.dbapi = self.useFixture(db_fixture.WatcherDatabase()).dbapi
