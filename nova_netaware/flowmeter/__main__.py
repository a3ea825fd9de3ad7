"""``python -m nova_netaware.flowmeter``: the same as
``nova-netaware-flow-meter``."""

import sys

from nova_netaware.flowmeter.exporter import main

sys.exit(main())
