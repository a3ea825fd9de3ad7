"""Test bed for the replica agent on the real kernel (root only).

A public module: the replica tests (``tests/replica``) and the benchmark
(``benchmarks/replica_bench.py``) both drive it through the names below.

Builds two clouds from network namespaces and veth links::

    cl<a> --veth-- hv<a> --veth-- vm<a>        copy A (guest process)
                     |
                inter-cloud link (agents' peer channel)
                     |
    cl<b> --veth-- hv<b> --veth-- vm<b>        copy B (guest process)

Every name starts with a per-run prefix and :meth:`Lab.destroy` removes the
namespaces (and with them the veths and the iptables rules, which only ever
live inside them) and kills every process the lab started. Addresses live
only inside these namespaces.

* :class:`Lab` -- build, start guests, agents and clients, query and
  command the agents, tear down (:mod:`.bed`);
* :func:`ns_socket`, :func:`sh`, :func:`guest_call`, the addresses and
  ports (:mod:`.netns`);
* ``python -m nova_netaware.replica.lab client ...``: a UDP client that
  sends numbered requests and records every reply (:mod:`.client`).
"""

from nova_netaware.replica.errors import LabError
from nova_netaware.replica.lab.bed import Lab
from nova_netaware.replica.lab.netns import (CLIENT_NET, CTL_PORT, DATA_PORT,
                                             HV_VM_IP, LINK_IP, NET,
                                             PEER_PORT, VM_IP, guest_call,
                                             is_root, ns_socket, remove_stale,
                                             sh)

__all__ = ['CLIENT_NET', 'CTL_PORT', 'DATA_PORT', 'HV_VM_IP', 'LINK_IP',
           'NET', 'PEER_PORT', 'VM_IP', 'Lab', 'LabError', 'guest_call',
           'is_root', 'ns_socket', 'remove_stale', 'sh']
