"""The flow meter of a hypervisor (``nova-netaware-flow-meter``).

The kernel counts the bytes between each pair of guest IPv4 addresses in
an nftables ``bridge``-family dynamic set with a counter per element
(:mod:`.nft`); :mod:`.exporter` serves those counters to Prometheus as
``netaware_flow_bytes_total{src="IP", dst="IP"}``. The ``prometheus``
traffic source turns them into the scheduler's matrix with ``rate()`` and
resolves the IPs to servers through the ports API. Why nftables and not
pmacct or conntrack, and the kernel facts: docs/local-stack.md, "Flow
meter".
"""
