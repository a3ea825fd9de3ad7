"""A scheduler restart on a large fabric: from the files to the first answer.

What nova-scheduler does on its first move request after a start, with
this plugin: read and check the topology file (distances, routing
structures), read the traffic file, route the whole traffic matrix
(the loads) and evaluate the request through Nova's filter and weigher
handlers. Each repetition starts from a fresh plugin runtime (nothing
cached in memory), on the same generated files as ``scheduler_bench.py``,
written as JSON and as YAML, twice: the first start after the topology file
was written or changed (no topology cache: ``[netaware] topology_cache``
builds it) and a restart that finds the cache. Prints the median of each
step (wall clock) and of the whole start in CPU time (the machine is
shared: CPU time is what the process itself spent), and Nova's default
pipeline on the same hosts for scale.

    .venv/bin/python benchmarks/cold_start_bench.py                 # 54,000
    .venv/bin/python benchmarks/cold_start_bench.py --hosts 11664 --peers 200
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

warnings.simplefilter('ignore')

import yaml  # noqa: E402

import scheduler_bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--kind', default='fat-tree')
    ap.add_argument('--hosts', type=int, default=54000)
    ap.add_argument('--peers', type=int, default=500)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--formats', default='json,yaml')
    args = ap.parse_args()
    from oslo_config import cfg

    from nova_netaware.cmd import sim
    from nova_netaware.scheduler import runtime

    tmp = tempfile.mkdtemp(prefix='netaware-coldstart-')
    hosts, real_n = scheduler_bench.setup(args.kind, args.hosts, args.peers,
                                          tmp)
    placement = runtime.get_runtime().placement
    files = {'json': (cfg.CONF.netaware.topology_file,
                      cfg.CONF.netaware.static_traffic_file)}
    if 'yaml' in args.formats:
        dumper = getattr(yaml, 'CSafeDumper', yaml.SafeDumper)
        files['yaml'] = tuple(p[:-len('.json')] + '.yaml'
                              for p in files['json'])
        for src, dst in zip(files['json'], files['yaml']):
            with open(src) as f, open(dst, 'w') as g:
                yaml.dump(json.load(f), g, Dumper=dumper)
    nova_default, ours = scheduler_bench.pipelines()
    sim.refresh(hosts)
    t0 = time.perf_counter()
    nova_default(hosts, scheduler_bench.new_spec())
    t_nova = time.perf_counter() - t0
    print('%s, %d hosts, %d peers, %d flows; Nova default pipeline %.0f ms'
          % (args.kind, real_n, args.peers, 2 * args.peers + 2 * real_n,
             1000 * t_nova))
    print('%-13s | %9s %9s %9s %9s | %9s | %9s' % (
        'file', 'topo ms', 'traffic', 'loads+req', 'total', 'total/Nova',
        'CPU ms'))
    from nova_netaware.core import topocache
    for fmt in args.formats.split(','):
        topo_path, traffic_path = files[fmt]
        cfg.CONF.set_override('topology_file', topo_path, 'netaware')
        cfg.CONF.set_override('static_traffic_file', traffic_path,
                              'netaware')
        steps = {'no cache': [], 'cache': []}
        for _ in range(args.reps):
            if os.path.exists(topocache.cache_path(topo_path)):
                os.unlink(topocache.cache_path(topo_path))
            for mode in ('no cache', 'cache'):
                # a restart, through the topology cache as the scheduler
                rt = sim.FixedPlacementRuntime(placement,
                                               topology_cache=True)
                runtime.set_runtime(rt)
                sim.refresh(hosts)
                spec = scheduler_bench.new_spec()
                c0 = time.process_time()
                t0 = time.perf_counter()
                rt.engine()
                t1 = time.perf_counter()
                rt.traffic()
                t2 = time.perf_counter()
                ours(hosts, spec)
                t3 = time.perf_counter()
                c3 = time.process_time()
                assert rt.engine().cache_status.startswith(
                    'cache' if mode == 'cache' else 'no cache')
                steps[mode].append((t1 - t0, t2 - t1, t3 - t2, t3 - t0,
                                    c3 - c0))
        for mode, st in steps.items():
            med = [statistics.median(s[i] for s in st) for i in range(5)]
            print('%-13s | %9.0f %9.0f %9.0f %9.0f | %9.2f | %9.0f' % (
                '%s, %s' % (fmt, mode), 1000 * med[0], 1000 * med[1],
                1000 * med[2], 1000 * med[3], med[3] / t_nova,
                1000 * med[4]))
        sys.stdout.flush()
    for p in sum(files.values(), ()):
        for q in (p, topocache.cache_path(p)):
            if os.path.exists(q):
                os.unlink(q)


if __name__ == '__main__':
    main()
