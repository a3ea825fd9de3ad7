"""The data plane and the cloud driver of one copy, commanded line by line
(the hypervisor half of the agent, without the peer and the epoch).

``python -m nova_netaware.replica.lab.portctl '<json [replica] options>'``
runs inside the hypervisor's namespaces (:class:`.guestbed.GuestBed` starts
it with ``nsenter``). It builds the durable buffer, the data plane and the
cloud driver through the same plugins and options as the agent, then reads
one JSON command per line on stdin and answers one JSON line on stdout:

* ``start {mode}``: intercept traffic toward the copy (``pass``/``buffer``);
* ``hold``: what the agent does when its copy goes standby: fence the data
  plane (buffer mode, between two packets), then pause the copy;
* ``release``: what activation does: unpause the copy, then replay the
  buffer in order and pass traffic;
* ``cycle``: ``hold`` then ``release`` in one command;
* ``suspend_resume {n}``: ``n`` pause + unpause cycles of the copy alone
  (the hypervisor's own floor), each timed;
* ``info`` (interface kind, replay path), ``stats``, ``quit``.

Times are ``time.monotonic()`` (CLOCK_MONOTONIC is the same clock in every
network namespace), so a client elsewhere can compare them with its own.
"""

import json
import logging
import os
import sys
import time

from oslo_config import cfg

from nova_netaware.replica import buffer as buffer_mod
from nova_netaware.replica import conf as rconf
from nova_netaware.replica import dataplane as dp
from nova_netaware.replica import drivers

LOG = logging.getLogger('portctl')


def build_conf(options):
    conf = cfg.ConfigOpts()
    rconf.register_opts(conf)
    for key, value in options.items():
        conf.set_override(key, value, group=rconf.GROUP)
    conf(args=[], project='nova-netaware-portctl', default_config_files=[])
    return conf


class Port:

    def __init__(self, conf):
        c = conf.replica
        self.copy = c.copy_name
        self.buffer = buffer_mod.DurableBuffer(
            os.path.join(c.state_dir, 'buffer-%s.sqlite' % c.service_name),
            c.buffer_max_packets, c.buffer_max_bytes, c.buffer_synchronous)
        self.buffer.start_checkpointer()
        self.cloud = drivers.load('nova_netaware.replica.cloud_drivers',
                                  c.cloud_driver, conf, None)
        self.dataplane = drivers.load('nova_netaware.replica.dataplanes',
                                      c.dataplane, conf, self.buffer)

    def op_start(self, mode='pass'):
        self.dataplane.start(mode)
        return self.op_info()

    def op_info(self):
        return {'kind': getattr(self.dataplane, 'kind', None),
                'replay_via': getattr(self.dataplane, 'via', None),
                'copy': self.copy}

    def op_hold(self):
        t0 = time.monotonic()
        self.dataplane.fence()
        t1 = time.monotonic()
        self.cloud.pause(self.copy)
        t2 = time.monotonic()
        return {'t_fence': t0, 't_fenced': t1, 't_paused': t2,
                'fence_ms': (t1 - t0) * 1e3, 'pause_ms': (t2 - t1) * 1e3,
                'running': self.cloud.is_running(self.copy)}

    def op_release(self):
        t0 = time.monotonic()
        self.cloud.unpause(self.copy)
        t1 = time.monotonic()
        r = self.dataplane.activate()
        t2 = time.monotonic()
        return {'t_unpause': t0, 't_resumed': t1, 't_released': t2,
                'unpause_ms': (t1 - t0) * 1e3, 'replay_ms': (t2 - t1) * 1e3,
                'replayed': r['replayed'],
                'replay_started': r.get('replay_started'),
                'running': self.cloud.is_running(self.copy)}

    def op_cycle(self):
        """hold then release at once, in one command (the agent's own
        sequence, without a control round trip or a state query
        between)."""
        t0 = time.monotonic()
        self.dataplane.fence()
        t1 = time.monotonic()
        self.cloud.pause(self.copy)
        t2 = time.monotonic()
        self.cloud.unpause(self.copy)
        t3 = time.monotonic()
        r = self.dataplane.activate()
        t4 = time.monotonic()
        return {'t_fence': t0, 't_released': t4,
                'fence_ms': (t1 - t0) * 1e3, 'pause_ms': (t2 - t1) * 1e3,
                'unpause_ms': (t3 - t2) * 1e3, 'replay_ms': (t4 - t3) * 1e3,
                'replayed': r['replayed']}

    def op_suspend_resume(self, n=1):
        pause, resume = [], []
        for _ in range(int(n)):
            t0 = time.monotonic()
            self.cloud.pause(self.copy)
            t1 = time.monotonic()
            self.cloud.unpause(self.copy)
            t2 = time.monotonic()
            pause.append((t1 - t0) * 1e3)
            resume.append((t2 - t1) * 1e3)
        return {'pause_ms': pause, 'resume_ms': resume}

    def op_stats(self):
        if hasattr(self.dataplane, 'flush'):
            self.dataplane.flush()
        return {'dataplane': self.dataplane.stats(),
                'buffer_packets': self.buffer.count,
                'running': self.cloud.is_running(self.copy)}

    def close(self):
        self.dataplane.stop()
        if hasattr(self.dataplane, 'remove_rules'):
            self.dataplane.remove_rules()
        self.buffer.close()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='%(asctime)s %(name)s %(message)s')
    out = sys.stdout
    if len(argv) != 1:
        out.write(json.dumps({'ok': False, 'error': 'usage: portctl '
                              "'<json [replica] options>'"}) + '\n')
        return 2
    try:
        port = Port(build_conf(json.loads(argv[0])))
    except Exception as e:
        LOG.exception('start failed')
        out.write(json.dumps({'ok': False, 'error': str(e)}) + '\n')
        out.flush()
        return 2
    try:
        for line in sys.stdin:
            req = json.loads(line)
            op = req.pop('op')
            if op == 'quit':
                out.write(json.dumps({'ok': True}) + '\n')
                out.flush()
                break
            try:
                rep = getattr(port, 'op_' + op)(**req)
                rep['ok'] = True
            except (AttributeError, TypeError) as e:
                rep = {'ok': False, 'error': 'bad command %r: %s' % (op, e)}
            except (dp.DataPlaneError, drivers.DriverError) as e:
                LOG.exception('%s failed', op)
                rep = {'ok': False, 'error': str(e)}
            out.write(json.dumps(rep) + '\n')
            out.flush()
    finally:
        port.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
