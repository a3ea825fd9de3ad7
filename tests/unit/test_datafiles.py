"""Data layer: traffic validation, the static source's change-aware cache,
and LogOnce. No Nova here."""

import logging
import os
import subprocess
import sys
import threading
import types

import pytest
import yaml

from nova_netaware.core.engine import Candidate
from nova_netaware.core.engine import Engine
from nova_netaware.core.engine import Params
from nova_netaware.core.engine import Server
from nova_netaware.core.exceptions import DataError
from nova_netaware.core.traffic import TrafficError
from nova_netaware.core.traffic import TrafficMatrix
from nova_netaware.loading.data import FileCache
from nova_netaware.traffic.static import StaticTrafficSource
from nova_netaware.utils.log import LogOnce

from tests.unit._core import ls232


def terr(data):
    with pytest.raises(TrafficError) as e:
        TrafficMatrix(data, source='t.yaml')
    return str(e.value)


# -- traffic matrix validation ------------------------------------------------

def test_traffic_top_level():
    msg = 't.yaml: traffic must be a mapping with a list "flows"'
    assert terr([]) == msg
    assert terr(None) == msg
    assert terr({'flow': []}) == msg
    assert terr({'flows': {'src': 'a'}}) == msg


def test_traffic_bad_entries_are_named():
    ok = {'src': 'a', 'dst': 'b', 'mbps': 1}
    assert terr({'flows': [ok, 'a->b']}) == \
        "t.yaml: flows[1] must be a mapping: 'a->b'"
    assert terr({'flows': [ok, ok, {'src': 'a', 'mbps': 1}]}) == \
        "t.yaml: flows[2] needs src and dst: {'src': 'a', 'mbps': 1}"
    assert terr({'flows': [{'src': 'a', 'dst': 'a', 'mbps': 1}]}) == \
        't.yaml: flows[0]: src and dst are the same server a'
    assert terr({'flows': [ok, {'src': 'a', 'dst': 'b', 'mbps': 'lots'}]}) \
        == "t.yaml: flows[1].mbps must be a number, got 'lots'"
    assert terr({'flows': [{'src': 'a', 'dst': 'b'}]}) == \
        't.yaml: flows[0].mbps must be a number, got None'
    assert terr({'flows': [{'src': 'a', 'dst': 'b', 'mbps': -1}]}) == \
        't.yaml: flows[0].mbps must be >= 0 and finite, got -1'
    assert terr({'flows': [{'src': 'a', 'dst': 'b',
                            'mbps': float('inf')}]}) == \
        't.yaml: flows[0].mbps must be >= 0 and finite, got inf'
    assert terr({'flows': [{'src': 'a', 'dst': 'b',
                            'mbps': float('nan')}]}) == \
        't.yaml: flows[0].mbps must be >= 0 and finite, got nan'


def test_traffic_aggregation_and_peers():
    tm = TrafficMatrix({'flows': [
        {'src': 'a', 'dst': 'b', 'mbps': 100},
        {'src': 'a', 'dst': 'b', 'mbps': '50.5'},   # same pair adds up
        {'src': 'b', 'dst': 'a', 'mbps': 20},
        {'src': 'c', 'dst': 'a', 'mbps': 7},
        {'src': 'c', 'dst': 'b', 'mbps': 0}]})
    assert tm.rates == {('a', 'b'): 150.5, ('b', 'a'): 20.0,
                        ('c', 'a'): 7.0, ('c', 'b'): 0.0}
    assert len(tm) == 4
    assert tm.peers('a') == {'b': [150.5, 20.0], 'c': [0.0, 7.0]}
    assert tm.peers('nobody') == {}
    # incoming: b -> a 20 + c -> a 7
    assert tm.incoming('a') == 27.0
    assert tm.incoming('b') == 150.5
    assert set(tm.servers) == {'a', 'b', 'c'}
    assert TrafficMatrix({'flows': []}).peers('a') == {}


@pytest.mark.parametrize('seed', range(10))
def test_traffic_index_equals_the_plain_dicts(seed):
    """Server order, flow arrays and every server's peers (values and
    order) are those of plain dictionaries filled flow by flow."""
    import collections
    import random
    rng = random.Random(seed)
    names = ['s%d' % i for i in range(rng.randint(2, 30))]
    flows = []
    for _ in range(rng.randint(0, 200)):
        a, b = rng.sample(names, 2)
        flows.append({'src': a, 'dst': b,
                      'mbps': rng.choice([0, rng.uniform(0, 100)])})
    tm = TrafficMatrix({'flows': flows})
    rates = collections.defaultdict(float)
    for f in flows:
        rates[(f['src'], f['dst'])] += f['mbps']
    peers = collections.defaultdict(dict)
    for (a, b), r in rates.items():
        peers[a].setdefault(b, [0.0, 0.0])[0] += r
        peers[b].setdefault(a, [0.0, 0.0])[1] += r
    assert list(tm.rates.items()) == list(rates.items())
    assert tm.server_list == list(peers)
    src, dst, mbps = tm.flow_arrays()
    assert [(tm.server_list[a], tm.server_list[b]) for a, b in
            zip(src, dst)] == list(rates)
    assert mbps.tolist() == list(rates.values())
    for s in names:
        assert list(tm.peers(s).items()) == list(peers.get(s, {}).items())
    pairs = rng.sample(list(rates), len(rates) // 2)
    sub = tm.subset(pairs)
    assert sub.rates == {p: rates[p] for p in pairs}
    for s in names:
        want = {p: v for p, v in sub.peers(s).items()}
        assert want == {
            p: [rates[(s, p)] if (s, p) in sub.rates else 0.0,
                rates[(p, s)] if (p, s) in sub.rates else 0.0]
            for p in peers.get(s, {})
            if (s, p) in sub.rates or (p, s) in sub.rates}


def test_traffic_from_file_errors(tmp_path):
    p = tmp_path / 'traffic.yaml'
    p.write_text('flows: [{src: a, dst: b, mbps: 1}\n')
    with pytest.raises(TrafficError) as e:
        TrafficMatrix.from_file(str(p))
    assert str(e.value).startswith('%s is not valid YAML' % p)
    j = tmp_path / 'traffic.json'
    j.write_text('{"flows": [{"src": "a", "dst": "b", "mbps": 1},]}')
    with pytest.raises(TrafficError) as e:
        TrafficMatrix.from_file(str(j))
    assert str(e.value).startswith('%s is not valid JSON' % j)
    with pytest.raises(TrafficError) as e:
        TrafficMatrix.from_file(str(tmp_path / 'nope.yaml'))
    assert str(e.value) == ('cannot read %s: No such file or directory'
                            % (tmp_path / 'nope.yaml'))
    p.write_text('flows:\n- {src: a, dst: b, mbps: 1}\n- {src: a, dst: b}\n')
    with pytest.raises(TrafficError) as e:
        TrafficMatrix.from_file(str(p))
    assert str(e.value) == '%s: flows[1].mbps must be a number, got None' % p


# -- static source and FileCache ----------------------------------------------

def conf_for(path):
    return types.SimpleNamespace(netaware=types.SimpleNamespace(
        static_traffic_file=None if path is None else str(path)))


def write_flows(path, flows):
    path.write_text(yaml.safe_dump({'flows': [
        {'src': s, 'dst': d, 'mbps': r} for s, d, r in flows]}))


def test_static_source_reads_and_caches(tmp_path):
    p = tmp_path / 'traffic.yaml'
    write_flows(p, [('vm', 'q', 100)])
    src = StaticTrafficSource(conf_for(p))
    tm = src.get()
    assert tm.rates == {('vm', 'q'): 100.0}
    st = os.stat(p)
    assert tm.version == (str(p), st.st_mtime_ns, st.st_size, st.st_ino)
    # unchanged file: the very same matrix
    assert src.get() is tm


def test_static_source_picks_up_edits(tmp_path):
    p = tmp_path / 'traffic.yaml'
    write_flows(p, [('vm', 'q', 100)])
    src = StaticTrafficSource(conf_for(p))
    first = src.get()
    write_flows(p, [('vm', 'q', 2500), ('q', 'vm', 10)])
    second = src.get()
    assert second is not first
    assert second.rates == {('vm', 'q'): 2500.0, ('q', 'vm'): 10.0}
    assert second.version != first.version
    # an edit of the same size is caught through the modification time
    write_flows(p, [('vm', 'q', 9500), ('q', 'vm', 10)])
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert src.get().rates[('vm', 'q')] == 9500.0


def test_static_source_picks_up_a_replaced_file(tmp_path):
    # Same size and mtime, new inode (an editor's write-and-rename).
    p = tmp_path / 'traffic.yaml'
    write_flows(p, [('vm', 'q', 100)])
    src = StaticTrafficSource(conf_for(p))
    assert src.get().rates == {('vm', 'q'): 100.0}
    old = os.stat(p)
    keep = tmp_path / 'keep'
    os.link(p, keep)            # keep the old inode alive: no reuse
    new = tmp_path / 'new.yaml'
    write_flows(new, [('vm', 'q', 900)])
    os.utime(new, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(new, p)
    assert os.stat(p).st_size == old.st_size
    assert src.get().rates == {('vm', 'q'): 900.0}


def test_static_source_edit_changes_the_decision(tmp_path):
    # The engine's cached base loads follow the matrix version.
    p = tmp_path / 'traffic.yaml'
    write_flows(p, [('vm', 'q', 1000)])
    src = StaticTrafficSource(conf_for(p))
    pl = {'vm': 'compute-1', 'q': 'compute-3', 'r': 'compute-5'}
    eng = Engine(ls232())
    cands = [Candidate('compute-3'), Candidate('compute-5')]
    ev = eng.evaluate(src.get(), pl, Server('vm'), cands, Params())
    assert ev.winner == 'compute-3'
    write_flows(p, [('vm', 'r', 1000), ('vm', 'q', 10)])
    ev = eng.evaluate(src.get(), pl, Server('vm'), cands, Params())
    assert ev.winner == 'compute-5'
    # comm: compute-5 = 10 * 4 = 40, compute-3 = 1000 * 4 = 4000
    assert list(ev.comm) == [4000.0, 40.0]


def test_static_source_bad_file_then_fixed(tmp_path):
    p = tmp_path / 'traffic.yaml'
    write_flows(p, [('vm', 'q', 100)])
    src = StaticTrafficSource(conf_for(p))
    src.get()
    p.write_text('flows:\n- {src: vm, dst: q, mbps: 100}\n'
                 '- {src: vm, dst: q, mbps: fast}\n')
    with pytest.raises(DataError) as e:
        src.get()
    assert str(e.value) == \
        "%s: flows[1].mbps must be a number, got 'fast'" % p
    # still broken, still the same error (not re-read)
    with pytest.raises(DataError):
        src.get()
    write_flows(p, [('vm', 'q', 300)])
    assert src.get().rates == {('vm', 'q'): 300.0}


def test_static_source_missing_or_unset(tmp_path):
    with pytest.raises(DataError) as e:
        StaticTrafficSource(conf_for(None)).get()
    assert str(e.value) == '[netaware] static_traffic_file is not set'
    p = tmp_path / 'absent.yaml'
    with pytest.raises(DataError) as e:
        StaticTrafficSource(conf_for(p)).get()
    assert str(e.value) == 'cannot read %s: No such file or directory' % p
    # a file that disappears after a good read is an error, not stale data
    write_flows(p, [('vm', 'q', 1)])
    src = StaticTrafficSource(conf_for(p))
    src.get()
    p.unlink()
    with pytest.raises(DataError):
        src.get()


def test_file_cache_loads_once_per_change(tmp_path):
    calls = []

    def loader(path, key):
        calls.append(key)
        text = open(path).read()
        if 'boom' in text:
            raise ValueError('boom in %s' % path)
        return text

    p = tmp_path / 'f'
    p.write_text('one')
    fc = FileCache(loader)
    assert fc.get(str(p)) == 'one'
    assert fc.get(str(p)) == 'one'
    assert len(calls) == 1
    p.write_text('boom!')
    for _ in range(3):
        with pytest.raises(DataError) as e:
            fc.get(str(p))
        assert str(e.value) == 'boom in %s' % p
    assert len(calls) == 2          # the broken version is read once
    p.write_text('three!!')
    assert fc.get(str(p)) == 'three!!'
    assert len(calls) == 3
    # another path is another key
    q = tmp_path / 'g'
    q.write_text('one')
    assert fc.get(str(q)) == 'one'
    assert len(calls) == 4


# -- LogOnce ------------------------------------------------------------------

class Recorder(object):
    def __init__(self):
        self.records = []

    def log(self, level, msg, *args):
        self.records.append((level, msg % args if args else msg))


def test_log_once_logs_each_message_once():
    rec = Recorder()
    once = LogOnce(rec)
    assert once(logging.WARNING, 'topology %s: %s', 'a.yaml', 'bad') is True
    assert once(logging.WARNING, 'topology %s: %s', 'a.yaml', 'bad') is False
    assert once(logging.WARNING, 'topology a.yaml: bad') is False
    assert rec.records == [(logging.WARNING, 'topology a.yaml: bad')]
    # other arguments or another level are another message
    assert once(logging.WARNING, 'topology %s: %s', 'b.yaml', 'bad') is True
    assert once(logging.ERROR, 'topology %s: %s', 'a.yaml', 'bad') is True
    assert len(rec.records) == 3


def test_log_once_with_a_real_logger(caplog):
    once = LogOnce(logging.getLogger('netaware-test'))
    with caplog.at_level(logging.INFO, logger='netaware-test'):
        for _ in range(5):
            once(logging.WARNING, 'peer %s deleted', 'p1')
    assert [r.getMessage() for r in caplog.records] == ['peer p1 deleted']
    assert caplog.records[0].levelno == logging.WARNING


def test_log_once_memory_is_bounded():
    rec = Recorder()
    once = LogOnce(rec, limit=2)
    for m in ('a', 'b', 'c'):        # 'a' is forgotten when 'c' arrives
        once(logging.INFO, m)
    assert once(logging.INFO, 'c') is False
    assert once(logging.INFO, 'a') is True     # forgets 'b'
    assert once(logging.INFO, 'c') is False
    assert once(logging.INFO, 'b') is True
    assert [m for _, m in rec.records] == ['a', 'b', 'c', 'a', 'b']


def test_log_once_across_threads():
    rec = Recorder()
    once = LogOnce(rec)
    start = threading.Barrier(8)

    def work():
        start.wait()
        for _ in range(200):
            once(logging.WARNING, 'same %s', 'message')

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rec.records == [(logging.WARNING, 'same message')]


# -- the core does not need Nova ----------------------------------------------

def test_core_and_data_layer_import_without_nova():
    code = (
        'import sys\n'
        'import nova_netaware.core.topology, nova_netaware.core.traffic\n'
        'import nova_netaware.core.routing, nova_netaware.core.loads\n'
        'import nova_netaware.core.migration\n'
        'import nova_netaware.core.constraints\n'
        'import nova_netaware.core.impact, nova_netaware.core.engine\n'
        'import nova_netaware.advisor, nova_netaware.core.cost\n'
        'import nova_netaware.loading.data, nova_netaware.loading.servers\n'
        'import nova_netaware.loading.capacity\n'
        'import nova_netaware.loading.placement_file\n'
        'import nova_netaware.utils.log, nova_netaware.traffic.static\n'
        'bad = sorted(m for m in sys.modules\n'
        '             if m == "nova" or m.startswith("nova."))\n'
        'print(",".join(bad))\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(
                             os.path.dirname(os.path.abspath(__file__)))))
    assert out.stdout.strip() == ''
