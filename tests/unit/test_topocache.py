"""The topology's binary cache: the same topology, never a stale or
damaged one."""

import json
import os

import numpy as np
import pytest

from nova_netaware.core import topocache
from nova_netaware.core.generators import fat_tree
from nova_netaware.core.generators import leaf_spine
from nova_netaware.core.topology import Topology
from nova_netaware.core.topology import TopologyError


def _same(a, b):
    for k in Topology.STATE + ('dist', 'lat'):
        x, y = getattr(a, k), getattr(b, k)
        if isinstance(x, list):
            assert x == y, k
        else:
            assert x.dtype == y.dtype and np.array_equal(x, y), k
    assert a.switch_index == b.switch_index
    assert a.host_index == b.host_index
    assert (a.diameter, a.max_host_hops, a.source) == \
        (b.diameter, b.max_host_hops, b.source)


def _write(path, data):
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize('data', [
    fat_tree(4), leaf_spine(4, 10, 3, 25, 100),
], ids=['fat-tree', 'leaf-spine'])
def test_cache_gives_the_same_topology(tmp_path, data):
    if data['links']:
        data['links'][0]['latency_us'] = 3.5    # unequal latencies too
    p = _write(tmp_path / 'topo.json', data)
    t1, s1 = topocache.load(p, 2.0)
    assert s1 == 'no cache; cache written'
    assert os.path.exists(topocache.cache_path(p))
    t2, s2 = topocache.load(p, 2.0)
    assert s2 == 'cache'
    _same(t2, Topology.from_file(p, 2.0))
    _same(t1, t2)


def test_edit_makes_the_cache_stale(tmp_path):
    p = _write(tmp_path / 'topo.json', leaf_spine(2, 4, 2, 25, 100))
    topocache.load(p)
    data = leaf_spine(2, 5, 2, 25, 100)
    _write(tmp_path / 'topo.json', data)
    t, status = topocache.load(p)
    assert status == 'stale cache; cache written'
    assert len(t.host_names) == 10
    _same(t, Topology.from_file(p))
    # another default latency is another key
    t, status = topocache.load(p, 5.0)
    assert status.startswith('stale cache')
    _same(t, Topology.from_file(p, 5.0))


def test_damaged_caches_are_rebuilt(tmp_path):
    p = _write(tmp_path / 'topo.json', fat_tree(4))
    want = Topology.from_file(p)
    cp = topocache.cache_path(p)
    topocache.load(p)
    good = open(cp, 'rb').read()
    # truncated, garbage, one byte of an array changed
    damaged = [good[:len(good) // 2], b'not a cache at all']
    z = dict(np.load(cp))
    z['twin_hops'] = z['twin_hops'].copy()
    z['twin_hops'][0, 1] += 1
    np.savez(str(tmp_path / 'flip.npz'), **z)
    damaged.append(open(tmp_path / 'flip.npz', 'rb').read())
    whys = []
    for bad in damaged:
        with open(cp, 'wb') as f:
            f.write(bad)
        t, status = topocache.load(p)
        whys.append(status)
        _same(t, want)
        # and rewritten: the next load uses it
        assert topocache.load(p)[1] == 'cache'
    assert whys[0].startswith('unreadable cache')
    assert whys[1].startswith('unreadable cache')
    assert whys[2] == 'damaged cache (checksum); cache written'


def test_bad_file_raises_whatever_the_cache(tmp_path):
    p = _write(tmp_path / 'topo.json', fat_tree(4))
    topocache.load(p)
    data = fat_tree(4)
    data['hosts'][0]['switch'] = 'nowhere'
    _write(tmp_path / 'topo.json', data)
    with pytest.raises(TopologyError) as e:
        topocache.load(p)
    assert 'unknown switch' in str(e.value)
    with pytest.raises(TopologyError):
        topocache.load(str(tmp_path / 'missing.json'))


def test_unwritable_directory_leaves_no_cache(tmp_path):
    d = tmp_path / 'ro'
    d.mkdir()
    p = _write(d / 'topo.json', leaf_spine(2, 4, 2, 25, 100))
    os.chmod(d, 0o555)
    try:
        if os.access(str(d), os.W_OK):
            pytest.skip('running as a user who can write anywhere (root)')
        t, status = topocache.load(p)
        assert status.startswith('no cache; cache not written')
        _same(t, Topology.from_file(p))
    finally:
        os.chmod(d, 0o755)


def test_failed_write_leaves_no_cache(tmp_path, monkeypatch):
    # As root (the test machine) every directory is writable, so the
    # permission error is injected at the one call that creates the file.
    p = _write(tmp_path / 'topo.json', leaf_spine(2, 4, 2, 25, 100))

    def refuse(*args, **kwargs):
        raise PermissionError(13, 'Permission denied')
    monkeypatch.setattr(topocache.tempfile, 'mkstemp', refuse)
    t, status = topocache.load(p)
    assert status == 'no cache; cache not written (Permission denied)'
    _same(t, Topology.from_file(p))
    assert not os.path.exists(topocache.cache_path(p))


def test_without_cache(tmp_path):
    p = _write(tmp_path / 'topo.json', leaf_spine(2, 4, 2, 25, 100))
    t, status = topocache.load(p, use_cache=False)
    assert status == 'no cache'
    assert not os.path.exists(topocache.cache_path(p))
