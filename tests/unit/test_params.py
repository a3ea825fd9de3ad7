"""Params mirrors the [netaware] options (defaults and fail-open/closed)."""

import dataclasses

from oslo_config import cfg

from nova_netaware import conf as na_conf
from nova_netaware.core.engine import Params


def fresh_conf(args=()):
    c = cfg.ConfigOpts()
    na_conf.register_opts(c)
    c(list(args), project='nova-netaware-unit', default_config_files=[])
    return c


def test_params_defaults_are_the_option_defaults():
    p = Params.from_conf(fresh_conf().netaware)
    assert p == Params()
    for f in dataclasses.fields(Params):
        if f.name != 'fail_closed':
            assert getattr(p, f.name) == f.default, f.name


def test_fail_closed_from_on_missing_data():
    c = fresh_conf()
    assert Params.from_conf(c.netaware).fail_closed is False
    c.set_override('on_missing_data', 'fail-closed', group='netaware')
    assert Params.from_conf(c.netaware).fail_closed is True


def test_overrides_reach_params():
    c = fresh_conf()
    c.set_override('max_link_utilization', 0.75, group='netaware')
    c.set_override('max_hops', 4, group='netaware')
    c.set_override('migration_weight', 2.0, group='netaware')
    p = Params.from_conf(c.netaware)
    assert (p.max_link_utilization, p.max_hops, p.migration_weight) == (
        0.75, 4, 2.0)
