"""STAND-IN for the Networking API (Neutron). NOT Neutron.

The local stack runs no Neutron: servers boot with ``--nic none``. Nova
still calls the network service for such servers (``server show`` and
``server list`` look up ports and security groups, moves look up the
server's ports), and fails with EndpointNotFound when the catalog has no
``network`` endpoint. This WSGI app answers those calls the way an empty
Neutron would: every collection is empty, except for one ``default``
security group per project; single resources are 404; writes are refused
with 501 so that anything depending on real networking fails loudly.
Every request is logged, so the log shows what Nova asked.
"""

import json
import logging
import re
import uuid

LOG = logging.getLogger(__name__)

_SG_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, 'netaware-local-default-sg'))


def _default_sg(project_id):
    return {'id': _SG_ID, 'name': 'default', 'description': 'stand-in',
            'project_id': project_id, 'tenant_id': project_id,
            'security_group_rules': [], 'stateful': True, 'shared': False,
            'tags': []}


def _json(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(status, [('Content-Type', 'application/json'),
                            ('Content-Length', str(len(data)))])
    return [data]


def application(environ, start_response):
    method = environ.get('REQUEST_METHOD', 'GET')
    path = environ.get('PATH_INFO', '/').rstrip('/') or '/'
    project = environ.get('HTTP_X_PROJECT_ID', '')
    LOG.info('%s %s?%s', method, path, environ.get('QUERY_STRING', ''))
    path = re.sub(r'\.json$', '', path)
    if path in ('/', ''):
        return _json(start_response, '200 OK', {'versions': [{
            'id': 'v2.0', 'status': 'CURRENT',
            'links': [{'rel': 'self', 'href': '/v2.0/'}]}]})
    if method != 'GET':
        return _json(start_response, '501 Not Implemented', {
            'NeutronError': {'type': 'NotImplemented', 'detail': '',
                             'message': 'nova-netaware local stack: this is '
                                        'a read-only network stand-in, not '
                                        'Neutron'}})
    m = re.match(r'^/v2\.0/([a-z_-]+)(?:/([^/]+))?$', path)
    if not m:
        return _json(start_response, '404 Not Found', {})
    collection, item = m.groups()
    if item is not None:
        if collection == 'security-groups' and item == _SG_ID:
            return _json(start_response, '200 OK',
                         {'security_group': _default_sg(project)})
        return _json(start_response, '404 Not Found', {'NeutronError': {
            'type': 'NotFound', 'detail': '',
            'message': '%s %s not found (stand-in)' % (collection, item)}})
    key = collection.replace('-', '_')
    items = []
    if collection == 'security-groups':
        items = [_default_sg(project)]
    return _json(start_response, '200 OK', {key: items})
