"""Two clouds on one machine: ``local-stack up --virt libvirt --clouds 2``.

``cloud-a`` is the stack of the state directory; ``cloud-b`` is a second,
complete stack in ``<state dir>/cloud-b``: its own keystone, glance,
placement, Nova (API, conductor, scheduler with the plugin, cells) and
libvirt computes, its own databases (``netaware_b_*``), RabbitMQ vhost
(``netaware_b``), admin and service passwords, ports (cloud a's + 100),
lab namespaces (``nvlb-*``), host names (``lvbcmp1`` ...) and underlay
(``10.2.0.0/15``) (:class:`..settings.CloudProfile`). Two keystones, not
one with two regions: memory allows it (each control plane is about
1.5 GB of 24), and then nothing is shared but the machine's MariaDB,
RabbitMQ and Redis servers, as two sites may share nothing but a
coordination service.

The clouds are joined by one shaped veth link between their gateway
switches (:mod:`.libvirt.intercloud`), measured once up. The combined
``clouds.yaml`` of cloud a's state directory gets ``cloud-a`` and
``cloud-b`` (distinct endpoints and credentials) beside
``netaware-local``.
"""

import os

from nova_netaware.deploy.exceptions import StackError
from nova_netaware.deploy.localstack import settings as ls_settings
from nova_netaware.deploy.localstack.processes import say

CLOUD_A = 'cloud-a'
CLOUD_B = 'cloud-b'
#: ports of cloud b: cloud a's + this
PORT_SHIFT = 100


def settings_b(a, computes=None):
    """The :class:`Settings` of cloud b for cloud a's settings ``a``."""
    return ls_settings.Settings(
        os.path.join(a.state_dir, 'cloud-b'),
        computes=computes or os.environ.get('NETAWARE_STACK_B_COMPUTES', 2),
        port_base=a.ports['keystone'] + PORT_SHIFT, virt='libvirt',
        cloud='b')


def has_b(a):
    return os.path.exists(os.path.join(a.state_dir, 'cloud-b', 'virt'))


def _labs(a, b):
    from nova_netaware.deploy.localstack.libvirt import lab as lablib
    from nova_netaware.deploy.localstack.libvirt import novastack
    return (lablib.Lab(novastack.lab_settings(a)),
            lablib.Lab(novastack.lab_settings(b)))


def link(a, b=None):
    """The :class:`intercloud.Link` of the two clouds (up or not)."""
    from nova_netaware.deploy.localstack.libvirt import intercloud
    la, lb = _labs(a, b or settings_b(a))
    return intercloud.Link(la, lb)


def up(stack_cls, a, timeout=180, b_computes=None):
    """Cloud a, cloud b, the link, its measurement, the clouds.yaml."""
    if a.virt != 'libvirt':
        raise StackError('--clouds 2 needs --virt libvirt (the replica '
                         'agent pauses real domains)')
    if a.profile.name != 'a':
        raise StackError('--clouds 2 starts from cloud a\'s settings')
    b = settings_b(a, b_computes)
    # each cloud's hosts reach the other cloud's APIs (the replicate
    # command and an operator's tools run on either side)
    a.extra_relay_ports = tuple(b.ports.values())
    b.extra_relay_ports = tuple(a.ports.values())
    stack_cls(a).up(timeout=timeout)
    say('cloud-b: a second stack in %s' % b.state_dir)
    stack_cls(b).up(timeout=timeout)
    ln = link(a, b)
    if not ln.state():
        st = ln.make()
        say('inter-cloud link %s %s <-> %s %s, shaped to %.0f Mbit/s'
            % (st['a']['ns'], st['a']['if'], st['b']['ns'], st['b']['if'],
               st['gbps'] * 1000))
    measured = measure(a, b)
    say('inter-cloud link measured: %.1f Mbit/s (TCP, %s -> %s, %.1f s)'
        % (measured['mbit_s'], measured['from'], measured['to'],
           measured['seconds']))
    write_clouds_yaml(a, b)
    say('clouds.yaml %s: clouds %s and %s' % (a.clouds_yaml, CLOUD_A,
                                              CLOUD_B))
    return 0


def measure(a, b=None, seconds=2.0):
    """TCP throughput from cloud a's first host to cloud b's first host."""
    b = b or settings_b(a)
    ln = link(a, b)
    pa, pb = ln.lab_a.plan, ln.lab_b.plan
    ha, hb = pa['hosts'][a.hosts[0]], pb['hosts'][b.hosts[0]]
    return ln.measure(ha['ns'], hb['ns'], hb['ip'], seconds)


def down(stack_cls, a):
    """Cloud b first (its lab's namespaces take the link's end with
    them), then cloud a."""
    if has_b(a):
        b = settings_b(a)
        say('cloud-b: taking down %s' % b.state_dir)
        stack_cls(b).down()
        try:
            os.remove(link(a, b).file)
        except OSError:
            pass
    return stack_cls(a).down()


def write_clouds_yaml(a, b):
    """Cloud a's clouds.yaml with ``cloud-a`` and ``cloud-b`` added."""
    from nova_netaware.deploy.localstack import configuration
    configuration.write_clouds_yaml(a, ((CLOUD_A, a), (CLOUD_B, b)))
