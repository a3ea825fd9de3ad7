"""The loading path shared by the scheduler, the OSC plugin and the CLI:
traffic sources, the server model, Placement capacity. No Nova here."""

import logging
import types

import pytest

from nova_netaware.core.exceptions import DataError
from nova_netaware.core.exceptions import TrafficError
from nova_netaware.loading import capacity
from nova_netaware.loading import data
from nova_netaware.loading import servers
from nova_netaware.traffic.static import StaticTrafficSource


class Recorder(object):
    def __init__(self):
        self.records = []

    def __call__(self, level, msg, *args):
        self.records.append((level, msg % args))
        return True


def test_server_model_overrides_metadata_wins_bad_values_ignored():
    log = Recorder()
    s = servers.server_model(
        'vm', '4096', 2.0,
        {'netaware:max_hops': '4', 'netaware:dirty_rate_mbps': '100',
         'netaware:max_latency_us': 'soon'},
        {'netaware:max_hops': '2', 'netaware:dirty_rate_mbps': 'fast'},
        is_move=False, log_once=log)
    assert (s.uuid, s.memory_mb, s.vcpus, s.is_move) == ('vm', 4096, 2,
                                                         False)
    assert s.max_hops == 2                  # metadata over the extra spec
    assert s.dirty_rate_mbps == 100.0       # bad metadata: the flavor's
    assert s.max_latency_us is None         # bad extra spec: the option's
    assert log.records == [
        (logging.WARNING, "nova-netaware: ignoring flavor extra spec "
         "netaware:max_latency_us='soon': not a number"),
        (logging.WARNING, "nova-netaware: ignoring server metadata "
         "netaware:dirty_rate_mbps='fast': not a number")]


def test_server_model_without_flavor_values():
    s = servers.server_model('vm', None, None)
    assert (s.memory_mb, s.vcpus, s.max_hops, s.is_move) == (0, 0, None,
                                                             True)


@pytest.mark.parametrize('values, expected', [
    ([], 1.5),
    (['3'], 3.0),
    (['3', '0.5', '3'], 0.5),         # the minimum
    (['2', 'lots'], 1.5),             # one is not a number: the option
])
def test_weight_multiplier_follows_novas_rule(values, expected):
    assert servers.weight_multiplier(values, 1.5) == expected


def test_capacity_is_placements_rule():
    # (total - reserved) x allocation_ratio
    assert capacity.capacity(10, 2, 4.0) == 32.0
    assert capacity.capacity(8192, 512, 1.5) == 11520.0
    assert capacity.capacity(8) == 8.0
    assert capacity.capacity(4, 6, 2.0) == 0.0


class Source(object):
    """Stand-in traffic source that fails with *error*."""

    def __init__(self, error):
        self.error = error

    def get(self):
        raise self.error


def test_read_traffic_failures():
    boom = Source(ConnectionError('backend down'))
    for name_source in (False, True):
        with pytest.raises(DataError) as e:
            data.read_traffic(boom, 'x', name_source=name_source)
        assert str(e.value) == "traffic source 'x' failed: backend down"
    plain = Source(DataError('Prometheus at u: no answer'))
    with pytest.raises(DataError) as e:
        data.read_traffic(plain, 'x')
    assert e.value is plain.error                   # the scheduler's path
    with pytest.raises(DataError) as e:
        data.read_traffic(plain, 'x', name_source=True)
    assert str(e.value) == \
        "traffic source 'x' failed: Prometheus at u: no answer"


def test_read_traffic_names_a_traffic_data_error():
    bad = Source(TrafficError('t.yaml: flows[0] needs src and dst'))
    with pytest.raises(DataError) as e:
        data.read_traffic(bad, 'x', name_source=True)
    assert str(e.value) == "traffic source 'x': t.yaml: flows[0] needs " \
        "src and dst"


def test_get_traffic_source(tmp_path):
    p = tmp_path / 't.yaml'
    p.write_text('flows: [{src: a, dst: b, mbps: 5}]\n')
    conf = types.SimpleNamespace(netaware=types.SimpleNamespace(
        static_traffic_file=str(p)))
    source = data.get_traffic_source('static', conf)
    assert isinstance(source, StaticTrafficSource)
    assert data.read_traffic(source, 'static').rates == {('a', 'b'): 5.0}
    with pytest.raises(DataError) as e:
        data.get_traffic_source('no-such-source', conf)
    assert str(e.value).startswith(
        "traffic source 'no-such-source' cannot be loaded from namespace "
        "nova_netaware.traffic_sources: ")
