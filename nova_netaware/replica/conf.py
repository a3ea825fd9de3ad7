"""Configuration of the replica agent: group ``[replica]``.

``list_opts`` feeds ``oslo-config-generator`` through the ``oslo.config.opts``
entry point ``nova_netaware.replica``; the generator file is
``etc/replica-agent-config-generator.conf`` and the generated sample is
``etc/replica-agent.conf.sample``.
"""

from oslo_config import cfg

GROUP = 'replica'

replica_group = cfg.OptGroup(
    GROUP, title='Cross-cloud replica agent',
    help='Options of nova-netaware-replica-agent: one agent per hypervisor '
         'side keeps exactly one copy of a stateful VM active, buffers the '
         'traffic toward the paused copy durably and switches over.')

agent_opts = [
    cfg.StrOpt('agent_id', required=True,
               help='Unique name of this agent (one per hypervisor side). '
                    'It is recorded as the holder of a fencing epoch.'),
    cfg.IntOpt('nice', min=-20, max=19,
               help='CPU priority (nice value) the agent gives itself at '
                    'start; its threads inherit it. Unset: the priority it '
                    'was started with (a systemd unit\'s Nice=). Below 0 '
                    'the '
                    'switchover steps wait less for a CPU on a busy '
                    'hypervisor, but the agent then also takes CPU from '
                    'the guests: on the 2-core two-cloud lab, -10 made '
                    'the guests discard more replies (docs/replica.md). '
                    'Raising the priority needs CAP_SYS_NICE (root has '
                    'it); without it the agent logs a warning and runs as '
                    'it is.'),
    cfg.IntOpt('realtime_priority', default=0, min=0, max=99,
               help='Real-time priority (SCHED_FIFO, 1-99) the agent '
                    'gives itself at start; its threads and the commands '
                    'it runs (iptables, ebtables) inherit it. 0: the '
                    'normal time-sharing class. A switchover is a chain '
                    'of wake-ups (both agents, libvirtd, QEMU). On the '
                    '2-core two-cloud lab the agents alone at 1 cut the '
                    'downtime p90 from 48-82 to 35-43 ms; with the '
                    'hypervisors\' libvirtd (and the QEMUs it starts) at '
                    '1 too, as a systemd drop-in with '
                    'CPUSchedulingPolicy=fifo does, the median fell from '
                    '27-30 to 14-15 ms and the p90 to 19-21 ms '
                    '(docs/replica.md, "Two clouds"). The kernel keeps 5 '
                    'percent of each CPU for other tasks '
                    '(kernel.sched_rt_runtime_us). Needs CAP_SYS_NICE '
                    '(root has it); without it the agent logs a warning '
                    'and runs in the normal class.'),
    cfg.StrOpt('service_name', default='replica',
               help='Name of the replicated service. Both agents of one '
                    'replica pair must use the same name; it namespaces the '
                    'epoch in the coordination backend.'),
    cfg.StrOpt('initial_role', default='standby',
               choices=[('active', 'Claim epoch 1 and run the copy when no '
                                   'epoch exists yet.'),
                        ('standby', 'Pause the copy and buffer its traffic '
                                    'until a switchover activates it.')],
               help='Role taken at the very first start, when the '
                    'coordination backend holds no epoch for the service. '
                    'Afterwards the role always follows the epoch.'),
    cfg.StrOpt('state_dir', default='/var/lib/nova-netaware/replica',
               help='Directory for the durable packet buffer (SQLite WAL).'),
    cfg.StrOpt('control_socket',
               default='/run/nova-netaware/replica-agent.sock',
               help='UNIX socket of the local control API used by the '
                    '"status" and "switchover" commands.'),
    cfg.StrOpt('coordination_url', default='file:///var/lib/nova-netaware/'
                                           'replica/coordination',
               help='tooz backend URL that keeps the monotonic fencing '
                    'epoch, e.g. file:///shared/dir (embedded default) or '
                    'redis://127.0.0.1:6379 for agents on different hosts.'),
    cfg.FloatOpt('coordination_lock_timeout', default=10.0, min=0.1,
                 help='Seconds to wait for the epoch lock.'),
    cfg.StrOpt('dataplane', default='nfqueue',
               help='Data plane plugin (stevedore namespace '
                    'nova_netaware.replica.dataplanes).'),
    cfg.StrOpt('state_driver', default='guest_endpoint',
               help='State transfer plugin (stevedore namespace '
                    'nova_netaware.replica.state_drivers).'),
    cfg.StrOpt('cloud_driver', default='local',
               help='Cloud driver plugin (stevedore namespace '
                    'nova_netaware.replica.cloud_drivers): pause, unpause, '
                    'export_state and import_state of the copy.'),
]

dataplane_opts = [
    cfg.StrOpt('guest_interface',
               help='Hypervisor-side interface toward the copy. Forwarded '
                    'traffic leaving through it is intercepted (NFQUEUE).'),
    cfg.StrOpt('guest_interface_kind', default='auto',
               choices=[('auto', 'bridge-port if guest_interface is a port '
                                 'of a Linux bridge, else routed.'),
                        ('routed', 'Traffic to the copy is routed out of '
                                   'guest_interface (iptables -o).'),
                        ('bridge-port', 'guest_interface is the copy\'s tap '
                                        'on a Linux bridge: matched with '
                                        'physdev; needs br_netfilter '
                                        '(bridge-nf-call-iptables = 1).')],
               help='How traffic toward the copy reaches guest_interface.'),
    cfg.StrOpt('replay_via', default='auto',
               choices=[('auto', 'port for a bridge port, else ip.'),
                        ('ip', 'Re-inject buffered packets through a raw '
                               'IPv4 socket (needs a route to the copy).'),
                        ('port', 'Write buffered packets as Ethernet frames '
                                 'to guest_mac straight onto '
                                 'guest_interface (AF_PACKET).')],
               help='How the nfqueue data plane re-injects buffered '
                    'packets at activation.'),
    cfg.StrOpt('guest_mac',
               help='MAC address of the copy\'s NIC; required when '
                    'buffered packets are replayed onto the port.'),
    cfg.BoolOpt('arp_responder', default=True,
                help='When guest_interface is a bridge port: answer ARP '
                     'requests for guest_endpoint_host (an IPv4 address) '
                     'with guest_mac at the bridge (ebtables arpreply), so '
                     'clients still resolve a paused copy and their '
                     'packets reach the hold. Turn off where the network '
                     'answers for the port already (Neutron\'s ARP '
                     'responder).'),
    cfg.IntOpt('nfqueue_num', default=7, min=0, max=65535,
               help='NFQUEUE queue number used by the nfqueue data plane.'),
    cfg.IntOpt('nfqueue_max_len', default=16384, min=64, max=65536,
               help='Packets the kernel may hold for the agent before '
                    'dropping (the kernel caps one queue at 65536).'),
    cfg.StrOpt('iptables_chain', default='NNR-REPLICA',
               help='Name of the iptables chain owned by the agent '
                    '(jumped to from FORWARD for the guest interface).'),
    cfg.IntOpt('buffer_max_packets', default=1000000, min=1,
               help='Upper bound of packets held in the durable buffer.'),
    cfg.IntOpt('buffer_max_bytes', default=1 << 30, min=1500,
               help='Upper bound of payload bytes held in the durable '
                    'buffer.'),
    cfg.StrOpt('overflow_policy', default='refuse',
               choices=[('refuse', 'Refuse new traffic past the bound: the '
                                   'packet is dropped and the sender gets '
                                   'ICMP administratively prohibited.'),
                        ('drop-newest', 'Silently drop the newest packet '
                                        'past the bound.')],
               help='What happens to a packet arriving when the buffer is '
                    'full. Old buffered data is never evicted. Every '
                    'overflow is counted and logged.'),
    cfg.IntOpt('buffer_commit_batch', default=512, min=1, max=65536,
               help='Group commit: packets per SQLite transaction.'),
    cfg.FloatOpt('buffer_commit_interval', default=0.002, min=0.0,
                 help='Group commit: seconds the oldest uncommitted packet '
                      'may wait before its batch is committed.'),
    cfg.StrOpt('buffer_synchronous', default='NORMAL',
               choices=['NORMAL', 'FULL'],
               help='SQLite synchronous mode. NORMAL (WAL) survives a crash '
                    'of the agent (kill -9); FULL also survives a power '
                    'loss at a lower rate.'),
    cfg.IntOpt('replay_batch', default=1024, min=1,
               help='Packets re-injected per replay step; the replay '
                    'position is committed after each step.'),
    cfg.IntOpt('replay_window', default=32, min=0, max=65536,
               help='Replay pacing by the guest\'s own output: at most '
                    'this many replayed frames ahead of the frames the '
                    'guest has sent since the replay began (its '
                    'interface\'s receive counter). A guest whose transmit '
                    'path falls behind discards the replies that find its '
                    'sending socket\'s buffer full (measured: Ip.OutDiscards '
                    'in the guest); the window keeps its backlog small. '
                    'What arrives during the replay waits in the kernel '
                    'queue and follows through the same window, not as one '
                    'burst; so does a backlog of this many frames or more '
                    'that built up in the kernel queue in pass mode while '
                    'the agent was off the CPU. On a tap, at most this '
                    'many accepted frames wait in the tap for its QEMU to '
                    'read them; the rest waits in the kernel queue. 0 turns '
                    'it all off.'),
    cfg.FloatOpt('replay_window_wait', default=0.02, min=0.0005,
                 help='Seconds the replay waits for the guest to send '
                      'anything when the window is full; then another '
                      'window goes out (traffic the guest does not answer '
                      'must not hold the replay up).'),
    cfg.IntOpt('replay_rate', default=10000, min=0,
               help='Maximum replay rate in packets per second; 0 means '
                    'as fast as possible. A guest takes held traffic only '
                    'as fast as it can process it: replayed at line rate '
                    '(300,000 pkt/s), a burst of 3,000 held echoes lost '
                    '13 to 19 % of them inside a QEMU TCG guest (its own '
                    'transmit queue overflowed with the replies), while '
                    '10,000 to 40,000 pkt/s lost none. Live traffic that '
                    'arrives during the replay is held and replayed after '
                    'it, in order.'),
]

peer_opts = [
    cfg.HostAddressOpt('peer_listen_host', default='0.0.0.0',
                       help='Address of the peer channel listener.'),
    cfg.PortOpt('peer_listen_port', default=9797,
                help='TCP port of the peer channel listener.'),
    cfg.HostAddressOpt('peer_host',
                       help='Address of the other agent of the pair.'),
    cfg.PortOpt('peer_port', default=9797,
                help='TCP port of the other agent.'),
    cfg.StrOpt('peer_hmac_key', secret=True,
               help='Shared secret; every peer message carries an '
                    'HMAC-SHA256 over its header and body. At least 16 '
                    'characters.'),
    cfg.FloatOpt('peer_replay_window', default=60.0, min=1.0,
                 help='Seconds a message timestamp may deviate from now; '
                      'nonces are remembered for this long, so replayed '
                      'messages are rejected.'),
    cfg.FloatOpt('peer_timeout', default=3.0, min=0.05,
                 help='Seconds to wait for the peer (connect, send, '
                      'receive). In a switchover, also how long the '
                      'standby side waits for each of the active side\'s '
                      'next steps (its state, then its word that its copy '
                      'is paused) before it hands the epoch back and stays '
                      'paused.'),
    cfg.FloatOpt('handoff_timeout', default=10.0, min=0.1,
                 help='Seconds the active side waits for the peer to '
                      'acknowledge a handoff before it resolves the '
                      'switchover through the epoch.'),
]

guest_opts = [
    cfg.StrOpt('copy_name', default='copy',
               help='Name of the local copy of the service (for logs and '
                    'the cloud driver; the libvirt domain name for the '
                    'libvirt cloud driver).'),
    cfg.StrOpt('libvirt_uri', default='qemu:///system',
               help='libvirt cloud driver: URI of the hypervisor that runs '
                    'the copy; the copy is the domain named copy_name.'),
    cfg.StrOpt('openstack_cloud',
               help='openstack cloud driver: the cloud of clouds.yaml that '
                    'holds the copy\'s Nova server (default: OS_CLOUD). '
                    'The fast path reads the server\'s instance_name, an '
                    'admin field.'),
    cfg.StrOpt('openstack_config_file',
               help='openstack cloud driver: the clouds.yaml file (default: '
                    'OS_CLIENT_CONFIG_FILE, then openstacksdk\'s standard '
                    'locations).'),
    cfg.StrOpt('openstack_server',
               help='openstack cloud driver: name or ID of the copy\'s Nova '
                    'server (default: copy_name).'),
    cfg.StrOpt('openstack_control', default='libvirt',
               choices=[('libvirt', 'Fast path on the server\'s hypervisor: '
                                    'virDomainSuspend/Resume of its domain '
                                    'at libvirt_uri; Nova\'s record stays '
                                    'ACTIVE and its power_state follows '
                                    'libvirt\'s lifecycle events.'),
                        ('api', 'Nova\'s pause/unpause API, waiting for the '
                                'status PAUSED/ACTIVE (an agent that is not '
                                'on the hypervisor).')],
               help='openstack cloud driver: how the copy is paused and '
                    'unpaused (docs/replica.md, "Cloud driver openstack").'),
    cfg.FloatOpt('openstack_api_timeout', default=120.0, min=1.0,
                 help='openstack cloud driver: seconds for a pause or '
                      'unpause through Nova\'s API to finish.'),
    cfg.FloatOpt('openstack_settle_timeout', default=60.0, min=0.0,
                 help='openstack cloud driver, fast path: seconds Nova\'s '
                      'power_state has to follow the domain after a pause '
                      'or unpause (checked off the critical path, counted '
                      'as api_settled / api_unsettled); 0 disables the '
                      'check.'),
    cfg.StrOpt('local_pid_file',
               help='local cloud driver: pid file of the guest process.'),
    cfg.HostAddressOpt('guest_endpoint_host',
                       help='guest_endpoint state driver: address of the '
                            'state endpoint inside the guest.'),
    cfg.PortOpt('guest_endpoint_port', default=7001,
                help='guest_endpoint state driver: TCP port of the state '
                     'endpoint.'),
    cfg.FloatOpt('state_timeout', default=10.0, min=0.1,
                 help='Seconds allowed for one state export or import.'),
]

policy_opts = [
    cfg.IntOpt('policy_max_buffer_packets', default=0, min=0,
               help='Standby side: request a switchover when this many '
                    'packets are buffered (0 disables).'),
    cfg.FloatOpt('policy_max_oldest_age', default=0.0, min=0.0,
                 help='Standby side: request a switchover when the oldest '
                      'buffered packet is this many seconds old (0 '
                      'disables).'),
    cfg.FloatOpt('policy_time_quantum', default=0.0, min=0.0,
                 help='Standby side: request a switchover when the other '
                      'copy has been active this many seconds and traffic '
                      'is buffered here (0 disables).'),
    cfg.FloatOpt('policy_check_interval', default=0.05, min=0.005,
                 help='Seconds between policy evaluations.'),
]

obs_opts = [
    cfg.HostAddressOpt('metrics_host', default='127.0.0.1',
                       help='Address of the Prometheus metrics endpoint.'),
    cfg.PortOpt('metrics_port', default=0,
                help='Port of the Prometheus metrics endpoint; 0 disables '
                     'it.'),
]

ALL_OPTS = (agent_opts + dataplane_opts + peer_opts + guest_opts +
            policy_opts + obs_opts)


def register_opts(conf):
    # a fresh OptGroup per ConfigOpts: oslo.config keeps overrides in the
    # group object, which must not leak between configurations
    group = cfg.OptGroup(GROUP, title=replica_group.title,
                         help=replica_group.help)
    conf.register_group(group)
    conf.register_opts(ALL_OPTS, group=group)


def list_opts():
    return [(replica_group, ALL_OPTS)]
