"""The lab's network stand-in: ports are created, bound, listed, updated
and deleted as Nova needs, with MAC-encoded fixed IPs (WSGI in process)."""

import io
import json

import pytest

from nova_netaware.deploy.localstack.libvirt import guest
from nova_netaware.deploy.localstack.libvirt import netstandin


@pytest.fixture
def call(tmp_path, monkeypatch):
    monkeypatch.setattr(netstandin, 'STORE',
                        netstandin.Store(str(tmp_path / 'ports.json')))

    def _call(method, path, body=None, query=''):
        raw = json.dumps(body).encode() if body is not None else b''
        env = {'REQUEST_METHOD': method, 'PATH_INFO': path,
               'QUERY_STRING': query, 'CONTENT_LENGTH': str(len(raw)),
               'wsgi.input': io.BytesIO(raw), 'HTTP_X_PROJECT_ID': 'p1'}
        status = []
        out = b''.join(netstandin.application(
            env, lambda s, h: status.append(s)))
        return int(status[0].split()[0]), json.loads(out) if out else None
    return _call


def test_port_life_cycle(call):
    code, body = call('POST', '/v2.0/ports', {'port': {
        'network_id': netstandin.NET_ID, 'device_id': 'vm-1'}})
    assert code == 201
    port = body['port']
    ip = port['fixed_ips'][0]['ip_address']
    assert ip == '10.100.1.1'
    assert guest.ip_for_mac(port['mac_address']) == ip
    assert port['binding:vif_type'] == 'unbound'
    code, body = call('PUT', '/v2.0/ports/' + port['id'], {'port': {
        'binding:host_id': 'lvcmp1', 'device_owner': 'compute:nova'}})
    assert body['port']['binding:vif_type'] == 'tap'
    _, second = call('POST', '/v2.0/ports', {'port': {'device_id': 'vm-2'}})
    assert second['port']['fixed_ips'][0]['ip_address'] == '10.100.1.2'
    _, listed = call('GET', '/v2.0/ports', query='device_id=vm-1')
    assert [p['id'] for p in listed['ports']] == [port['id']]
    _, listed = call('GET', '/v2.0/ports',
                     query='fixed_ips=ip_address%3D10.100.1.2')
    assert [p['device_id'] for p in listed['ports']] == ['vm-2']
    code, _ = call('DELETE', '/v2.0/ports/' + port['id'])
    assert code == 204
    code, _ = call('GET', '/v2.0/ports/' + port['id'])
    assert code == 404
    # the freed address is given out again
    _, third = call('POST', '/v2.0/ports', {'port': {}})
    assert third['port']['fixed_ips'][0]['ip_address'] == '10.100.1.1'


def test_network_and_subnet_are_fixed_and_read_only(call):
    _, nets = call('GET', '/v2.0/networks', query='id=' + netstandin.NET_ID)
    assert [n['name'] for n in nets['networks']] == ['guests']
    _, nets = call('GET', '/v2.0/networks', query='id=other')
    assert nets['networks'] == []
    _, sub = call('GET', '/v2.0/subnets/' + netstandin.SUBNET_ID)
    assert sub['subnet']['cidr'] == '10.100.0.0/16'
    code, _ = call('POST', '/v2.0/networks', {'network': {}})
    assert code == 501
