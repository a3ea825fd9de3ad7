"""``python -m nova_netaware.replica.lab client ...``: the test bed's UDP
client (see :mod:`nova_netaware.replica.lab.client`)."""

import sys

from nova_netaware.replica.lab import client

if len(sys.argv) > 1 and sys.argv[1] == 'client':
    sys.exit(client.main(sys.argv[2:]))
print('usage: python -m nova_netaware.replica.lab client --help',
      file=sys.stderr)
sys.exit(2)
