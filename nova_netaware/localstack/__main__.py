import sys

from nova_netaware.localstack.cli import main

sys.exit(main())
