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


# -- issue 16: every knob is validated, in one place --------------------

@pytest.mark.parametrize('name,bad', [
    ('max_migrations', -1), ('max_migrations', 1.5), ('max_migrations', True),
    ('cpu_threshold', 0), ('cpu_threshold', 1.01), ('ram_threshold', -0.5),
    ('link_threshold', 2), ('link_threshold', float('nan')),
    ('min_gain', -0.1), ('min_gain', 1.5), ('min_gain', '0.1')])
def test_out_of_range_knob_is_refused_with_its_range(name, bad):
    with pytest.raises(ValueError) as e:
        advisor.AdvisorParams(**{name: bad})
    msg = str(e.value)
    assert msg.startswith('%s must be ' % name)
    assert msg.endswith('got %r' % (bad,))
    expected = {'max_migrations': 'an integer >= 0',
                'min_gain': 'a number in [0, 1]'}.get(
        name, 'a number in (0, 1]')
    assert expected in msg
    with pytest.raises(ValueError):      # resolve() checks the same way
        advisor.resolve(**{name: bad})


@pytest.mark.parametrize('name,edge', [
    ('max_migrations', 0), ('cpu_threshold', 1.0), ('link_threshold', 1),
    ('min_gain', 0), ('min_gain', 1.0)])
def test_range_edges_are_accepted(name, edge):
    assert getattr(advisor.AdvisorParams(**{name: edge}), name) == edge


@pytest.mark.parametrize('argv,message', [
    (['--max-migrations', '-1'],
     "argument --max-migrations: must be an integer >= 0, got '-1'"),
    (['--max-migrations', '2.5'],
     "argument --max-migrations: must be an integer >= 0, got '2.5'"),
    (['--cpu-threshold', '1.2'],
     "argument --cpu-threshold: must be a number in (0, 1], got '1.2'"),
    (['--link-threshold', '0'],
     "argument --link-threshold: must be a number in (0, 1], got '0'"),
    (['--min-gain', 'lots'],
     "argument --min-gain: must be a number in [0, 1], got 'lots'")])
def test_command_line_options_are_validated(argv, message, capsys):
    parser = advisor.add_arguments(argparse.ArgumentParser(prog='x'))
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
    assert message in capsys.readouterr().err


def test_schema_gives_the_ranges():
    props = advisor.get_schema()['properties']
    assert props['max_migrations']['minimum'] == 0
    assert 'maximum' not in props['max_migrations']
    assert props['link_threshold']['minimum'] == 0.0
    assert props['link_threshold']['exclusiveMinimum'] is True
    assert props['link_threshold']['maximum'] == 1.0
    assert props['min_gain']['minimum'] == 0.0
