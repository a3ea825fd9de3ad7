"""The advisor's knobs: one declaration, its schema and its options."""

import argparse
import dataclasses

import pytest

from nova_netaware import advisor
from nova_netaware.core.engine import Engine
from nova_netaware.core.engine import Server
from nova_netaware.core.topology import leaf_spine
from nova_netaware.core.topology import Topology
from nova_netaware.core.traffic import TrafficMatrix


def test_schema_is_the_declaration():
    schema = advisor.get_schema()['properties']
    fields = dataclasses.fields(advisor.AdvisorParams)
    assert list(schema) == [f.name for f in fields]
    for f in fields:
        assert schema[f.name]['default'] == f.default
        assert schema[f.name]['type'] == (
            'integer' if isinstance(f.default, int) else 'number')
        assert schema[f.name]['description'].endswith('.')
    assert schema['cpu_threshold']['default'] == 0.9
    assert schema['ram_threshold']['default'] == 0.9
    assert schema['link_threshold']['default'] == 0.8
    assert schema['max_migrations']['default'] == 5
    assert schema['min_gain']['default'] == 0.1


def test_command_line_options_round_trip():
    parser = advisor.add_arguments(argparse.ArgumentParser())
    assert advisor.AdvisorParams.from_args(
        parser.parse_args([])) == advisor.AdvisorParams()
    got = advisor.AdvisorParams.from_args(parser.parse_args(
        ['--max-migrations', '2', '--min-gain', '0', '--link-threshold',
         '0.5']))
    assert got == advisor.AdvisorParams(max_migrations=2, min_gain=0.0,
                                        link_threshold=0.5)


def test_unknown_knob_is_refused():
    with pytest.raises(TypeError):
        advisor.resolve(max_moves=3)


def test_knobs_and_keyword_overrides_plan_alike():
    eng = Engine(Topology(leaf_spine(1, 2, 2, uplink_gbps=10,
                                     fabric_gbps=10)))
    placement = {'a': 'compute-1', 'b': 'compute-1', 'x': 'compute-3',
                 'y': 'compute-4'}
    tm = TrafficMatrix({'flows': [
        {'src': 'x', 'dst': 'a', 'mbps': 5000},
        {'src': 'y', 'dst': 'b', 'mbps': 3500}]})
    servers = {u: Server(u, memory_mb=1024, vcpus=1) for u in placement}
    usage = {h: advisor.HostUsage(16, 2, 65536, 8192)
             for h in eng.topo.host_names}
    by_kw = advisor.plan(eng, tm, placement, servers, usage,
                         max_migrations=1)
    by_knobs = advisor.plan(eng, tm, placement, servers, usage,
                            knobs=advisor.AdvisorParams(max_migrations=1))
    assert len(by_kw.moves) == 1
    assert by_kw == by_knobs
