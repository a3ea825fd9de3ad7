"""STAND-IN for the Networking API (Neutron) with ports. NOT Neutron.

Why a stand-in: Neutron 29 runs no ML2 mechanism here. Linux bridge was
removed from Neutron (2025.1) and Nova 34 refuses ``vif_type=bridge``
("Linux bridge VIFs are no longer supported by Nova"); Open vSwitch and
OVN need the openvswitch kernel module and macvtap needs the macvtap
link type, neither of which this kernel has (see docs/libvirt.md).

What it does: one shared network ``guests`` with one subnet
(``10.100.0.0/16``, no DHCP), ports that are created, updated, listed and
deleted like Neutron's, bound with ``binding:vif_type = tap``: Nova
creates the tap device ``tap<port id[:11]>`` itself and QEMU uses it;
:mod:`.tapagent` (the stand-in's agent, one per host) puts it on the
host's ``br-guests`` bridge. Each port gets the next free address of the
subnet and the MAC that encodes it (:func:`guest.mac_for_ip`), which is
the address the guest configures. Security groups: one ``default`` group,
not enforced. Every request is logged.

State lives in this process (one gunicorn worker) and in a JSON file, so
a restart keeps the ports.
"""

import ipaddress
import json
import logging
import os
import re
import threading
import urllib.parse
import uuid

from nova_netaware.deploy.localstack.libvirt import fabric
from nova_netaware.deploy.localstack.libvirt import guest
from nova_netaware.deploy.localstack import processes
from nova_netaware.deploy.localstack.netstub import _json

LOG = logging.getLogger('nova_netaware.deploy.localstack.libvirt.netstandin')

NET_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, 'nvl-guests-network'))
SUBNET_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, 'nvl-guests-subnet'))
SG_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, 'netaware-local-default-sg'))
FIRST_IP = ipaddress.ip_address('10.100.1.1')
LAST_IP = ipaddress.ip_address('10.100.254.254')
PORT_DEFAULTS = {
    'name': '', 'admin_state_up': True, 'status': 'ACTIVE',
    'device_id': '', 'device_owner': '', 'binding:host_id': '',
    'binding:profile': {}, 'binding:vnic_type': 'normal',
    'security_groups': [SG_ID], 'port_security_enabled': False,
    'allowed_address_pairs': [], 'extra_dhcp_opts': [], 'tags': [],
    'description': '', 'dns_name': '', 'qos_policy_id': None,
}


def network(project):
    return {'id': NET_ID, 'name': 'guests', 'status': 'ACTIVE',
            'subnets': [SUBNET_ID], 'shared': True, 'admin_state_up': True,
            'mtu': 1500, 'router:external': False, 'project_id': project,
            'tenant_id': project, 'port_security_enabled': False,
            'provider:network_type': 'vxlan',
            'provider:segmentation_id': fabric.VNI, 'tags': [],
            'description': 'nova-netaware lab stand-in network'}


def subnet(project):
    return {'id': SUBNET_ID, 'name': 'guests', 'network_id': NET_ID,
            'cidr': str(fabric.GUEST_NET), 'ip_version': 4,
            'gateway_ip': None, 'enable_dhcp': False,
            'dns_nameservers': [], 'host_routes': [],
            'allocation_pools': [{'start': str(FIRST_IP),
                                  'end': str(LAST_IP)}],
            'project_id': project, 'tenant_id': project, 'tags': []}


def security_group(project):
    return {'id': SG_ID, 'name': 'default', 'description': 'stand-in',
            'project_id': project, 'tenant_id': project,
            'security_group_rules': [], 'stateful': True, 'shared': False,
            'tags': []}


class Store(object):
    """The ports, kept in memory and in ``path``."""

    def __init__(self, path=None):
        self.path = path
        self.lock = threading.Lock()
        self.ports = {}
        if path and os.path.exists(path):
            with open(path) as f:
                self.ports = json.load(f)

    def _save(self):
        if self.path:
            processes.write_json(self.path, self.ports)

    def _next_ip(self):
        used = {p['fixed_ips'][0]['ip_address'] for p in self.ports.values()}
        ip = FIRST_IP
        while str(ip) in used or ip.packed[3] in (0, 255):
            ip += 1
            if ip > LAST_IP:
                raise ValueError('no free address in %s' % fabric.GUEST_NET)
        return str(ip)

    def create(self, body, project):
        with self.lock:
            port = dict(PORT_DEFAULTS)
            port.update({k: v for k, v in body.items() if k != 'fixed_ips'})
            port['id'] = str(uuid.uuid4())
            port['network_id'] = body.get('network_id', NET_ID)
            pid = body.get('project_id') or body.get('tenant_id') or project
            port['project_id'] = port['tenant_id'] = pid
            wanted = [f.get('ip_address') for f in body.get('fixed_ips', [])
                      if f.get('ip_address')]
            ip = wanted[0] if wanted else self._next_ip()
            port['fixed_ips'] = [{'subnet_id': SUBNET_ID, 'ip_address': ip}]
            port['mac_address'] = guest.mac_for_ip(ip)
            _bind(port)
            self.ports[port['id']] = port
            self._save()
            return port

    def update(self, port_id, body):
        with self.lock:
            port = self.ports[port_id]
            for key, value in body.items():
                if key not in ('id', 'fixed_ips', 'mac_address',
                               'network_id'):
                    port[key] = value
            _bind(port)
            self._save()
            return port

    def delete(self, port_id):
        with self.lock:
            del self.ports[port_id]
            self._save()


def _bind(port):
    if port.get('binding:host_id'):
        port['binding:vif_type'] = 'tap'
        port['binding:vif_details'] = {'port_filter': False,
                                       'connectivity': 'l2'}
    else:
        port['binding:vif_type'] = 'unbound'
        port['binding:vif_details'] = {}


def _matches(item, query):
    for key, values in query.items():
        if key in ('fields', 'limit', 'marker', 'sort_key', 'sort_dir'):
            continue
        if key == 'fixed_ips':
            ips = {'ip_address=' + f['ip_address']
                   for f in item.get('fixed_ips', [])}
            ips |= {'subnet_id=' + f['subnet_id']
                    for f in item.get('fixed_ips', [])}
            if not ips & set(values):
                return False
            continue
        if key not in item:
            return False
        if str(item[key]) not in values and not (
                item[key] in (True, False)
                and str(item[key]).lower() in values):
            return False
    return True


def _not_found(start_response, what):
    return _json(start_response, '404 Not Found', {'NeutronError': {
        'type': 'NotFound', 'detail': '',
        'message': '%s not found (lab network stand-in)' % what}})


STORE = Store(os.environ.get('NETAWARE_NETSTANDIN_STATE'))


def application(environ, start_response):
    method = environ.get('REQUEST_METHOD', 'GET')
    path = re.sub(r'\.json$', '', environ.get('PATH_INFO', '/').rstrip('/'))
    project = environ.get('HTTP_X_PROJECT_ID', '')
    query = urllib.parse.parse_qs(environ.get('QUERY_STRING', ''))
    body = {}
    if method in ('POST', 'PUT'):
        size = int(environ.get('CONTENT_LENGTH') or 0)
        raw = environ['wsgi.input'].read(size) if size else b''
        body = json.loads(raw or b'{}')
    LOG.info('%s %s?%s %s', method, path, environ.get('QUERY_STRING', ''),
             json.dumps(body) if body else '')
    if path in ('', '/'):
        return _json(start_response, '200 OK', {'versions': [{
            'id': 'v2.0', 'status': 'CURRENT',
            'links': [{'rel': 'self', 'href': '/v2.0/'}]}]})
    m = re.match(r'^/v2\.0/([a-z_-]+)(?:/([^/]+))?$', path)
    if not m:
        return _not_found(start_response, path)
    collection, item = m.groups()
    if collection == 'ports':
        return _ports(start_response, method, item, body, query, project)
    if method != 'GET':
        return _json(start_response, '501 Not Implemented', {
            'NeutronError': {'type': 'NotImplemented', 'detail': '',
                             'message': 'lab network stand-in: only ports '
                                        'can be written'}})
    fixed = {'networks': network, 'subnets': subnet,
             'security-groups': security_group}
    items = [fixed[collection](project)] if collection in fixed else []
    if collection == 'quotas':
        return _json(start_response, '200 OK', {'quota': {
            'port': -1, 'network': -1, 'subnet': -1,
            'security_group': -1, 'floatingip': -1}})
    if item is not None:
        found = [i for i in items if i['id'] == item]
        if not found:
            return _not_found(start_response, '%s %s' % (collection, item))
        return _json(start_response, '200 OK',
                     {collection.rstrip('s').replace('-', '_'): found[0]})
    items = [i for i in items if _matches(i, query)]
    return _json(start_response, '200 OK',
                 {collection.replace('-', '_'): items})


def _ports(start_response, method, item, body, query, project):
    if method == 'POST' and item is None:
        if 'ports' in body:
            ports = [STORE.create(p, project) for p in body['ports']]
            return _json(start_response, '201 Created', {'ports': ports})
        return _json(start_response, '201 Created',
                     {'port': STORE.create(body.get('port', {}), project)})
    if item is None:
        ports = [p for p in STORE.ports.values() if _matches(p, query)]
        return _json(start_response, '200 OK', {'ports': ports})
    if item not in STORE.ports:
        return _not_found(start_response, 'port ' + item)
    if method == 'GET':
        return _json(start_response, '200 OK', {'port': STORE.ports[item]})
    if method == 'PUT':
        return _json(start_response, '200 OK',
                     {'port': STORE.update(item, body.get('port', {}))})
    if method == 'DELETE':
        STORE.delete(item)
        start_response('204 No Content', [('Content-Length', '0')])
        return [b'']
    return _not_found(start_response, method)


def app():
    """gunicorn factory: ``nova_netaware.deploy.localstack.libvirt.netstandin:app()``."""
    logging.basicConfig(level=logging.INFO, format='%(asctime)s '
                        '%(levelname)s %(name)s %(message)s')
    return application
